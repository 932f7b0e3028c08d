// The top-m entries of a float32 task vector δ = x − b by magnitude, found without a mask, a sort or δ itself.
// |δ| as float32 is a non-negative number whose bit pattern (the sign bit cleared) orders like an integer, so a
// radix selection finds the m-th largest key exactly: one pass counts the high 16 bits, a second counts the low
// 16 bits inside the one bin that holds the m-th largest (TopKPrepass does the same over a whole model). The result
// is a cut: every entry whose key is above it is in, and of the entries equal to it the lowest flat indices fill
// the remaining places — the tie rule of Sparsifiers.RankByMagnitude, so the set is the one the sorted ranking
// gives (docs/methods.md, "Ties between equal magnitudes").
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CloudSoup.Engine.Merging;

/// <summary>
/// The set of entries ranked first by magnitude: every entry whose key (the bits of |δ|) is above
/// <see cref="Above"/>, plus, when <see cref="Quota"/> &gt; 0, the first <see cref="Quota"/> entries (lowest flat
/// index first) whose key equals <see cref="Above"/>.
/// </summary>
internal readonly record struct MagnitudeCut(int Above, long Quota)
{
    public static readonly MagnitudeCut None = new(int.MaxValue, 0);
    public static readonly MagnitudeCut All = new(-1, 0);

    /// <summary>Whether membership depends on an entry's position among equal keys (a counting pass is needed).</summary>
    public bool Partial => Quota > 0;
}

internal static unsafe class MagnitudeCuts
{
    /// <summary>Elements per block of the parallel passes.</summary>
    public const int Block = Float32Memory.Block;

    /// <summary>Find gives a share of its passes at least this many blocks (so tensors of up to 2^20 elements take one thread).</summary>
    internal const int BlocksPerShare = 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Key(float delta) => BitConverter.SingleToInt32Bits(delta) & 0x7FFFFFFF;

