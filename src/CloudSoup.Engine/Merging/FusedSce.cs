// SCE (Sce.cs) for float32 CPU tensors with its element-wise passes fused: the variance mask is a cut found by
// selection (MagnitudeCuts) and applied in place to the stacked task vectors, and the erase-and-merge steps (sign
// election on the unweighted task vectors, ω-weighted agreeing sum, divided by the clamped weight sum, plus the base)
// run in one pass. The reductions whose order defines their float result are the tensor path's: the variance over
// models is libtorch's Welford update repeated (Variance), each model's mean square is summed in L1Norms' order by
// both paths (Sce.Energies), so the output is the tensor path's bit for bit (FusedTaskVectorTests covers sce too).
using System.Numerics;
using System.Runtime.CompilerServices;
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
        // The stacked task vectors x_k − b, written straight into one (models, …) block: the values torch.stack of the
        // differences holds, without a temporary per model and the copy.
        float* rows = (float*)scratch.Allocate(count * n * sizeof(float));
        float* bp = Float32Memory.Of(b);
        bool inputsFinite = true;   // every x_k − b finite: then every input is (the base and each model)
        for (int k = 0; k < count; k++)
            inputsFinite &= MagnitudeCuts.Differences(Float32Memory.Of(input.Tensors[models[k]]), bp, rows + k * n, n);
        if (selectTopK < 1)
        {
            float* v = (float*)scratch.Allocate(n * sizeof(float));   // the variance over models, per element
            Variance(rows, count, n, v);
            long keep = (long)(MagnitudeCuts.CountNonZero(v, n) * selectTopK);
            if (MagnitudeCuts.Find(v, null, n, [keep]) is not [var cut]) return null;   // NaN variance: the tensor path sorts
            long[]? before = cut.Partial ? MagnitudeCuts.EqualBefore(v, null, n, cut) : null;
            MagnitudeCuts.MaskRows(v, cut, before, rows, count, n);
        }
        var omega = Methods.Sce.Omega(torch.tensor(Methods.Sce.Energies(rows, count, n, b.shape)), b.dtype).data<float>().ToArray();
        var output = input.OutputBuffers?.Uninitialized(b) ?? torch.empty_like(b);
        float* op = Float32Memory.Of(output);
        nint ba = (nint)bp, ra = (nint)rows, oa = (nint)op;
        int seen = 0;
        Float32Memory.ForBlocks(n, (start, end) => Interlocked.Or(ref seen, (int)Combine((float*)ba, (float*)ra, n, count, omega, (float*)oa, start, end)));
        if (seen == (int)OutputSeen.Finite) input.OutputBuffers?.VouchFinite(output);   // the executor need not scan it for NaN/inf again
        if (inputsFinite) input.OutputBuffers?.VouchInputsFinite(output);                 // nor the inputs
        if (((OutputSeen)seen & OutputSeen.Nan) != OutputSeen.Nan) return output.MoveToOuterDisposeScope();
        Float32Memory.Abandon(output, input.OutputBuffers);   // NaN: the tensor path decides those bytes
        return null;
    }

    /// <summary>
    /// tv.var(dim: 0, unbiased: false) as libtorch computes it on the CPU: per element, Welford's update over the
    /// models in order in double (n, mean, m2; aten/src/ATen/native/SharedReduceOps.h, WelfordOps), then m2 / n
    /// rounded to float32. libtorch reduces each element's few values serially and without fused multiply-adds, so
    /// these are its bits (FusedTaskVectorTests.Sce_variance_equals_torch_var); a whole-tensor pass instead of
    /// libtorch's per-element sub-iterators, which were most of an sce merge's profile.
    /// </summary>
    internal static void Variance(float* rows, int count, long n, float* into)
    {
        nint ra = (nint)rows, ia = (nint)into;
        Float32Memory.ForBlocks(n, (start, end) => VarianceOf((float*)ra, count, n, (float*)ia, start, end));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void VarianceOf(float* rows, int count, long n, float* into, long start, long end)
    {
        // The same double steps for a vector of elements at a time (two vectors of doubles per vector of floats).
        int v = Vector<float>.Count;
        long j = start;
        for (; j + v <= end; j += v)
        {
            Vector<double> meanLow = Vector<double>.Zero, meanHigh = Vector<double>.Zero, m2Low = Vector<double>.Zero, m2High = Vector<double>.Zero;
            for (int k = 0; k < count; k++)
            {
                Vector.Widen(Vector.Load(rows + k * n + j), out Vector<double> low, out Vector<double> high);
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
                double data = rows[k * n + j];
                double delta = data - mean;
                mean += delta / (k + 1);
                m2 += delta * (data - mean);
            }
            into[j] = (float)(m2 / count);
        }
    }

    /// <summary>
    /// Elements [start, end): s = Σ t_k; elected = s ≥ 0 ? 1 : −1; a_k = [sign t_k = elected]; w_k = ω_k·a_k;
    /// out = b + (Σ w_k·t_k) / max(Σ w_k, 1e−6), every sum started at +0 in model order. Says what it saw in the output.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static OutputSeen Combine(float* b, float* rows, long n, int count, float[] omega, float* output, long start, long end)
    {
        int v = Vector<float>.Count;
        var zero = Vector<float>.Zero;
        var one = Vector<float>.One;
        var floor = new Vector<float>((float)1e-6);
        bool nan = false;
        var finite = Vector<int>.AllBitsSet;   // x − x is 0 for a finite x and NaN for ±inf and NaN
        long j = start;
        for (; j + v <= end; j += v)
        {
            var sum = zero;
            for (int k = 0; k < count; k++) sum += Vector.Load(rows + k * n + j);
            var positive = Vector.GreaterThanOrEqual(sum, zero);
            Vector<float> numerator = zero, denominator = zero;
            for (int k = 0; k < count; k++)
            {
                var t = Vector.Load(rows + k * n + j);
                var agrees = Vector.ConditionalSelect(positive, Vector.GreaterThan(t, zero), Vector.LessThan(t, zero));
                var w = new Vector<float>(omega[k]) * Vector.ConditionalSelect(agrees, one, zero);
                numerator += w * t;
                denominator += w;
            }
            // clamp_min(1e-6): NaN stays NaN
            denominator = Vector.ConditionalSelect(Vector.LessThan(denominator, floor), floor, denominator);
            var result = Vector.Load(b + j) + numerator / denominator;
            result.Store(output + j);
            nan |= Vector.EqualsAny(Vector.Equals(result, result), Vector<int>.Zero);
            finite &= Vector.Equals(result - result, zero);
        }
        bool nonFinite = finite != Vector<int>.AllBitsSet;
        for (; j < end; j++)
        {
            float sum = 0f;
            for (int k = 0; k < count; k++) sum += rows[k * n + j];
            float elected = sum >= 0 ? 1f : -1f;
            float numerator = 0f, denominator = 0f;
            for (int k = 0; k < count; k++)
            {
                float t = rows[k * n + j];
                float w = omega[k] * ((t > 0 && elected > 0) || (t < 0 && elected < 0) ? 1f : 0f);   // sign(t) = elected; 0 and NaN never
                numerator += w * t;
                denominator += w;
            }
            if (denominator < (float)1e-6) denominator = (float)1e-6;
            output[j] = b[j] + numerator / denominator;
            nan |= float.IsNaN(output[j]);
            nonFinite |= !float.IsFinite(output[j]);
        }
        return nan ? OutputSeen.Nan : nonFinite ? OutputSeen.NonFinite : OutputSeen.Finite;
    }
}
