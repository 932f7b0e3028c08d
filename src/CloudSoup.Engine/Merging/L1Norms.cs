// The L1 norms of the L1 rescale (mergekit's MatchL1: masked · ‖δ‖₁ / ‖masked‖₁) for float32 CPU tensors, summed in
// one fixed order that every path repeats: the tensor path over its tensors (Sparsifiers.MatchL1), and the fused DARE
// and DELLA kernels row by row while they draw the mask (TaskArithmeticFamily, RowRanks.Keep), without first writing
// the magnitudes out. The order: a tensor is rows × width (its first dimension by the rest; one row for a vector);
// within a row, eight double accumulators take the elements whose column is 0 … 7 mod 8 of each whole group of
// eight, a ninth takes the last width mod 8 in order, and the row's sum is the eight in lane order, then the ninth;
// the tensor's norm is its rows' sums added in row order, in double. The result depends on nothing else (not the
// number of cores, not the vector width of the machine or of libtorch's build), and each element is added to a
// double, so it is as exact as the float32 values allow for any practical width.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CloudSoup.Engine.Merging;

/// <summary>Where a row's values come from: |v| of one array, |x − b|, or v².</summary>
internal interface IRowValues
{
    /// <summary>The eight values from column <paramref name="j"/>, as floats (their magnitudes).</summary>
    Vector256<float> Eight(long j);

    /// <summary>The value at column <paramref name="j"/> (its magnitude).</summary>
    float At(long j);
}

/// <summary>A row's 0/1 keep-mask: bytes, or bits (KeepBits).</summary>
internal interface IKeepMask
{
    /// <summary>The mask at columns j … j + 7, as floats.</summary>
    Vector256<float> Eight(long j);

    /// <summary>The mask at column <paramref name="j"/>.</summary>
    float At(long j);
}

internal static unsafe class L1Norms
{
    /// <summary>One byte per column (needs AVX2 for <see cref="Eight"/>, as every caller of it checks).</summary>
    public readonly struct ByteMask(byte* keep) : IKeepMask
    {
        public Vector256<float> Eight(long j) => Float32Memory.BytesAsVector256(keep + j);
        public float At(long j) => keep[j];
    }

    /// <summary>One bit per column, column 0 at entry <paramref name="first"/> of <paramref name="bits"/>.</summary>
    public readonly struct BitMask(byte* bits, long first) : IKeepMask
    {
        public Vector256<float> Eight(long j) => KeepBits.Eight(bits, first + j);
        public float At(long j) => KeepBits.At(bits, first + j);
    }

    /// <summary>|v|.</summary>
    public readonly struct Magnitudes(float* v) : IRowValues
    {
        public Vector256<float> Eight(long j) => Vector256.Abs(Vector256.Load(v + j));
        public float At(long j) => MathF.Abs(v[j]);
    }

    /// <summary>v² (sce's mean squares; the float32 square, then summed in double).</summary>
    public readonly struct Squares(float* v) : IRowValues
    {
        public Vector256<float> Eight(long j)
        {
            var e = Vector256.Load(v + j);
            return e * e;
        }
        public float At(long j) => v[j] * v[j];
    }

    /// <summary>|x − b|.</summary>
    public readonly struct Differences(float* x, float* b) : IRowValues
    {
        public Vector256<float> Eight(long j) => Vector256.Abs(Vector256.Load(x + j) - Vector256.Load(b + j));
        public float At(long j) => MathF.Abs(x[j] - b[j]);
    }

    /// <summary>The norm of a rows × width tensor's values, in the order above; rows are summed on every core.</summary>
    public static double Of<T>(Func<long, T> row, long rows, long width) where T : struct, IRowValues
    {
        var sums = new double[rows];
        Parallel.For(0L, rows, r => sums[r] = Row(row(r), width));
        return Total(sums);
    }

    /// <summary>Row sums added in row order.</summary>
    public static double Total(double[] rowSums)
    {
        double total = 0;
        foreach (var s in rowSums) total += s;
        return total;
    }

    /// <summary>One row's sum, in the order above.</summary>
    public static double Row<T>(T values, long width) where T : struct, IRowValues => RowPair(values, default(NoMask), width).All;

    /// <summary>No mask: <see cref="RowPair"/> sums the values alone (the JIT compiles the kept sum out for this type).</summary>
    public readonly struct NoMask : IKeepMask
    {
        public Vector256<float> Eight(long j) => Vector256<float>.Zero;
        public float At(long j) => 0;
    }

