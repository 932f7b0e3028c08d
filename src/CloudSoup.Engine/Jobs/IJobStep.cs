namespace CloudSoup.Engine.Jobs;

/// <summary>
/// One step of a merge job (MergeJobRunner.Steps lists them in order). A step says when it applies and does its
/// part on the shared <see cref="JobContext"/>; a new capability is a new step, not an edit of the runner.
/// </summary>
public interface IJobStep
{
    /// <summary>The job phase (JobPhase) this step reports progress under and is timed as in the report.</summary>
    string Phase { get; }

    bool AppliesTo(JobContext job);

    Task RunAsync(JobContext job);
}
