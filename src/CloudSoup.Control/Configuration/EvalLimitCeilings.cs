using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;

namespace CloudSoup.Control.Configuration;

/// <summary>
/// The most a recipe's evaluation.limits / fisher.limits may ask for (CloudSoup__EvalMaxMemoryLimit, __EvalMaxTimeLimit;
/// docs/sandbox.md). Checked at submission and again by the worker before it starts a sandbox.
/// </summary>
public sealed record EvalLimitCeilings(long MaxMemoryBytes, TimeSpan MaxTimePerCall)
{
    public static EvalLimitCeilings From(CloudSoupOptions o) => new(
        ByteSize.TryParse(o.EvalMaxMemoryLimit, out long b) ? b : throw new InvalidOperationException($"CloudSoup:EvalMaxMemoryLimit '{o.EvalMaxMemoryLimit}' is not a size (e.g. 16GB)"),
        o.EvalMaxTimeLimit);

    public void Check(EvaluationLimits? limits, string section)
    {
        if (limits?.MemoryBytes is long m && m > MaxMemoryBytes)
            throw CloudSoupException.Recipe($"{section}.limits.memory", $"{m:N0} bytes is over this service's ceiling of {MaxMemoryBytes:N0} bytes (CloudSoup__EvalMaxMemoryLimit)");
        if (limits?.Seconds is int s && TimeSpan.FromSeconds(s) > MaxTimePerCall)
            throw CloudSoupException.Recipe($"{section}.limits.seconds", $"{s} s is over this service's ceiling of {MaxTimePerCall.TotalSeconds:0} s (CloudSoup__EvalMaxTimeLimit)");
    }

    public void Check(Recipe recipe)
    {
        Check(recipe.Evaluation?.Limits, "evaluation");
        Check(recipe.Fisher?.Limits, "fisher");
    }
}