    /// <summary>
    /// The cut holding the <paramref name="ranks"/>[i] entries of largest |x − b| (|x| when <paramref name="b"/> is null)
    /// for each i (0 or less: none; n or more: all). Null when some magnitude is NaN (NaN has no place in an order of
    /// magnitudes; the caller takes the sort).
    /// </summary>
    public static MagnitudeCut[]? Find(float* x, float* b, long n, IReadOnlyList<long> ranks)
    {
        var cuts = new MagnitudeCut[ranks.Count];
        var open = new List<int>();
        for (int i = 0; i < ranks.Count; i++)
        {
            if (ranks[i] <= 0) cuts[i] = MagnitudeCut.None;
            else if (ranks[i] >= n) cuts[i] = MagnitudeCut.All;
            else open.Add(i);
        }
        if (open.Count == 0) return cuts;

        nint xa = (nint)x, ba = (nint)b;
        long blocks = (n + Block - 1) / Block;
        // Shares of the blocks (blocks p, p + shares, …), each with its own counts: the counts are summed and cleared
        // once per share, not once per task the scheduler happens to start. A share gets at least BlocksPerShare blocks:
        // a share's counts cost a fixed ~0.2 ms to sum and clear, and a pass over a million elements is memory-bound
        // (on two cores, 1.69 ms for a 1 M-element Find alone against 1.77 ms with two shares).
        int shares = (int)Math.Clamp(blocks / BlocksPerShare, 1, Environment.ProcessorCount);
        var high = Histograms.Rent(1 << 15);
        var low = new Dictionary<int, long[]>();
        try
        {
            int maxKey = 0;
            var gate = new object();
            // Per share: two histograms, even and odd elements (CountHigh), summed here over the bins it touched, which
            // it leaves zero again for the next rental (real task vectors touch a few hundred of the 32,768 bins).
            Parallel.For(0, shares, share =>
            {
                var counts = Histograms.Rent(2 << 15);
                int min = int.MaxValue, max = 0;
                for (long block = share; block < blocks; block += shares)
                {
                    var (blockMin, blockMax) = CountHigh((float*)xa, (float*)ba, block * Block, Math.Min(n, (block + 1) * Block), counts);
                    (min, max) = (Math.Min(min, blockMin), Math.Max(max, blockMax));
                }
                lock (gate)
                {
                    maxKey = Math.Max(maxKey, max);
                    for (int h = min >> 16; h <= Math.Min(max >> 16, (1 << 15) - 1); h++) high[h] += counts[h] + counts[high.Length + h];
                }
                if (min <= max)
                {
                    int from = min >> 16, to = Math.Min(max >> 16, (1 << 15) - 1) + 1;
                    Array.Clear(counts, from, to - from);
                    Array.Clear(counts, high.Length + from, to - from);
                }
                Histograms.Return(counts);
            });
            if (maxKey > 0x7F800000) return null;   // a NaN key
            // The bin holding each open rank's m-th largest key, and how many entries lie above that bin.
            var bins = new (int Bin, long Above)[ranks.Count];
            foreach (int i in open)
            {
                long seen = 0;
                for (int h = high.Length - 1; h >= 0; h--)
                {
                    if (seen + high[h] >= ranks[i]) { bins[i] = (h, seen); break; }
                    seen += high[h];
                }
            }
            // CountLow counts two bins per pass (the callers ask for one or two ranks: one pass).
            foreach (var pair in open.Select(i => bins[i].Bin).Distinct().Chunk(2))
            {
                foreach (int h in pair) low[h] = Histograms.Rent(1 << 16);
                if (shares == 1)
                {
                    var into = pair.Select(h => low[h]).ToArray();   // one share: count straight into the totals
                    for (long block = 0; block < blocks; block++)
                        CountLow((float*)xa, (float*)ba, block * Block, Math.Min(n, (block + 1) * Block), pair, into);
                    continue;
                }
                Parallel.For(0, shares, share =>
                {
                    var local = pair.Select(_ => Histograms.Rent(1 << 16)).ToArray();
                    for (long block = share; block < blocks; block += shares)
                        CountLow((float*)xa, (float*)ba, block * Block, Math.Min(n, (block + 1) * Block), pair, local);
                    lock (gate)
                        for (int w = 0; w < pair.Length; w++)
                        {
                            var into = low[pair[w]];
                            for (int l = 0; l < into.Length; l++) into[l] += local[w][l];
                        }
                    foreach (var counts in local)
                    {
                        Array.Clear(counts);
                        Histograms.Return(counts);
                    }
                });
            }
            foreach (int i in open)
            {
                var (bin, above) = bins[i];
                var counts = low[bin];
                long seen = above;
                for (int l = counts.Length - 1; l >= 0; l--)
                {
                    if (seen + counts[l] >= ranks[i])
                    {
                        int key = (bin << 16) | l;
                        long quota = ranks[i] - seen;
                        // All of the equal entries are in: a plain "key ≥ K" cut, no counting.
                        cuts[i] = quota == counts[l] ? new MagnitudeCut(key - 1, 0) : new MagnitudeCut(key, quota);
                        break;
                    }
                    seen += counts[l];
                }
            }
            return cuts;
        }
        finally
        {
            Array.Clear(high);
            Histograms.Return(high);
            foreach (var counts in low.Values)
            {
                Array.Clear(counts);
                Histograms.Return(counts);
            }
        }
    }

    /// <summary>
    /// Find's counting arrays (256 KB and 512 KB), reused. A fresh one is a large-object allocation on new pages: the
    /// kernel faults each in, and a page read before its first write is copied from the zero page with a TLB flush on
    /// every core (about 8 % of a breadcrumbs profile, bench/README.md). At most a few of each size wait here.
    /// </summary>
    private static class Histograms
    {
        private const int Kept = 8;
        private static readonly Dictionary<int, Stack<long[]>> Free = [];

        /// <summary>An array of <paramref name="length"/> zeros.</summary>
        public static long[] Rent(int length)
        {
            lock (Free)
                if (Free.TryGetValue(length, out var stack) && stack.TryPop(out var reused))
                    return reused;
            return new long[length];
        }

