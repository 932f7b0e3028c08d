using CloudSoup.Control.Methods;
using CloudSoup.Control.Recipes;
using CloudSoup.Control.Jobs;

namespace CloudSoup.Engine.Soups;

/// <summary>What a soup sees: the ingredients' single scores, best first, and where to log its steps.</summary>
public sealed record SoupContext(Recipe Recipe, IReadOnlyList<Evaluation.Metrics> Single, IReadOnlyList<int> BestFirst, List<SoupStep> Steps, IProgress<JobProgress>? Progress, CancellationToken Ct);

/// <summary>
/// What a soup decided: one coefficient per ingredient (recipe order), or per tensor and ingredient, and the rule
/// in words for the report.
/// </summary>
public sealed record SoupChoice(double[] Coefficients, string Rule, IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>>? PerTensor = null);

/// <summary>One soup: a strategy that picks mixing coefficients by evaluating candidates on held-out data.</summary>
public interface ISoup
{
    MethodSignature Signature { get; }

    SoupChoice Choose(SoupSearch search, SoupContext context);
}
