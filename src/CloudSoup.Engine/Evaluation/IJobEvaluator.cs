using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using TorchSharp;

namespace CloudSoup.Engine.Evaluation;

/// <summary>Evaluates every ingredient and the merged model of a job on the recipe's evaluation data.</summary>
public interface IJobEvaluator
{
    Task<EvaluationReport> EvaluateAsync(Recipe recipe, ICheckpointStore store, EvalModelLoader models, IReadOnlyList<Checkpoint> ingredients,
        IReadOnlyDictionary<string, torch.Tensor> merged, IProgress<JobProgress>? progress, CancellationToken ct);
}
