namespace CloudSoup.Engine.Jobs.Steps;

/// <summary>
/// With an evaluation section: held-out (and test) metrics of every ingredient and of the merge (a split soup's
/// ingredients were evaluated by its parts: JobContext.IngredientEvaluations).
/// </summary>
public sealed class EvaluateStep : IJobStep
{
    public string Phase => JobPhase.Evaluating;

    public bool AppliesTo(JobContext job) => job.Recipe.Evaluation != null;

    public async Task RunAsync(JobContext job)
    {
        job.ReportProgress(Phase, 0);
        job.Evaluation = await job.Evaluator!.EvaluateAsync(job.PlanRecipe, job.Store, job.Models, job.Inputs, job.Kept!, job.IngredientEvaluations, job.Progress, job.Ct).ConfigureAwait(false);
    }
}
