using CloudSoup.Control.Configuration;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Evaluation.Sandbox;
using Microsoft.Extensions.Configuration;

namespace CloudSoup.Cli.Commands;

/// <summary>Implementations the CLI plugs into the core job runner.</summary>
internal static class LocalServices
{
    public static IJobEvaluator Evaluator { get; } = new JobEvaluator();

    /// <summary>The evaluation model loader, with the sandbox settings of the environment (CloudSoup__EvalSandbox, ...; docs/sandbox.md).</summary>
    public static EvalModelLoader Models()
    {
        var options = CloudSoupOptions.FromConfiguration(new ConfigurationBuilder().AddEnvironmentVariables().Build());
        try
        {
            return new EvalModelLoader(SandboxSettings.FromOptions(options));
        }
        catch (InvalidOperationException e)
        {
            throw new CloudSoupException(ErrorKind.InvalidRecipe, $"configuration: {e.Message}");
        }
    }
}
