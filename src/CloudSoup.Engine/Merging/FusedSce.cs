// SCE (Sce.cs) for float32 CPU tensors with its element-wise passes fused and no stacked copy of the task vectors:
// each pass computes x_k − b where it needs it (the float the tensor path stacks). The variance mask is a cut found by
// selection (MagnitudeCuts) over the per-element variance, kept as a byte mask; each model's mean square and the
// erase-and-merge steps (sign election on the unweighted task vectors, ω-weighted agreeing sum, divided by the clamped
// weight sum, plus the base) read the inputs and the mask. The reductions whose order defines their float result are
// the tensor path's: the variance over models repeats libtorch's Welford update (Variance), each model's mean square
// is summed in L1Norms' order by both paths (Sce.Energies), so the output is the tensor path's bit for bit
// (FusedTaskVectorTests covers sce too). Scratch: the variance (4 bytes an element) and the mask (1 byte), whatever
// the number of models.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;

namespace CloudSoup.Engine.Merging;

internal static unsafe class FusedSce
{
    /// <summary>The merged tensor, or null when this path does not cover the inputs (the caller takes the tensor path).</summary>
    public static torch.Tensor? TryMerge(TensorMergeInput input, torch.Tensor b, double selectTopK)
    {
        var models = Enumerable.Range(0, input.Tensors.Count).Where(i => i != input.BaseIndex).ToList();
        if (models.Count == 0 || !Float32Memory.IsFlat(b) || b.NumberOfElements == 0 || models.Any(i => !Float32Memory.IsFlat(input.Tensors[i]) || !input.Tensors[i].shape.SequenceEqual(b.shape)))
            return null;
        long n = b.NumberOfElements;
        int count = models.Count;
        using var scope = torch.NewDisposeScope();
        using var scratch = new NativeBuffers(input.Scratch);
        var xs = models.Select(i => (nint)Float32Memory.Of(input.Tensors[i])).ToArray();
        float* bp = Float32Memory.Of(b);
        byte* keep = null;   // the variance mask (1 kept, 0 dropped); null: every entry kept
        if (selectTopK < 1)
        {
            float* v = (float*)scratch.Allocate(n * sizeof(float));   // the variance over models, per element
            Variance(xs, bp, n, v);
            long kept = (long)(MagnitudeCuts.CountNonZero(v, n) * selectTopK);
            if (MagnitudeCuts.Find(v, null, n, [kept]) is not [var cut]) return null;   // NaN variance: the tensor path sorts
            long[]? before = cut.Partial ? MagnitudeCuts.EqualBefore(v, null, n, cut) : null;
            keep = (byte*)scratch.Allocate(n);
            MagnitudeCuts.MaskOf(v, cut, before, keep, n);
        }
        nint bAddress = (nint)bp, keepAddress = (nint)keep;   // pointers cannot be captured by the lambdas below
        var energy = Methods.Sce.Energies(count, n, b.shape, (k, at) =>
            new MaskedSquares((float*)xs[k] + at, (float*)bAddress + at, keepAddress == 0 ? null : (byte*)keepAddress + at));
        var omega = Methods.Sce.Omega(torch.tensor(energy), b.dtype).data<float>().ToArray();
        var output = input.OutputBuffers?.Uninitialized(b) ?? torch.empty_like(b);
        nint oa = (nint)Float32Memory.Of(output);
        int seen = 0, inputs = 0;
        Float32Memory.ForBlocks(n, (start, end) =>
        {
            var (outputSeen, inputsFinite) = Combine(xs, (float*)bAddress, (byte*)keepAddress, omega, (float*)oa, start, end);
            Interlocked.Or(ref seen, (int)outputSeen);
            if (!inputsFinite) Interlocked.Exchange(ref inputs, 1);
        });
        if (seen == (int)OutputSeen.Finite) input.OutputBuffers?.VouchFinite(output);   // the executor need not scan it for NaN/inf again
        if (inputs == 0) input.OutputBuffers?.VouchInputsFinite(output);                 // nor the inputs: every x_k − b was finite
        if (((OutputSeen)seen & OutputSeen.Nan) != OutputSeen.Nan) return output.MoveToOuterDisposeScope();
        Float32Memory.Abandon(output, input.OutputBuffers);   // NaN: the tensor path decides those bytes
        return null;
    }

    /// <summary>((x − b)·keep)² (the stacked, masked task vector's square, as the tensor path squares it), keep a 0/1 byte mask or none.</summary>
    private readonly struct MaskedSquares(float* x, float* b, byte* keep) : IRowValues
    {
        public Vector256<float> Eight(long j)
        {
            var d = Vector256.Load(x + j) - Vector256.Load(b + j);
            if (keep != null) d *= Float32Memory.BytesAsVector256(keep + j);   // Eight runs where AVX2 does (L1Norms.Row)
            return d * d;
        }

        public float At(long j)
        {
            float d = x[j] - b[j];
            if (keep != null) d *= keep[j];
            return d * d;
        }
    }

