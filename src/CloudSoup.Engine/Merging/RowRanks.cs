// DELLA's ranks: the position of each |δ| in its row sorted ascending, equal magnitudes by column (the lower
// index ranks lower) — the stable order, which is the one tie rule of every magnitude ranking here
// (docs/methods.md, "Ties between equal magnitudes"). A least-significant-digit radix sort of the 31-bit magnitude
// keys (three 11-bit digits, each pass stable) instead of a comparison sort per row: the sort was over half of a
// della merge's profile (bench/README.md). Rows are sorted in parallel; each needs only its own scratch.
using System.Runtime.CompilerServices;

namespace CloudSoup.Engine.Merging;

internal static unsafe class RowRanks
{
    private const int DigitBits = 11, Digits = 1 << DigitBits;

    /// <summary>
    /// Writes into <paramref name="ranks"/> (rows × width, row-major) each entry's 0-based ascending rank of |x − b|
    /// (|x| when <paramref name="b"/> is null) within its row, ties by column. False when some magnitude is NaN (then
    /// nothing is promised about <paramref name="ranks"/>).
    /// </summary>
    public static bool Compute(float* x, float* b, long rows, int width, float* ranks)
    {
        nint xa = (nint)x, ba = (nint)b, ra = (nint)ranks;
        int nan = 0;
        Parallel.For(0L, rows, () => new Scratch(width), (row, _, scratch) =>
        {
            float* rowB = ba == 0 ? null : (float*)ba + row * width;
            if (!RankRow((float*)xa + row * width, rowB, width, (float*)ra + row * width, scratch)) Interlocked.Exchange(ref nan, 1);
            return scratch;
        }, _ => { });
        return nan == 0;
    }

    private sealed class Scratch(int width)
    {
        public readonly uint[] Keys = new uint[width], KeysOut = new uint[width];
        public readonly int[] Order = new int[width], OrderOut = new int[width];
        public readonly int[] Counts = new int[Digits];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool RankRow(float* x, float* b, int width, float* ranks, Scratch s)
    {
        uint[] keys = s.Keys, keysOut = s.KeysOut;
        int[] order = s.Order, orderOut = s.OrderOut, counts = s.Counts;
        uint max = 0;
        for (int j = 0; j < width; j++)
        {
            uint key = (uint)MagnitudeCuts.Key(b == null ? x[j] : x[j] - b[j]);
            keys[j] = key;
            order[j] = j;
            max = Math.Max(max, key);
        }
        if (max > 0x7F800000) return false;   // NaN
        for (int shift = 0; shift < 31; shift += DigitBits)
        {
            if ((max >> shift) == 0) break;   // every remaining digit is zero: already in order
            Array.Clear(counts);
            for (int j = 0; j < width; j++) counts[(keys[j] >> shift) & (Digits - 1)]++;
            int total = 0;
            for (int d = 0; d < Digits; d++) { int c = counts[d]; counts[d] = total; total += c; }
            for (int j = 0; j < width; j++)
            {
                int at = counts[(keys[j] >> shift) & (Digits - 1)]++;   // stable: equal digits keep their order
                keysOut[at] = keys[j];
                orderOut[at] = order[j];
            }
            (keys, keysOut) = (keysOut, keys);
            (order, orderOut) = (orderOut, order);
        }
        for (int r = 0; r < width; r++) ranks[order[r]] = r;
        return true;
    }
}