        /// <summary>Takes back an array the caller has set to zeros again (it knows which entries it touched).</summary>
        public static void Return(long[] counts)
        {
            lock (Free)
            {
                if (!Free.TryGetValue(counts.Length, out var stack)) Free[counts.Length] = stack = new Stack<long[]>();
                if (stack.Count < Kept) stack.Push(counts);
            }
        }
    }

    /// <summary>
    /// For a partial cut: how many entries with its key come before each block (blocks of <see cref="Block"/>;
    /// one more element at the end: the total), so blocks can be processed in any order.
    /// </summary>
    public static long[] EqualBefore(float* x, float* b, long n, MagnitudeCut cut)
    {
        nint xa = (nint)x, ba = (nint)b;
        long blocks = (n + Block - 1) / Block;
        var counts = new long[blocks + 1];
        Parallel.For(0L, blocks, block => counts[block + 1] = CountEqual((float*)xa, (float*)ba, block * Block, Math.Min(n, (block + 1) * Block), cut.Above));
        for (long i = 1; i <= blocks; i++) counts[i] += counts[i - 1];
        return counts;
    }

    /// <summary>How many of x[0 … n) are not zero (NaN counts, as in torch.count_nonzero).</summary>
    public static long CountNonZero(float* x, long n)
    {
        nint xa = (nint)x;
        long total = 0;
        Parallel.For(0L, (n + Block - 1) / Block, () => 0L,
            (block, _, sum) => sum + CountNotZero((float*)xa, block * Block, Math.Min(n, (block + 1) * Block)),
            sum => Interlocked.Add(ref total, sum));
        return total;
    }

    /// <summary>
    /// Writes the 0/1 byte mask of <paramref name="cut"/> over the keys of <paramref name="x"/> (|x|) into
    /// <paramref name="keep"/>: 1 where the entry is in the cut. <paramref name="equalBefore"/> is EqualBefore's count
    /// for a partial cut.
    /// </summary>
    public static void MaskOf(float* x, MagnitudeCut cut, long[]? equalBefore, byte* keep, long n)
    {
        nint xa = (nint)x, ka = (nint)keep;
        Parallel.For(0L, (n + Block - 1) / Block, block =>
            MaskOf((float*)xa, cut, equalBefore?[block] ?? 0, (byte*)ka, block * Block, Math.Min(n, (block + 1) * Block)));
    }

    // The loops below are hot from their first call: compiled fully optimized at once (a tier-0 loop with vector and
    // pointer code is many times slower, and its on-stack replacement showed as a third of a merge's profile).

    /// <summary>Counts the high 16 bits of the keys of [start, end) into <paramref name="counts"/> (two histograms of 2^15, see below); returns the smallest and the largest key.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (int Min, int Max) CountHigh(float* x, float* b, long start, long end, long[] counts)
    {
        // Neighbouring elements often share a bin; counting even and odd elements into two histograms
        // (counts[0 … 2^15) and counts[2^15 … 2^16)) lets consecutive increments of one bin proceed without waiting
        // for each other.
        int v = Vector<int>.Count;
        var magnitude = new Vector<int>(0x7FFFFFFF);
        var maxKeys = Vector<int>.Zero;
        var minKeys = new Vector<int>(int.MaxValue);
        int* keys = stackalloc int[Vector<int>.Count];
        long j = start;
        fixed (long* even = counts)
        {
            long* odd = even + (1 << 15);
            for (; j + v <= end; j += v)
            {
                var values = b == null ? Vector.Load(x + j) : Vector.Load(x + j) - Vector.Load(b + j);
                var key = Vector.AsVectorInt32(values) & magnitude;
                maxKeys = Vector.Max(maxKeys, key);
                minKeys = Vector.Min(minKeys, key);
                Vector.ShiftRightArithmetic(key, 16).Store(keys);
                for (int l = 0; l < v; l += 2)
                {
                    even[keys[l]]++;
                    odd[keys[l + 1]]++;
                }
            }
        }
        int max = 0, min = int.MaxValue;
        for (int l = 0; l < v; l++) (min, max) = (Math.Min(min, minKeys[l]), Math.Max(max, maxKeys[l]));
        for (; j < end; j++)
        {
            int key = Key(b == null ? x[j] : x[j] - b[j]);
            counts[key >> 16]++;
            (min, max) = (Math.Min(min, key), Math.Max(max, key));
        }
        return (min, max);
    }

