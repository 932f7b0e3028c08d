using CloudSoup.Engine.Merging;

namespace CloudSoup.Engine.Jobs.Steps;

/// <summary>Always: merges tensor by tensor into the output sink (staged, not yet visible), keeping the result in memory when it is evaluated.</summary>
public sealed class MergeStep : IJobStep
{
    public string Phase => JobPhase.Merging;

    public bool AppliesTo(JobContext job) => true;

    public async Task RunAsync(JobContext job) =>
        job.Stats = await MergeExecutor.ExecuteAsync(job.Plan, job.Sink, job.Progress, job.Kept, job.Ct, job.Device, job.Deferred).ConfigureAwait(false);
}
