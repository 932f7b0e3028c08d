using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using TorchSharp;

namespace CloudSoup.Engine.Evaluation;

/// <summary>Evaluates every ingredient and the merged model of a job on the recipe's evaluation data.</summary>
public interface IJobEvaluator
{
    /// <param name="evaluated">Every ingredient's evaluation, when a split soup's parts made them (docs/fanout.md): only the merge is evaluated here.</param>
    Task<EvaluationReport> EvaluateAsync(Recipe recipe, ICheckpointStore store, EvalModelLoader models, IReadOnlyList<Checkpoint> ingredients,
        IReadOnlyDictionary<string, torch.Tensor> merged, IReadOnlyList<ModelEvaluation>? evaluated, IProgress<JobProgress>? progress, CancellationToken ct);

    /// <summary>
    /// Evaluates ingredients <paramref name="first"/> to <paramref name="first"/> + <paramref name="count"/> - 1 as
    /// <see cref="EvaluateAsync"/> evaluates them (a split soup's part, docs/fanout.md).
    /// </summary>
    Task<IReadOnlyList<ModelEvaluation>> EvaluateIngredientsAsync(Recipe recipe, ICheckpointStore store, EvalModelLoader models, IReadOnlyList<Checkpoint> ingredients,
        int first, int count, IProgress<JobProgress>? progress, CancellationToken ct);
}
