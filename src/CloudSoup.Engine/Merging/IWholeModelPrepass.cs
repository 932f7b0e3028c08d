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
}
