using CloudSoup.Engine.Merging;

namespace CloudSoup.Engine.Jobs.Steps;

/// <summary>Always: opens the auxiliary checkpoints the method's parameters name (e.g. Fishers) and plans every tensor.</summary>
public sealed class PlanStep : IJobStep
{
    public string Phase => JobPhase.Planning;

    public bool AppliesTo(JobContext job) => true;

    public async Task RunAsync(JobContext job)
    {
        foreach (var r in job.Signature.AuxiliaryReferences(job.PlanRecipe))
            if (!job.Auxiliary.ContainsKey(r)) job.Auxiliary[r] = await job.OpenAsync(r).ConfigureAwait(false);
        job.Plan = MergePlanner.Plan(job.PlanRecipe, job.Inputs, job.Auxiliary, job.Parameters);
    }
}