    /// <summary>
    /// The stacked task vectors' var(dim: 0, unbiased: false) as libtorch computes it on the CPU: per element, Welford's
    /// update over the models in order in double (n, mean, m2; aten/src/ATen/native/SharedReduceOps.h, WelfordOps),
    /// then m2 / n rounded to float32, each x_k − b computed as the tensor path stacks it. libtorch reduces each
    /// element's few values serially and without fused multiply-adds, so these are its bits
    /// (FusedTaskVectorTests.Sce_variance_equals_torch_var); a whole-tensor pass instead of libtorch's per-element
    /// sub-iterators, which were most of an sce merge's profile.
    /// </summary>
    internal static void Variance(nint[] xs, float* b, long n, float* into)
    {
        nint ba = (nint)b, ia = (nint)into;
        Float32Memory.ForBlocks(n, (start, end) => VarianceOf(xs, (float*)ba, (float*)ia, start, end));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void VarianceOf(nint[] xs, float* b, float* into, long start, long end)
    {
        // The same double steps for a vector of elements at a time (two vectors of doubles per vector of floats).
        int v = Vector<float>.Count, count = xs.Length;
        long j = start;
        for (; j + v <= end; j += v)
        {
            Vector<double> meanLow = Vector<double>.Zero, meanHigh = Vector<double>.Zero, m2Low = Vector<double>.Zero, m2High = Vector<double>.Zero;
            var bj = Vector.Load(b + j);
            for (int k = 0; k < count; k++)
            {
                Vector.Widen(Vector.Load((float*)xs[k] + j) - bj, out Vector<double> low, out Vector<double> high);
                var divisor = new Vector<double>(k + 1);
                var deltaLow = low - meanLow;
                var deltaHigh = high - meanHigh;
                meanLow += deltaLow / divisor;
                meanHigh += deltaHigh / divisor;
                m2Low += deltaLow * (low - meanLow);
                m2High += deltaHigh * (high - meanHigh);
            }
            var models = new Vector<double>(count);
            Vector.Narrow(m2Low / models, m2High / models).Store(into + j);
        }
        for (; j < end; j++)
        {
            double mean = 0, m2 = 0;
            for (int k = 0; k < count; k++)
            {
                double data = ((float*)xs[k])[j] - b[j];
                double delta = data - mean;
                mean += delta / (k + 1);
                m2 += delta * (data - mean);
            }
            into[j] = (float)(m2 / count);
        }
    }

    /// <summary>
    /// Elements [start, end), t_k = (x_k − b)·keep: s = Σ t_k; elected = s ≥ 0 ? 1 : −1; a_k = [sign t_k = elected];
    /// w_k = ω_k·a_k; out = b + (Σ w_k·t_k) / max(Σ w_k, 1e−6), every sum started at +0 in model order. Says what it saw in
    /// the output, and whether every x_k − b was finite.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (OutputSeen Output, bool InputsFinite) Combine(nint[] xs, float* b, byte* keep, float[] omega, float* output, long start, long end)
    {
        int v = Vector<float>.Count, count = xs.Length;
        var zero = Vector<float>.Zero;
        var one = Vector<float>.One;
        var floor = new Vector<float>((float)1e-6);
        var exponent = new Vector<int>(0x7F800000);
        bool nan = false, masked = keep != null && Float32Memory.CanWidenBytes;
        var finite = Vector<int>.AllBitsSet;   // x − x is 0 for a finite x and NaN for ±inf and NaN
        var infiniteInput = Vector<int>.Zero;  // lanes where some x_k − b had all exponent bits set
        Span<Vector<float>> t = stackalloc Vector<float>[count];
        long j = start;
        for (; j + v <= end && (keep == null || masked); j += v)
        {
            var bj = Vector.Load(b + j);
            var sum = zero;
            var kept = masked ? Float32Memory.BytesAsFloats(keep + j) : one;
            for (int k = 0; k < count; k++)
            {
                var d = Vector.Load((float*)xs[k] + j) - bj;
                infiniteInput |= Vector.Equals(Vector.AsVectorInt32(d) & exponent, exponent);
                t[k] = masked ? d * kept : d;
                sum += t[k];
            }
            var positive = Vector.GreaterThanOrEqual(sum, zero);
            Vector<float> numerator = zero, denominator = zero;
            for (int k = 0; k < count; k++)
            {
                var agrees = Vector.ConditionalSelect(positive, Vector.GreaterThan(t[k], zero), Vector.LessThan(t[k], zero));
                var w = new Vector<float>(omega[k]) * Vector.ConditionalSelect(agrees, one, zero);
                numerator += w * t[k];
                denominator += w;
            }
            // clamp_min(1e-6): NaN stays NaN
            denominator = Vector.ConditionalSelect(Vector.LessThan(denominator, floor), floor, denominator);
            var result = bj + numerator / denominator;
            result.Store(output + j);
            nan |= Vector.EqualsAny(Vector.Equals(result, result), Vector<int>.Zero);
            finite &= Vector.Equals(result - result, zero);
        }
        bool nonFinite = finite != Vector<int>.AllBitsSet, inputsFinite = infiniteInput == Vector<int>.Zero;
        Span<float> ts = stackalloc float[count];
        for (; j < end; j++)
        {
            float sum = 0f;
            for (int k = 0; k < count; k++)
            {
                float d = ((float*)xs[k])[j] - b[j];
                inputsFinite &= float.IsFinite(d);
                ts[k] = keep != null ? d * keep[j] : d;
                sum += ts[k];
            }
            float elected = sum >= 0 ? 1f : -1f;
            float numerator = 0f, denominator = 0f;
            for (int k = 0; k < count; k++)
            {
                float w = omega[k] * ((ts[k] > 0 && elected > 0) || (ts[k] < 0 && elected < 0) ? 1f : 0f);   // sign(t) = elected; 0 and NaN never
                numerator += w * ts[k];
                denominator += w;
            }
            if (denominator < (float)1e-6) denominator = (float)1e-6;
            output[j] = b[j] + numerator / denominator;
            nan |= float.IsNaN(output[j]);
            nonFinite |= !float.IsFinite(output[j]);
        }
        return (nan ? OutputSeen.Nan : nonFinite ? OutputSeen.NonFinite : OutputSeen.Finite, inputsFinite);
    }
}
