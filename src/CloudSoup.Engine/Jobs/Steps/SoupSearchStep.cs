using CloudSoup.Engine.Soups;

namespace CloudSoup.Engine.Jobs.Steps;

/// <summary>
/// When the method is a soup: decides the mixing coefficients on held-out data; the merge then writes that weighted
/// average. In a split soup the parts have evaluated the ingredients alone already (JobContext.SoupSingles).
/// </summary>
public sealed class SoupSearchStep : IJobStep
{
    public string Phase => JobPhase.Soup;

    public bool AppliesTo(JobContext job) => Soups.Soups.TryGet(job.Signature, out _);

    public async Task RunAsync(JobContext job)
    {
        Soups.Soups.TryGet(job.Signature, out var soup);
        (job.Soup, var weights) = await SoupSearch.RunAsync(job.PlanRecipe, soup, job.Inputs, job.Store, job.Models, job.Progress, job.Ct,
            job.Alignment?.Aligned, job.Plan.InputTransform, job.SoupSingles).ConfigureAwait(false);
        job.Plan = job.Plan.WithMethod(weights);
    }
}
