// linear's weighted sum (Methods/Linear.cs) for float32 CPU tensors in one pass: every output element is computed
// from the (memory-mapped) inputs and stored once, on every core, instead of a zero fill, one read-modify-write pass
// over the output per model and a division pass. The arithmetic is libtorch's: `acc.add_(x, alpha: w)` on float32
// is a fused multiply-add, acc + x·(float)w rounded once (its CPU kernel computes `self + alpha * other` as
// vec::fmadd, https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/ufunc/add.h), started from +0 and
// taken in model order, then `div_((float)Σw)` for normalize. FusedLinearTests compares the two paths byte for byte.
// What this does not cover (other dtypes or devices, shapes that differ, a CPU without FMA, an output with NaN,
// whose payload is the tensor path's to define) returns null and the tensor path runs. An output seen all finite is
// vouched for (OutputBuffers.VouchFinite), so the executor does not scan it again for the report's NaN/inf counts.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;

namespace CloudSoup.Engine.Merging;

internal static unsafe class FusedLinear
{
    /// <summary>
    /// Σ w_i·x_i over the inputs with w_i ≠ 0 (÷ <paramref name="sum"/> when <paramref name="normalize"/>), or null
    /// when the fused kernel does not cover these tensors.
    /// </summary>
    public static torch.Tensor? TryMerge(IReadOnlyList<torch.Tensor> tensors, double[] weights, bool normalize, double sum, OutputBuffers? buffers)
    {
        if (!Fma.IsSupported || tensors.Count == 0) return null;
        var first = tensors[0];
        long n = first.NumberOfElements;
        if (n == 0) return null;
        var used = Enumerable.Range(0, tensors.Count).Where(i => weights[i] != 0).ToArray();
        if (used.Length == 0) return null;
        foreach (int i in used)
            if (!Float32Memory.IsFlat(tensors[i]) || !tensors[i].shape.SequenceEqual(first.shape)) return null;
        var output = buffers?.Uninitialized(first) ?? torch.empty_like(first);
        var inputs = used.Select(i => (nint)Float32Memory.Of(tensors[i])).ToArray();
        var w = used.Select(i => (float)weights[i]).ToArray();
        nint o = (nint)Float32Memory.Of(output);
        float divisor = (float)sum;
        int seen = 0;
        Float32Memory.ForBlocks(n, (start, end) => Interlocked.Or(ref seen, (int)Block(inputs, w, (float*)o, start, end, normalize, divisor)));
        if (seen == (int)OutputSeen.Finite) buffers?.VouchFinite(output);   // the executor need not scan it for NaN/inf again
        if (((OutputSeen)seen & OutputSeen.Nan) != OutputSeen.Nan) return output;
        Float32Memory.Abandon(output, buffers);
        return null;
    }

    /// <summary>Elements [start, end) of the output, and whether they are all finite, some infinite or some NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static OutputSeen Block(nint[] inputs, float[] w, float* output, long start, long end, bool normalize, float divisor)
    {
        int models = inputs.Length;
        var d = Vector256.Create(divisor);
        var nan = Vector256<float>.Zero;
        var nonFinite = Vector256<float>.Zero;   // x − x is 0 for a finite x and NaN for ±inf and NaN
        long j = start;
        for (; j + Vector256<float>.Count <= end; j += Vector256<float>.Count)
        {
            var acc = Vector256<float>.Zero;
            for (int k = 0; k < models; k++)
                acc = Fma.MultiplyAdd(Vector256.Load((float*)inputs[k] + j), Vector256.Create(w[k]), acc);
            if (normalize) acc /= d;
            nan |= Avx.CompareUnordered(acc, acc);
            var zeroIfFinite = acc - acc;
            nonFinite |= Avx.CompareUnordered(zeroIfFinite, zeroIfFinite);
            acc.Store(output + j);
        }
        bool sawNan = nan != Vector256<float>.Zero, sawNonFinite = nonFinite != Vector256<float>.Zero;
        for (; j < end; j++)
        {
            float acc = 0f;
            for (int k = 0; k < models; k++) acc = MathF.FusedMultiplyAdd(((float*)inputs[k])[j], w[k], acc);
            if (normalize) acc /= divisor;
            sawNan |= float.IsNaN(acc);
            sawNonFinite |= !float.IsFinite(acc);
            output[j] = acc;
        }
        return sawNan ? OutputSeen.Nan : sawNonFinite ? OutputSeen.NonFinite : OutputSeen.Finite;
    }
}
