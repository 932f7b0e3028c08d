using CloudSoup.Control.Jobs;

namespace CloudSoup.Engine.Merging;

/// <summary>
/// A merge method that, for some recipes, decides over the whole model before merging any tensor (one extra read
/// pass): it returns the plan to merge with, whose method carries the decision, and a note for the report.
/// </summary>
public interface IWholeModelPrepass
{
    bool NeedsPrepass(MergePlan plan);

    Task<(MergePlan Plan, string Note)> RunPrepassAsync(MergePlan plan, IProgress<JobProgress>? progress, CancellationToken ct);

    /// <summary>
    /// The decision a pre-pass fixed in this (decided) method, as JSON, so the parts of a split job can merge with it
    /// without each reading the whole model again (Jobs/PrepassDecision.cs); null while undecided. Doubles round-trip.
    /// </summary>
    string? SaveDecision();

    /// <summary>This (undecided) method with a decision <see cref="SaveDecision"/> wrote.</summary>
    IMergeMethod WithDecision(string json);
}
