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
        var omega = Omega(tv, b.shape);
        var sum = tv.sum(dim: 0);
        var elected = torch.where(sum >= 0, 1.0, -1.0).to_type(b.dtype);
        var agree = (tv.sign() == elected.unsqueeze(0)).to_type(b.dtype);
        var w = omega.reshape(new long[] { n }.Concat(Enumerable.Repeat(1L, (int)b.dim())).ToArray()) * agree;
        var merged = (w * tv).sum(dim: 0) / w.sum(dim: 0).clamp_min(1e-6);
        return (b + merged).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// ω_k = e_k / Σ e (1/n each when Σ e &lt; 1e-6), e_k the mean square of task vector k (the rows of the stacked
    /// <paramref name="tv"/>, each shaped <paramref name="shape"/>). Float32 CPU task vectors are squared and summed in
    /// L1Norms' order (FusedSce sums its own the same way: the same ω), others by libtorch.
    /// </summary>
    internal static unsafe torch.Tensor Omega(torch.Tensor tv, long[] shape)
    {
        int count = (int)tv.shape[0];
        torch.Tensor energy;
        if (Float32Memory.IsFlat(tv) && tv.NumberOfElements > 0)
        {
            long n = tv.NumberOfElements / count;
            nint rows = (nint)Float32Memory.Of(tv);   // pointers cannot be captured by the lambda below
            energy = torch.tensor(Energies(count, n, shape, (k, at) => new L1Norms.Squares((float*)rows + k * n + at)));
        }
        else
            energy = tv.pow(2).reshape(count, -1).mean([1]);
        using (energy) return Omega(energy, tv.dtype);
    }

    /// <summary>ω from the mean squares (float32 or the task vectors' dtype).</summary>
    internal static torch.Tensor Omega(torch.Tensor energy, torch.ScalarType dtype)
    {
        double total = energy.sum().ToDouble();
        int count = (int)energy.shape[0];
        return total < 1e-6 ? torch.full(count, 1.0 / count, dtype: dtype) : energy / total;
    }

    /// <summary>
    /// Each of <paramref name="count"/> task vectors' mean square (n elements each, shaped <paramref name="shape"/>): the
    /// squares of task vector k's row starting at its element <c>at</c> come from <paramref name="row"/>(k, at), summed
    /// in L1Norms' order, over n.
    /// </summary>
    internal static float[] Energies<T>(int count, long n, long[] shape, Func<int, long, T> row) where T : struct, IRowValues
    {
        long lines = L1Norms.RowsOf(shape), width = n / lines;
        var energy = new float[count];
        for (int k = 0; k < count; k++)
        {
            int model = k;
            energy[k] = (float)(L1Norms.Of(r => row(model, r * width), lines, width) / n);
        }
        return energy;
    }
}
