using CloudSoup.Engine.Merging;

namespace CloudSoup.Engine.Jobs.Steps;

/// <summary>
/// When the method decides over the whole model before merging any tensor (IWholeModelPrepass: agreement with
/// granularity: model, ties with topk_scope: model): runs its extra read pass and merges with the decision.
/// </summary>
public sealed class PrepassStep : IJobStep
{
    public string Phase => JobPhase.Prepass;

    public bool AppliesTo(JobContext job) => job.Plan.Method is IWholeModelPrepass p && p.NeedsPrepass(job.Plan);

    public async Task RunAsync(JobContext job)
    {
        var prepass = (IWholeModelPrepass)job.Plan.Method;
        (job.Plan, job.WholeModelNote) = await prepass.RunPrepassAsync(job.Plan, job.Progress, job.Ct).ConfigureAwait(false);
    }
}
