using CloudSoup.Control.Recipes;
// Diagonal Fisher information of a classifier, for the `fisher` and `gradient_matching` merges
// (Matena & Raffel 2021, arXiv 2111.09832; Daheim et al. 2024, arXiv 2310.12808; docs/methods.md "Computing Fishers"):
//   F = 1/N Σ_n E_y[(∇_θ log p_θ(y | x_n))²]
// with PER-EXAMPLE gradients (one backward pass per example and label: the square of a batch-mean gradient
// is a different, biased quantity). The expectation over y depends on the label source:
//   sampled   ŷ ~ p_θ(·|x_n), one draw per example from a seeded generator (the Monte Carlo "true" Fisher)
//   exact     Σ_c p_θ(c|x_n)(∇ log p_θ(c|x_n))², one backward pass per class (exact, C times the cost)
//   empirical the data set's label y_n (the "empirical Fisher": biased, but needs no sampling)
//   argmax    ŷ = argmax p_θ(·|x_n) (the "hard" variant)
// The result has one float32 tensor per trainable parameter, named as in the checkpoint; checkpoint tensors
// that are not trainable parameters (e.g. BatchNorm running statistics) get a zero Fisher, so a fisher merge
// floors them and averages them plainly.
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Jobs;
using TorchSharp;

namespace CloudSoup.Engine.Evaluation;

public sealed record FisherOptions(FisherLabels Labels = FisherLabels.Sampled, int Samples = 1000, long Seed = 0);

public static class FisherEstimator
{
    /// <summary>
    /// The diagonal Fisher of <paramref name="model"/> (weights already loaded from <paramref name="checkpoint"/>)
    /// over the first <see cref="FisherOptions.Samples"/> examples of <paramref name="data"/>, with one tensor per
    /// float tensor of the checkpoint: the model's trainable parameters get theirs, the rest (BatchNorm running
    /// statistics, ...) zero. A TorchScript model computes its part in the sandbox (SandboxedModel.ParameterFisher).
    /// </summary>
    public static Dictionary<string, torch.Tensor> Estimate(IEvalModel model, IReadOnlyDictionary<string, torch.Tensor> checkpoint, EvalData data,
        FisherOptions options, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        if (options.Samples <= 0) throw CloudSoupException.Recipe("fisher.samples", "must be a positive integer");
        var result = model.ParameterFisher(data, options, progress, ct);
        foreach (var (name, t) in checkpoint)
            if (!result.ContainsKey(name) && t.is_floating_point()) result[name] = torch.zeros(t.shape, torch.ScalarType.Float32);
        var unknown = result.Keys.Where(k => !checkpoint.ContainsKey(k)).Take(3).ToList();
        if (unknown.Count > 0)
        {
            foreach (var t in result.Values) t.Dispose();
            throw new CloudSoupException(ErrorKind.IncompatibleModels, $"evaluation model {model.Name} has parameters the checkpoint lacks: {string.Join(", ", unknown)}");
        }
        return result;
    }

    /// <summary>
    /// The Fisher of each float tensor of <paramref name="trainable"/> (the live parameters of <paramref name="model"/>),
    /// by per-example gradients: what IEvalModel.ParameterFisher computes for in-process models.
    /// </summary>
    internal static Dictionary<string, torch.Tensor> OverParameters(IEvalModel model, IReadOnlyDictionary<string, torch.Tensor> trainable, EvalData data,
        FisherOptions options, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        if (options.Samples <= 0) throw CloudSoupException.Recipe("fisher.samples", "must be a positive integer");
        var parameters = trainable.Where(p => p.Value.is_floating_point()).ToList();
        if (parameters.Count == 0) throw new CloudSoupException(ErrorKind.InvalidRecipe, $"evaluation model {model.Name} has no trainable parameters", "fisher.model");
        var names = parameters.Select(p => p.Key).ToList();
        var tensors = parameters.Select(p => p.Value).ToList();
        var wasTracking = tensors.Select(t => t.requires_grad).ToList();
        var sums = tensors.Select(t => torch.zeros(t.shape, torch.ScalarType.Float64)).ToList();
        int n = (int)Math.Min(options.Samples, data.Count);
        var generator = new torch.Generator((ulong)options.Seed);
        try
        {
            foreach (var t in tensors) t.requires_grad_(true);
            using var grad = torch.enable_grad();
            for (int i = 0; i < n; i++)
            {
                ct.ThrowIfCancellationRequested();
                using var scope = torch.NewDisposeScope();
                var logits = model.Forward(data.Inputs.narrow(0, i, 1));
                if (logits.dim() != 2 || logits.shape[0] != 1)
                    throw new CloudSoupException(ErrorKind.InvalidRecipe, $"evaluation model {model.Name} returned shape [{string.Join(", ", logits.shape)}]; expected [batch, classes]", "fisher.model");
                var logp = torch.nn.functional.log_softmax(logits[0], 0);
                long classes = logp.shape[0];
                var p = logp.detach().exp().to_type(torch.ScalarType.Float64);
                var labels = options.Labels switch
                {
                    FisherLabels.Empirical => [(Label(data, i, classes), 1.0)],
                    FisherLabels.Argmax => [(p.argmax().item<long>(), 1.0)],
                    FisherLabels.Sampled => [(torch.multinomial(p, 1, generator: generator).item<long>(), 1.0)],
                    _ => Enumerable.Range(0, (int)classes).Select(c => ((long)c, p[c].item<double>())).ToList(),
                };
                for (int k = 0; k < labels.Count; k++)
                {
                    var (label, weight) = labels[k];
                    if (weight == 0) continue;
                    var grads = torch.autograd.grad([logp[label]], tensors, retain_graph: k < labels.Count - 1, allow_unused: true);
                    for (int j = 0; j < tensors.Count; j++)
                        if (grads[j] is { } g && !g.IsInvalid) sums[j].add_(g.to_type(torch.ScalarType.Float64).square(), alpha: weight);
                }
                if ((i + 1) % 50 == 0 || i + 1 == n) progress?.Report(new JobProgress(JobPhase.Fisher, (double)(i + 1) / n, $"{i + 1}/{n} examples"));
            }
        }
        finally
        {
            for (int j = 0; j < tensors.Count; j++) tensors[j].requires_grad_(wasTracking[j]);
        }

        var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        for (int j = 0; j < names.Count; j++)
        {
            result[names[j]] = sums[j].div(n).to_type(torch.ScalarType.Float32);
            sums[j].Dispose();
        }
        return result;
    }

    private static long Label(EvalData data, int i, long classes)
    {
        long y = data.Labels[i].item<long>();
        if (y < 0 || y >= classes) throw new CloudSoupException(ErrorKind.InvalidCheckpoint, $"{data.Source}: label {y} is out of range for a model with {classes} outputs");
        return y;
    }
}
