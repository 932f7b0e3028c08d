using CloudSoup.Control.Errors;
using TorchSharp;

namespace CloudSoup.Engine.Evaluation;

public static class Evaluator
{
    /// <summary>Accuracy and mean cross-entropy over <paramref name="data"/>, in batches, without gradients.</summary>
    public static Metrics Evaluate(IEvalModel model, EvalData data, int batchSize = 256)
    {
        using var _ = torch.no_grad();
        long n = data.Count, correct = 0;
        double lossSum = 0;
        for (long start = 0; start < n; start += batchSize)
        {
            using var scope = torch.NewDisposeScope();
            long len = Math.Min(batchSize, n - start);
            var x = data.Inputs.narrow(0, start, len);
            var y = data.Labels.narrow(0, start, len);
            var logits = model.Forward(x);
            if (logits.dim() != 2 || logits.shape[0] != len)
                throw new CloudSoupException(ErrorKind.InvalidRecipe, $"evaluation model {model.Name} returned shape [{string.Join(", ", logits.shape)}]; expected [batch, classes]", "evaluation.model");
            long maxLabel = y.max().item<long>();
            if (maxLabel >= logits.shape[1])
                throw new CloudSoupException(ErrorKind.InvalidCheckpoint, $"{data.Source}: label {maxLabel} is out of range for a model with {logits.shape[1]} outputs");
            var logitsF = logits.to_type(torch.ScalarType.Float64);
            lossSum += torch.nn.functional.cross_entropy(logitsF, y, reduction: torch.nn.Reduction.Sum).item<double>();
            correct += logitsF.argmax(1).eq(y).sum().item<long>();
        }
        return new Metrics((double)correct / n, lossSum / n, (int)n);
    }

    internal static void CheckSameNames(string model, IEnumerable<string> expected, IReadOnlyDictionary<string, torch.Tensor> weights, string source)
    {
        var want = expected.ToHashSet(StringComparer.Ordinal);
        var missing = want.Where(n => !weights.ContainsKey(n)).Take(3).ToList();
        if (missing.Count > 0)
            throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{source} does not fit evaluation model {model}: it lacks {string.Join(", ", missing)}");
        var extra = weights.Keys.Where(n => !want.Contains(n)).Take(3).ToList();
        if (extra.Count > 0)
            throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{source} does not fit evaluation model {model}: the model has no {string.Join(", ", extra)}");
    }

    internal static void CopyInto(string model, torch.Tensor target, torch.Tensor source, string name, string sourceName)
    {
        if (!target.shape.SequenceEqual(source.shape))
            throw new CloudSoupException(ErrorKind.IncompatibleModels,
                $"{sourceName} does not fit evaluation model {model}: '{name}' is [{string.Join(", ", source.shape)}] but the model expects [{string.Join(", ", target.shape)}]");
        target.copy_(source.to_type(target.dtype));
    }
}