    /// <summary>
    /// A row's two sums for the rescale, in one pass and each in the order above: of the values v, and of |v·keep| for a
    /// 0/1 mask (the float product, so the bits of |(x − b)·keep| when v is |x − b|: the tensor path's masked
    /// values, whose norm it sums with <see cref="Row"/>); with <see cref="NoMask"/>, the first alone.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static (double All, double Kept) RowPair<T, TKeep>(T values, TKeep keep, long width) where T : struct, IRowValues where TKeep : struct, IKeepMask
    {
        long j = 0, whole = width - width % 8;
        double tail = 0, keptTail = 0;
        if (Avx2.IsSupported)
        {
            Vector256<double> low = Vector256<double>.Zero, high = Vector256<double>.Zero, keptLow = Vector256<double>.Zero, keptHigh = Vector256<double>.Zero;
            for (; j < whole; j += 8)
            {
                var eight = values.Eight(j);
                low += Vector256.WidenLower(eight);
                high += Vector256.WidenUpper(eight);
                if (typeof(TKeep) == typeof(NoMask)) continue;
                var kept = Vector256.Abs(eight * keep.Eight(j));
                keptLow += Vector256.WidenLower(kept);
                keptHigh += Vector256.WidenUpper(kept);
            }
            for (; j < width; j++)
            {
                float v = values.At(j);
                tail += v;
                if (typeof(TKeep) != typeof(NoMask)) keptTail += MathF.Abs(v * keep.At(j));
            }
            return (Lanes(low, high) + tail, Lanes(keptLow, keptHigh) + keptTail);
        }
        Span<double> lane = stackalloc double[8], keptLane = stackalloc double[8];
        lane.Clear();
        keptLane.Clear();
        for (; j < whole; j++)
        {
            float v = values.At(j);
            lane[(int)(j % 8)] += v;
            if (typeof(TKeep) != typeof(NoMask)) keptLane[(int)(j % 8)] += MathF.Abs(v * keep.At(j));
        }
        for (; j < width; j++)
        {
            float v = values.At(j);
            tail += v;
            if (typeof(TKeep) != typeof(NoMask)) keptTail += MathF.Abs(v * keep.At(j));
        }
        return (Lanes(lane[0], lane[1], lane[2], lane[3], lane[4], lane[5], lane[6], lane[7]) + tail,
            Lanes(keptLane[0], keptLane[1], keptLane[2], keptLane[3], keptLane[4], keptLane[5], keptLane[6], keptLane[7]) + keptTail);
    }

    /// <summary>
    /// Rows [<paramref name="first"/>, <paramref name="end"/>)'s sums of values and kept values (<see cref="RowPair"/>)
    /// into <paramref name="sums"/> and <paramref name="keptSums"/> at their rows, on every core: a tensor's norms are
    /// <see cref="Total"/> of the arrays once every row is in, whatever windows the rows came in.
    /// </summary>
    public static void PairRows<T, TKeep>(Func<long, T> row, Func<long, TKeep> keep, long first, long end, long width, double[] sums, double[] keptSums)
        where T : struct, IRowValues where TKeep : struct, IKeepMask =>
        Parallel.For(first, end, r => (sums[r], keptSums[r]) = RowPair(row(r), keep(r), width));

    private static double Lanes(Vector256<double> low, Vector256<double> high) =>
        Lanes(low.GetElement(0), low.GetElement(1), low.GetElement(2), low.GetElement(3), high.GetElement(0), high.GetElement(1), high.GetElement(2), high.GetElement(3));

    private static double Lanes(double l0, double l1, double l2, double l3, double l4, double l5, double l6, double l7) =>
        l0 + l1 + l2 + l3 + l4 + l5 + l6 + l7;

    /// <summary>A tensor's rows for these norms: its first dimension (one row for a scalar or a vector).</summary>
    public static long RowsOf(long[] shape) => shape.Length <= 1 || shape[0] == 0 ? 1 : shape[0];

    /// <summary>
    /// MatchL1's factor ‖δ‖₁/‖kept‖₁ from the two norms, or null where it leaves the values alone (either below 1e-7,
    /// as mergekit's; NaN compares false, so a NaN norm gives a NaN factor, as the tensor path's).
    /// </summary>
    public static float? Factor(double before, double after) => LeavesAlone(before, after) ? null : (float)(before / after);

    /// <summary>Whether MatchL1 leaves the values alone: either norm below 1e-7 (mergekit's rule).</summary>
    public static bool LeavesAlone(double before, double after) => before < 1e-7 || after < 1e-7;
}