    /// <summary>Counts the low 16 bits of the keys of [start, end) whose high bits are <paramref name="bins"/>[w] into <paramref name="counts"/>[w] (one or two bins).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CountLow(float* x, float* b, long start, long end, int[] bins, long[][] counts)
    {
        int first = bins[0], second = bins.Length > 1 ? bins[1] : -1;
        long[] a = counts[0], c = bins.Length > 1 ? counts[1] : counts[0];
        // A vector of keys at a time: nearly every key lies outside the wanted bins, and those are passed over in a
        // few instructions; a vector holding a wanted key is counted element by element.
        int v = Vector<int>.Count;
        var magnitude = new Vector<int>(0x7FFFFFFF);
        var firstBin = new Vector<int>(first);
        var secondBin = new Vector<int>(second);
        long j = start;
        for (; j + v <= end; j += v)
        {
            var values = b == null ? Vector.Load(x + j) : Vector.Load(x + j) - Vector.Load(b + j);
            var high = Vector.ShiftRightArithmetic(Vector.AsVectorInt32(values) & magnitude, 16);
            if (!Vector.EqualsAny(high, firstBin) && !Vector.EqualsAny(high, secondBin)) continue;
            for (long k = j; k < j + v; k++) CountLowOne(x, b, k, first, second, a, c);
        }
        for (; j < end; j++) CountLowOne(x, b, j, first, second, a, c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CountLowOne(float* x, float* b, long j, int first, int second, long[] a, long[] c)
    {
        int key = Key(b == null ? x[j] : x[j] - b[j]);
        int h = key >> 16;
        if (h == first) a[key & 0xFFFF]++;
        else if (h == second) c[key & 0xFFFF]++;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static long CountNotZero(float* x, long start, long end)
    {
        // Zeros counted a vector at a time (±0 equal 0; NaN equals nothing, so it counts as not zero).
        int v = Vector<float>.Count;
        long j = start, zeros = 0;
        var counted = Vector<int>.Zero;
        for (; j + v <= end; j += v) counted -= Vector.Equals(Vector.Load(x + j), Vector<float>.Zero);   // a block's count fits an int
        for (; j < end; j++) zeros += x[j] == 0 ? 1 : 0;
        return end - start - zeros - Vector.Sum(counted);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MaskOf(float* x, MagnitudeCut cut, long seen, byte* keep, long start, long end)
    {
        long j = start;
        if (!cut.Partial && Avx2.IsSupported && Bmi2.X64.IsSupported && Vector<int>.Count == 8)
        {
            // Kept exactly where the key is above the cut: eight at a time, the comparison's bits spread to bytes.
            var above = new Vector<int>(cut.Above);
            var magnitude = new Vector<int>(0x7FFFFFFF);
            for (; j + 8 <= end; j += 8)
            {
                var inCut = Vector.GreaterThan(Vector.AsVectorInt32(Vector.Load(x + j)) & magnitude, above);
                int bits = Avx.MoveMask(inCut.AsVector256().AsSingle());
                *(ulong*)(keep + j) = KeepBits.AsBytes(bits);
            }
        }
        for (; j < end; j++)
        {
            int key = Key(x[j]);
            keep[j] = key > cut.Above || (key == cut.Above && cut.Partial && seen++ < cut.Quota) ? (byte)1 : (byte)0;   // every equal key counts
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static long CountEqual(float* x, float* b, long start, long end, int key)
    {
        long c = 0;
        for (long j = start; j < end; j++)
            if (Key(b == null ? x[j] : x[j] - b[j]) == key) c++;
        return c;
    }
}
