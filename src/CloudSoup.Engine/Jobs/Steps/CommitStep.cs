namespace CloudSoup.Engine.Jobs.Steps;

/// <summary>Always, last: commits the sink, so every output becomes visible at once or not at all.</summary>
public sealed class CommitStep : IJobStep
{
    public string Phase => JobPhase.Committing;

    public bool AppliesTo(JobContext job) => true;

    public async Task RunAsync(JobContext job)
    {
        job.ReportProgress(Phase, 0);
        await job.Sink.CommitAsync(job.Ct).ConfigureAwait(false);
    }
}
