using CloudSoup.Engine.Evaluation;

namespace CloudSoup.Cli.Commands;

/// <summary>Implementations the CLI plugs into the core job runner.</summary>
internal static class LocalServices
{
    public static IJobEvaluator Evaluator { get; } = new JobEvaluator();
}
