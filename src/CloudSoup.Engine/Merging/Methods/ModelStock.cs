// model_stock: Jang, Yun, Han 2024 (arXiv 2403.19522); mergekit's form (mergekit/merge_methods/model_stock.py;
// docs/methods.md). cos φ = mean pairwise cosine of the offsets x_i − b (each clamped to [−1, 1], norm product clamped
// to 1e-6), t = N cos φ / (1 + (N−1) cos φ), result = t·mean(x_i) + (1−t)·b. One angle per tensor, or with
// filter_wise one per vector along the last dimension (a 1-D tensor is one vector), as mergekit takes its norms over
// dim −1. Like mergekit, t is not clamped: a negative mean cosine extrapolates (the degenerate case is tested), and a
// zero denominator is an error.
using CloudSoup.Control.Methods;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class ModelStock : IMergeMethod
{
    public MethodSignature Signature => GeometricMethods.ModelStock;

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var b = input.Base!;
        var xs = input.Tensors.Where((_, i) => i != input.BaseIndex).ToList();
        int n = xs.Count;
        bool vectors = input.Global.Bool("filter_wise") && b.dim() >= 2 && b.NumberOfElements > 0;
        using var scope = torch.NewDisposeScope();
        // Rows of the reshaped tensor are the vectors that get one angle each.
        var shape = vectors ? new long[] { -1, b.shape[^1] } : new long[] { 1, -1 };
        var offsets = xs.Select(x => (x - b).reshape(shape)).ToList();
        var cos = torch.zeros(offsets[0].shape[0], dtype: b.dtype);
        int pairs = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++, pairs++)
                cos.add_(((offsets[i] * offsets[j]).sum(dim: 1) / (offsets[i].norm(dim: 1) * offsets[j].norm(dim: 1)).clamp_min(1e-6)).clamp(-1, 1));
        cos = cos / pairs;
        var denom = 1 + (n - 1) * cos;
        if ((denom.abs() < 1e-12).any().ToBoolean())
            throw new CloudSoupException(ErrorKind.IncompatibleModels, $"model_stock: the mean cosine of the offsets of '{input.TensorName}' is -1/(N-1), so t is undefined");
        var t = (n * cos / denom).unsqueeze(1);
        var mean = torch.stack(xs).mean([0]).reshape(shape);
        var result = t * mean + (1 - t) * b.reshape(shape);
        return result.reshape(b.shape).MoveToOuterDisposeScope();
    }
}
