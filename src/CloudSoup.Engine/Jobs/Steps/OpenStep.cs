using CloudSoup.Engine.Merging;

namespace CloudSoup.Engine.Jobs.Steps;

/// <summary>Always: opens every input the method reads (headers only) and, for mergekit slices, stacks the sliced layers into virtual models.</summary>
public sealed class OpenStep : IJobStep
{
    public string Phase => JobPhase.Planning;

    public bool AppliesTo(JobContext job) => true;

    public async Task RunAsync(JobContext job)
    {
        job.ReportProgress(Phase, 0, "reading checkpoint headers");
        var refs = MergePlanner.MethodInputs(job.Recipe, job.Method);
        var opened = await Task.WhenAll(refs.Select(r => OpenOrFailure(job, r))).ConfigureAwait(false);
        job.Checkpoints.AddRange(opened.Where(o => o.Checkpoint != null).Select(o => o.Checkpoint!));
        // Every input is opened (and disposed with the job) even when one fails; the first failure in recipe order is the job's reason.
        if (opened.FirstOrDefault(o => o.Failure != null).Failure is { } failure) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        job.Inputs = job.Checkpoints;
        if (job.Recipe.Slices != null) (job.Inputs, job.PlanRecipe, job.Parameters) = SliceLayout.Compose(job.Recipe, job.Method, job.Checkpoints);
    }

    private static async Task<(Formats.Checkpoint? Checkpoint, Exception? Failure)> OpenOrFailure(JobContext job, string reference)
    {
        try { return (await job.OpenAsync(reference).ConfigureAwait(false), null); }
        catch (Exception e) { return (null, e); }
    }
}
