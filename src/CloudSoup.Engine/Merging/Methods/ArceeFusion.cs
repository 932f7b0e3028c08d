// arcee_fusion: keep only the changes that matter (mergekit/merge_methods/arcee_fusion.py). Importance
// I = |x − b| ⊙ KL(softmax(x) ‖ softmax(b)) (softmax and KL along the last dim, one KL per row, broadcast;
// a 1-D tensor gets one KL), threshold = median + 1.5·IQR of I with quantiles taken by index ⌊q·(n−1)⌋ on the
// sorted values, result = b + (x − b)·[I ≥ threshold]. mergekit samples at most 1e6 elements with an unseeded
// randperm for the quantiles; here the sample is drawn from the tensor's seed, so the result reproduces.
using CloudSoup.Control.Methods;
using CloudSoup.Control.Recipes;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class ArceeFusion : IMergeMethod
{
    public MethodSignature Signature => TaskVectorStatisticsMethods.ArceeFusion;

    private const long MaxSample = 1_000_000;

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var b = input.Base!;
        var x = input.Tensors[input.BaseIndex == 0 ? 1 : 0];
        using var scope = torch.NewDisposeScope();
        var rowsX = x.dim() == 0 ? x.reshape(1, 1) : x.dim() == 1 ? x.reshape(1, -1) : x;
        var rowsB = b.dim() == 0 ? b.reshape(1, 1) : b.dim() == 1 ? b.reshape(1, -1) : b;
        var p = rowsX.softmax(-1) + 1e-8;
        var q = rowsB.softmax(-1) + 1e-8;
        var kl = (p * (p.log() - q.log())).sum(dim: -1, keepdim: true);
        var importance = ((rowsX - rowsB).abs() * kl).reshape(b.shape);
        var flat = importance.flatten();
        if (flat.NumberOfElements > MaxSample)
        {
            using var gen = new torch.Generator((ulong)input.Seed);
            flat = flat.index_select(0, torch.randperm(flat.NumberOfElements, generator: gen).narrow(0, 0, MaxSample));
        }
        var sorted = flat.sort().Values;
        long n = sorted.NumberOfElements;
        double At(double quantile) => sorted[(long)Math.Floor(quantile * (n - 1))].ToDouble();
        double median = At(0.5), iqr = At(0.75) - At(0.25);
        var mask = (importance >= median + 1.5 * iqr).to_type(b.dtype);
        return (b + (x - b) * mask).MoveToOuterDisposeScope();
    }
}
