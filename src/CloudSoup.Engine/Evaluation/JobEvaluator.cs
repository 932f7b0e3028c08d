using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using TorchSharp;

namespace CloudSoup.Engine.Evaluation;

/// <summary>Evaluates every ingredient and the merged model on the recipe's held-out (and test) split.</summary>
public sealed class JobEvaluator : IJobEvaluator
{
    public static async Task<Dictionary<string, torch.Tensor>> ReadAllAsync(Checkpoint checkpoint, CancellationToken ct)
    {
        var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        foreach (var name in checkpoint.TensorNames) result[name] = await checkpoint.ReadTensorAsync(name, ct).ConfigureAwait(false);
        return result;
    }

    public async Task<EvaluationReport> EvaluateAsync(Recipe recipe, ICheckpointStore store, EvalModelLoader models, IReadOnlyList<Checkpoint> ingredients,
        IReadOnlyDictionary<string, torch.Tensor> merged, IReadOnlyList<ModelEvaluation>? evaluated, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        var section = recipe.Evaluation ?? throw new InvalidOperationException("recipe has no evaluation section");
        if (evaluated != null && evaluated.Count != ingredients.Count)
            throw new InvalidOperationException($"{evaluated.Count} ingredient evaluations for {ingredients.Count} ingredients");
        using var model = await models.LoadAsync(store, section.Model, section.Limits, "evaluation", ct).ConfigureAwait(false);
        using var heldOut = await EvalData.LoadAsync(store, section.Data, ct).ConfigureAwait(false);
        using var test = section.Test is null ? null : await EvalData.LoadAsync(store, section.Test, ct).ConfigureAwait(false);
        var results = evaluated?.ToList() ?? await EvaluateAllAsync(model, heldOut, test, section.BatchSize, ingredients, 0, ingredients.Count, progress, ct).ConfigureAwait(false);
        progress?.Report(new JobProgress(JobPhase.Evaluating, (double)ingredients.Count / (ingredients.Count + 1), "merged model"));
        var mergedEval = Run(model, heldOut, test, section.BatchSize, "merged", merged);
        return new EvaluationReport(section.Model, section.Data, section.Test, results, mergedEval);
    }

    public async Task<IReadOnlyList<ModelEvaluation>> EvaluateIngredientsAsync(Recipe recipe, ICheckpointStore store, EvalModelLoader models, IReadOnlyList<Checkpoint> ingredients,
        int first, int count, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        var section = recipe.Evaluation ?? throw new InvalidOperationException("recipe has no evaluation section");
        using var model = await models.LoadAsync(store, section.Model, section.Limits, "evaluation", ct).ConfigureAwait(false);
        using var heldOut = await EvalData.LoadAsync(store, section.Data, ct).ConfigureAwait(false);
        using var test = section.Test is null ? null : await EvalData.LoadAsync(store, section.Test, ct).ConfigureAwait(false);
        return await EvaluateAllAsync(model, heldOut, test, section.BatchSize, ingredients, first, count, progress, ct).ConfigureAwait(false);
    }

    private static async Task<List<ModelEvaluation>> EvaluateAllAsync(IEvalModel model, EvalData heldOut, EvalData? test, int batchSize, IReadOnlyList<Checkpoint> ingredients,
        int first, int count, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        var results = new List<ModelEvaluation>(count);
        for (int i = first; i < first + count; i++)
        {
            progress?.Report(new JobProgress(JobPhase.Evaluating, (double)(i - first) / (count + 1), $"ingredient {i + 1}/{ingredients.Count}"));
            var weights = await ReadAllAsync(ingredients[i], ct).ConfigureAwait(false);
            try { results.Add(Run(model, heldOut, test, batchSize, ingredients[i].Reference, weights)); }
            finally { foreach (var t in weights.Values) t.Dispose(); }
        }
        return results;
    }

    private static ModelEvaluation Run(IEvalModel model, EvalData heldOut, EvalData? test, int batchSize, string name, IReadOnlyDictionary<string, torch.Tensor> weights)
    {
        model.LoadWeights(weights, name);
        return new ModelEvaluation(name, Evaluator.Evaluate(model, heldOut, batchSize), test is null ? null : Evaluator.Evaluate(model, test, batchSize));
    }
}
