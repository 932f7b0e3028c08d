// sce: Select (top-variance positions), Calculate (matrix-level weights from mean squared task vectors),
// Erase (TIES sign mask on the unweighted task vectors) — mergekit/merge_methods/sce.py.
using CloudSoup.Control.Methods;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class Sce : IMergeMethod, IVouchesForInputs
{
    public MethodSignature Signature => TaskVectorStatisticsMethods.Sce;

    /// <summary>Float32 CPU tensors take FusedSce (the same bytes, fewer passes); false forces the tensor path (tests compare the two).</summary>
    public bool Fused { get; init; } = true;

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var b = input.Base!;
        double k = input.Global.Number("select_topk");
        if (Fused && FusedSce.TryMerge(input, b, k) is { } fused) return fused;
        using var scope = torch.NewDisposeScope();
        var tv = torch.stack(input.Tensors.Where((_, i) => i != input.BaseIndex).Select(x => x - b).ToList());
        int n = (int)tv.shape[0];
        if (k < 1)
        {
            var variance = tv.var(dim: 0, unbiased: false).flatten();
            long keep = (long)(variance.count_nonzero().ToInt64() * k);
            var mask = Sparsifiers.RankedRangeMask(variance, 0, keep);   // variances are ≥ 0, so |variance| ranks them
            tv = tv * mask.reshape(b.shape).unsqueeze(0);
        }
        var energy = tv.pow(2).reshape(n, -1).mean([1]);
        double total = energy.sum().ToDouble();
        var omega = total < 1e-6 ? torch.full(n, 1.0 / n, dtype: b.dtype) : energy / total;
        var sum = tv.sum(dim: 0);
        var elected = torch.where(sum >= 0, 1.0, -1.0).to_type(b.dtype);
        var agree = (tv.sign() == elected.unsqueeze(0)).to_type(b.dtype);
        var w = omega.reshape(new long[] { n }.Concat(Enumerable.Repeat(1L, (int)b.dim())).ToArray()) * agree;
        var merged = (w * tv).sum(dim: 0) / w.sum(dim: 0).clamp_min(1e-6);
        return (b + merged).MoveToOuterDisposeScope();
    }
}
