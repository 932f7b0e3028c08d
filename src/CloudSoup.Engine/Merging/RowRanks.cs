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
        public readonly int[] Counts = new int[Passes * Digits];
    }

    private const int Passes = 3;   // 3 × 11 bits cover the 31-bit keys

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool RankRow(float* x, float* b, int width, float* ranks, Scratch s)
    {
        fixed (uint* k0 = s.Keys, k1 = s.KeysOut)
        fixed (int* o0 = s.Order, o1 = s.OrderOut, counts = s.Counts)
        {
            uint* keys = k0, keysOut = k1;
            int* order = o0, orderOut = o1;
            new Span<int>(counts, Passes * Digits).Clear();
            uint max = 0;
            // One pass counts every digit of every key.
            for (int j = 0; j < width; j++)
            {
                uint key = (uint)MagnitudeCuts.Key(b == null ? x[j] : x[j] - b[j]);
                keys[j] = key;
                order[j] = j;
                max = Math.Max(max, key);
                counts[key & (Digits - 1)]++;
                counts[Digits + ((key >> DigitBits) & (Digits - 1))]++;
                counts[2 * Digits + (key >> (2 * DigitBits))]++;
            }
            if (max > 0x7F800000) return false;   // NaN
            for (int pass = 0; pass < Passes; pass++)
            {
                int shift = pass * DigitBits;
                int* c = counts + pass * Digits;
                if (c[(keys[0] >> shift) & (Digits - 1)] == width) continue;   // one digit value for all: the order stands
                int total = 0;
                for (int d = 0; d < Digits; d++) { int n = c[d]; c[d] = total; total += n; }
                for (int j = 0; j < width; j++)
                {
                    uint key = keys[j];
                    int at = c[(key >> shift) & (Digits - 1)]++;   // stable: equal digits keep their order
                    keysOut[at] = key;
                    orderOut[at] = order[j];
                }
                uint* keysWere = keys;
                keys = keysOut;
                keysOut = keysWere;
                int* orderWas = order;
                order = orderOut;
                orderOut = orderWas;
            }
            for (int r = 0; r < width; r++) ranks[order[r]] = r;
            return true;
        }
    }
}
