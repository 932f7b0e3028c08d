// DELLA's ranks: the position of each |δ| in its row sorted ascending, equal magnitudes by column (the lower
// index ranks lower) — the stable order, which is the one tie rule of every magnitude ranking here
// (docs/methods.md, "Ties between equal magnitudes"). Rows are worked in parallel; each needs only its own scratch.
//
// Two services:
// - Compute: every rank, by a least-significant-digit radix sort of the 31-bit magnitude keys (three stable 11-bit
//   passes) per row.
// - Keep: DELLA's keep mask, u < p(rank) for the uniforms u torch.bernoulli draws, mostly without sorting. The keep
//   probability p(rank) = low + rank · span / steps never decreases as the rank grows (each float operation rounds
//   monotonically), so bounds on an entry's rank settle most draws. A counting pass puts the row into buckets of
//   about four entries by ⌊|δ| · (buckets − 1) / max |δ|⌋, which never decreases as |δ| grows; the entries of a
//   bucket then hold exactly its ranks first … last, and u < p(first) keeps an entry, u ≥ p(last) drops it (eight
//   entries at a time, with AVX2 gathers of their buckets' bounds: the draws are coin flips, no branch). Only a
//   draw between the two (in a bucket of c entries, a chance of (c − 1) · span / steps: about one entry per row)
//   needs the exact rank, counted over the row. A row with more than a few of those gets a second try in which a
//   bucket of one magnitude ranks its entries in column order (rows of few distinct magnitudes, as bfloat16
//   checkpoints give), and if that too leaves many (a few huge magnitudes put everything else into the first
//   bucket) the radix sort ranks it. The same masks as ranking every entry (RowRanksTests), in about a third of the
//   radix sort's time (bench/README.md, "Fifth round: DELLA without ranking"). Each range of rows reads its uniforms
//   as it goes and keeps a row's magnitudes only while it works the row, summing the L1 rescale's norms there, so
//   nothing per entry is written but the mask (bench/README.md, "Sixth round").
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CloudSoup.Engine.Merging;

/// <summary>What a rank becomes: itself, or DELLA's keep probability low + rank · span / steps.</summary>
internal readonly record struct RankMap(float Low, float Span, float Steps)
{
    public static readonly RankMap Identity = new(0, 1, 1);

    /// <summary>The value of each rank 0 … width − 1 (the tensor expression's float operations, in its order).</summary>
    public float[] Table(int width)
    {
        var table = new float[width];
        for (int r = 0; r < width; r++) table[r] = Low + r * Span / Steps;
        return table;
    }
}

internal static unsafe class RowRanks
{
    private const int DigitBits = 11, Digits = 1 << DigitBits;
    private const int Passes = 3;   // 3 × 11 bits cover the 31-bit keys

    /// <summary>At most this many buckets per row, and about this many entries per bucket.</summary>
    internal const int MaxBuckets = 1 << 16, EntriesPerBucket = 4;

    /// <summary>A row whose draws need more exact ranks than this is sorted instead (each costs a pass over the row).</summary>
    internal const int ExactRanksPerRow = 16;

    /// <summary>
    /// Writes into <paramref name="ranks"/> (rows × width, row-major) each entry's 0-based ascending rank of |x − b|
    /// (|x| when <paramref name="b"/> is null) within its row, ties by column. False when some magnitude is NaN (then
    /// nothing is promised about <paramref name="ranks"/>).
    /// </summary>
    public static bool Compute(float* x, float* b, long rows, int width, float* ranks)
    {
        var table = RankMap.Identity.Table(width);
        return EachRow(rows, width, (row, s) => RadixRankRow(x + row * width, b == null ? null : b + row * width, width, ranks + row * width, table, s));
    }

    /// <summary>
    /// DELLA's keep masks, one per job, as bits (KeepBits): keep[e] = 1 when u[e] &lt; map(rank of |x − b|[e] in its row),
    /// else 0 — what drawing torch.bernoulli's uniforms against every entry's probability gives — and, when the job asks,
    /// each row's L1 sums of |x − b| and of the kept |x − b| (L1Norms.Row). Every job's rows are worked in ranges of
    /// about RangeElements on every core, each range reading its uniforms as it goes; a range is a multiple of eight rows,
    /// so no two share a byte of the mask. False when some magnitude is NaN (then nothing is promised about the masks or
    /// sums).
    /// </summary>
    public static bool Keep(IReadOnlyList<KeepJob> jobs)
    {
        var ranges = new List<(KeepJob Job, long First, long End)>();
        foreach (var job in jobs)
        {
            long step = (Math.Max(1, RangeElements / Math.Max(1, job.Width)) + 7) / 8 * 8;
            long end = job.FirstRow + job.Rows;
            for (long first = job.FirstRow; first < end; first += step) ranges.Add((job, first, Math.Min(end, first + step)));
        }
        int nan = 0;
        Parallel.For(0, ranges.Count, () => new Dictionary<int, Scratch>(), (r, _, scratches) =>
        {
            var (job, first, end) = ranges[r];
            if (!scratches.TryGetValue(job.Width, out var scratch)) scratches[job.Width] = scratch = new Scratch(job.Width);
            if (Volatile.Read(ref nan) == 0 && !KeepRows(job, first, end, scratch)) Interlocked.Exchange(ref nan, 1);
            return scratches;
        }, _ => { });
        return nan == 0;
    }

    /// <summary>A range of rows worked by one thread: about this many elements (fewer ranges cost fewer skipped uniforms, more balance the cores).</summary>
    internal const long RangeElements = 1L << 19;

    /// <summary>Rows [first, end) of a job: their uniforms, magnitudes, masks and sums. False for a NaN magnitude.</summary>
    private static bool KeepRows(KeepJob job, long first, long end, Scratch s)
    {
        int width = job.Width;
        var table = s.TableFor(job.Map);
        var uniforms = job.Uniforms(first * width);
        fixed (float* u = s.Uniforms)
        fixed (uint* keys = s.Magnitudes)
        fixed (byte* keep = s.KeepRow)
            for (long row = first; row < end; row++)
            {
                long at = row * width;
                float* rowB = job.B == null ? null : job.B + at;
                uniforms.Read(u, width);
                uint max = Keys(job.X + at, rowB, width, keys);
                if (max > 0x7F800000) return false;   // NaN
                if (KeepByBuckets(keys, max, width, u, keep, table, s) is null && !KeepBySorting(job.X + at, rowB, width, u, keep, table, s)) return false;
                KeepBits.FromBytes(keep, width, job.Keep, (row - job.FirstRow) * width);
                if (job.Before is null || job.After is null) continue;
                (job.Before[row], job.After[row]) = L1Norms.RowPair(new L1Norms.Magnitudes((float*)keys), new L1Norms.ByteMask(keep), width);
            }
        return true;
    }

    private delegate bool RowWork(long row, Scratch scratch);

    private static bool EachRow(long rows, int width, RowWork work)
    {
        int nan = 0;
        Parallel.For(0L, rows, () => new Scratch(width), (row, _, scratch) =>
        {
            if (!work(row, scratch)) Interlocked.Exchange(ref nan, 1);
            return scratch;
        }, _ => { });
        return nan == 0;
    }

    /// <summary>
    /// One DELLA mask to draw (RowRanks.Keep): the rows × width magnitudes |x − b| (|x| without b), the uniforms of
    /// element e from <see cref="Uniforms"/>(e) on, what a rank's probability is, where the mask's bits go, and (when both are
    /// set) where each row's L1 sums go. Only rows [<see cref="FirstRow"/>, FirstRow + <see cref="Rows"/>) are drawn (a
    /// window of the tensor, TaskArithmeticFamily.MaskWindows): X, B, the uniforms and the sums are indexed over the
    /// whole tensor, the mask's bits (KeepBits.Bytes(Rows · Width) bytes) from the window's first row.
    /// </summary>
    internal sealed class KeepJob
    {
        public required float* X { get; init; }
        public float* B { get; init; }
        public long FirstRow { get; init; }
        public required long Rows { get; init; }
        public required int Width { get; init; }
        public required Func<long, IUniformReader> Uniforms { get; init; }
        public required RankMap Map { get; init; }
        public required byte* Keep { get; init; }
        public double[]? Before { get; init; }
        public double[]? After { get; init; }
    }

    /// <summary>One thread's arrays for rows of one width; each method's own are made when it first runs.</summary>
    internal sealed class Scratch(int width)
    {
        private float[]? uniforms;
        private uint[]? magnitudes;
        private byte[]? keepRow;
        private (RankMap Map, float[] Table)? table;

        public float[] Uniforms => uniforms ??= new float[width];
        public uint[] Magnitudes => magnitudes ??= new uint[width];   // Keep: a row's keys (KeepBySorting ranks in Keys and KeysOut)
        public byte[] KeepRow => keepRow ??= new byte[width];         // Keep: a row's mask, a byte an entry, before it becomes bits

        /// <summary>The probability of each rank under <paramref name="map"/> (kept for the next row of the same map).</summary>
        public float[] TableFor(RankMap map)
        {
            if (table is not { } t || t.Map != map) table = t = (map, map.Table(width));
            return t.Table;
        }

        private uint[]? keys, keysOut;
        private int[]? order, orderOut, counts, buckets;
        private float[]? ranks;
        private float[]? lows, highs;
        private int[]? met;
        private uint[]? bucketKeys;

        public uint[] Keys => keys ??= new uint[width];
        public uint[] KeysOut => keysOut ??= new uint[width];
        public int[] Order => order ??= new int[width];
        public int[] OrderOut => orderOut ??= new int[width];
        public int[] Buckets => buckets ??= new int[width];
        public float[] Ranks => ranks ??= new float[width];
        public float[] Lows => lows ??= new float[BucketsFor(width)];     // each bucket's lowest keep probability
        public float[] Highs => highs ??= new float[BucketsFor(width)];   // and its highest
        public int[] Met => met ??= new int[BucketsFor(width)];
        public uint[] BucketKeys => bucketKeys ??= new uint[BucketsFor(width)];   // KeepByRuns: each bucket's one key, or Several
        public int[] Counts => counts ??= new int[Math.Max(Passes * Digits, 2 * BucketsFor(width))];
    }

    /// <summary>The bucket count for a row: its width rounded up to a power of two, over EntriesPerBucket, within 1 … MaxBuckets; 0 for one column.</summary>
    private static int BucketsFor(int width) => width < 2 ? 0 : (int)Math.Clamp(BitOperations.RoundUpToPowerOf2((uint)width) / EntriesPerBucket, 1, MaxBuckets);

    /// <summary>
    /// One row's keep mask from its buckets, given its magnitude keys (no NaN) and the largest: true, or null when the
    /// row is left to KeepBySorting (one column, all magnitudes zero, an infinity, magnitudes too small to scale, or
    /// more than ExactRanksPerRow draws to settle).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static bool? KeepByBuckets(uint* keys, uint max, int width, float* u, byte* keep, float[] table, Scratch s)
    {
        int buckets = BucketsFor(width);
        if (buckets == 0) return null;
        float scale = (buckets - 1) / BitConverter.UInt32BitsToSingle(max);
        if (max == 0 || max == 0x7F800000 || !float.IsFinite(scale)) return null;
        // The loops are methods of their own: pointers from `fixed` live on the stack in the method that pins them,
        // which cost the counting loop a reload of both on every entry.
        fixed (int* at = s.Buckets, start = s.Counts)
        fixed (float* low = s.Lows, high = s.Highs, value = table)
        {
            Buckets(keys, width, scale, (uint)(buckets - 1), at);
            Count(at, width, start, buckets);
            BucketBounds(start, buckets, value, width, low, high);
            int unsettled = Settle(at, low, high, u, keep, width);
            if (unsettled > ExactRanksPerRow) return KeepByRuns(keys, width, u, keep, value, s, buckets, scale);
            for (int i = 0; i < unsettled; i++)
            {
                int e = at[i];
                keep[e] = u[e] < value[Rank(keys, width, e)] ? (byte)1 : (byte)0;
            }
            return true;
        }
    }

    /// <summary>
    /// How many entries each of the <paramref name="buckets"/> buckets holds, in two halves of
    /// <paramref name="count"/>: the even entries' counts, then the odd entries' (two counts at a time instead of one
    /// after another: an increment waits for the last one only when both hit the same bucket).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Count(int* at, int width, int* count, int buckets)
    {
        new Span<int>(count, 2 * buckets).Clear();
        int* odd = count + buckets;
        int e = 0;
        for (; e + 4 <= width; e += 4)
        {
            count[at[e]]++;
            odd[at[e + 1]]++;
            count[at[e + 2]]++;
            odd[at[e + 3]]++;
        }
        for (; e < width; e++) count[at[e]]++;
    }

    /// <summary>
    /// Each bucket's probability bounds, those of its first rank and of its last (<paramref name="low"/>,
    /// <paramref name="high"/>), from its two counts (Count); the first half of <paramref name="count"/> becomes each
    /// bucket's first rank. Eight buckets at a time: their counts summed in a vector, their bounds gathered from the
    /// table. An empty bucket's bounds are never read: they are clamped into the table.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void BucketBounds(int* count, int buckets, float* value, int width, float* low, float* high)
    {
        int* odd = count + buckets;
        int total = 0, q = 0;
        if (Avx2.IsSupported)
        {
            var before = Vector256<int>.Zero;   // the entries of every bucket before these eight, in each lane
            var upperHalf = Vector256.Create(0, 0, 0, 0, -1, -1, -1, -1);
            var last = Vector256.Create(width - 1);
            for (; q + 8 <= buckets; q += 8)
            {
                var n = Avx.LoadVector256(count + q) + Avx.LoadVector256(odd + q);
                // Running sums within each 128-bit half, then the lower half's sum added to the upper half.
                var sums = n + Avx2.ShiftLeftLogical128BitLane(n, 4);
                sums += Avx2.ShiftLeftLogical128BitLane(sums, 8);
                sums += Avx2.PermuteVar8x32(sums, Vector256.Create(3)) & upperHalf;
                var end = sums + before;   // one past each bucket's last rank
                var first = end - n;
                Avx.Store(count + q, first);
                Avx.Store(low + q, Avx2.GatherVector256(value, Avx2.Min(first, last), 4));
                Avx.Store(high + q, Avx2.GatherVector256(value, Avx2.Max(end - Vector256<int>.One, Vector256<int>.Zero), 4));
                before = Avx2.PermuteVar8x32(end, Vector256.Create(7));
            }
            total = before.ToScalar();
        }
        for (; q < buckets; q++)
        {
            int n = count[q] + odd[q];
            low[q] = value[Math.Min(total, width - 1)];
            high[q] = value[Math.Max(total + n - 1, 0)];
            count[q] = total;
            total += n;
        }
    }

    /// <summary>
    /// Keeps each entry by its bucket's upper bound and notes in <paramref name="at"/> the unsettled ones (between the
    /// bounds), overwriting the bucket numbers already read, without branches (the draws are coin flips); returns how
    /// many it noted, stopping once that is more than ExactRanksPerRow.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static int Settle(int* at, float* low, float* high, float* u, byte* keep, int width)
    {
        int unsettled = 0, j = 0;
        if (Avx2.IsSupported && Bmi2.X64.IsSupported)
            for (; j + 8 <= width && unsettled <= ExactRanksPerRow; j += 8)
            {
                var q = Avx.LoadVector256(at + j);
                var draws = Avx.LoadVector256(u + j);
                int kept = Avx.MoveMask(Avx.CompareLessThan(draws, Avx2.GatherVector256(high, q, 4)));
                int keptLow = Avx.MoveMask(Avx.CompareLessThan(draws, Avx2.GatherVector256(low, q, 4)));
                *(ulong*)(keep + j) = KeepBits.AsBytes(kept);
                for (int open = kept ^ keptLow; open != 0; open &= open - 1) at[unsettled++] = j + BitOperations.TrailingZeroCount(open);
            }
        for (; j < width && unsettled <= ExactRanksPerRow; j++)
        {
            int q = at[j];
            float draw = u[j];
            int below = draw < low[q] ? 1 : 0, kept = draw < high[q] ? 1 : 0;
            keep[j] = (byte)kept;
            at[unsettled] = j;
            unsettled += below ^ kept;
        }
        return unsettled;
    }

    /// <summary>
    /// KeepByBuckets' second try at a row with too many unsettled draws. Entries of equal magnitude rank in column
    /// order, so in a bucket whose entries all share one magnitude the k-th of them met along the row has rank
    /// first + k: exact, with no sort. That settles rows made of few distinct magnitudes (task vectors of bfloat16
    /// checkpoints: differences of nearby bfloat16 weights take a few dozen values per row); buckets holding several
    /// magnitudes are settled by their bounds as before, and null (the sort) when those still leave too many.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool? KeepByRuns(uint* keys, int width, float* u, byte* keep, float* value, Scratch s, int buckets, float scale)
    {
        const uint None = uint.MaxValue, Several = uint.MaxValue - 1;   // keys are at most 0x7F800000
        fixed (int* at = s.Buckets, start = s.Counts, met = s.Met)
        fixed (uint* magnitude = s.BucketKeys)
        fixed (float* lows = s.Lows, highs = s.Highs)
        {
            Buckets(keys, width, scale, (uint)(buckets - 1), at);   // again: the settling loop wrote over them
            new Span<uint>(magnitude, buckets).Fill(None);
            new Span<int>(met, buckets).Clear();
            for (int e = 0; e < width; e++)
            {
                int q = at[e];
                magnitude[q] = magnitude[q] == None || magnitude[q] == keys[e] ? keys[e] : Several;
            }
            int exact = ExactRanksPerRow;
            for (int j = 0; j < width; j++)
            {
                int q = at[j];
                float draw = u[j];
                if (magnitude[q] != Several)
                {
                    keep[j] = draw < value[start[q] + met[q]++] ? (byte)1 : (byte)0;
                    continue;
                }
                bool low = draw < lows[q], high = draw < highs[q];
                if (low != high)
                {
                    if (--exact < 0) return null;
                    high = draw < value[Rank(keys, width, j)];
                }
                keep[j] = high ? (byte)1 : (byte)0;
            }
            return true;
        }
    }

    /// <summary>The rank of entry <paramref name="j"/> among the keys: how many are smaller, and how many equal ones come before it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int Rank(uint* keys, int width, int j)
    {
        // Keys are at most 0x7F800000, so comparing them as signed integers is comparing them as unsigned.
        int v = Vector<int>.Count, i = 0;
        int key = (int)keys[j];
        var mine = new Vector<int>(key);
        var counted = Vector<int>.Zero;
        for (; i + v <= j; i += v) counted -= Vector.LessThanOrEqual(Vector.Load((int*)keys + i), mine);   // all before j
        int rank = 0;
        for (int stop = Math.Min(width, i + v); i < stop; i++) rank += Before(i);   // the vector holding j, one by one
        for (; i + v <= width; i += v) counted -= Vector.LessThan(Vector.Load((int*)keys + i), mine);   // all after j
        for (; i < width; i++) rank += Before(i);
        return rank + Vector.Sum(counted);

        int Before(int i) => (int)keys[i] < key || (i < j && (int)keys[i] == key) ? 1 : 0;
    }

    /// <summary>One row's keep mask from its sorted ranks: false for NaN.</summary>
    private static bool KeepBySorting(float* x, float* b, int width, float* u, byte* keep, float[] table, Scratch s)
    {
        fixed (float* p = s.Ranks)
        {
            if (!RadixRankRow(x, b, width, p, table, s)) return false;
            for (int j = 0; j < width; j++) keep[j] = u[j] < p[j] ? (byte)1 : (byte)0;
            return true;
        }
    }

    /// <summary>
    /// Each entry's 31-bit magnitude key: the bits of |x − b| (so also the magnitudes themselves as floats), whose
    /// order as integers is the magnitudes' order. Returns the largest.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static uint Keys(float* x, float* b, int width, uint* keys)
    {
        int v = Vector<float>.Count, j = 0;
        var magnitude = new Vector<uint>(0x7FFFFFFF);
        var max = Vector<uint>.Zero;
        for (; j + v <= width; j += v)
        {
            var key = Vector.AsVectorUInt32(b == null ? Vector.Load(x + j) : Vector.Load(x + j) - Vector.Load(b + j)) & magnitude;
            key.Store(keys + j);
            max = Vector.Max(max, key);
        }
        uint m = 0;
        for (int lane = 0; lane < v; lane++) m = Math.Max(m, max[lane]);
        for (; j < width; j++)
        {
            keys[j] = (uint)MagnitudeCuts.Key(b == null ? x[j] : x[j] - b[j]);
            m = Math.Max(m, keys[j]);
        }
        return m;
    }

    /// <summary>Each key's bucket, ⌊|δ| · scale⌋ but at most <paramref name="last"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Buckets(uint* keys, int width, float scale, uint last, int* at)
    {
        int v = Vector<float>.Count, j = 0;
        var by = new Vector<float>(scale);
        var cap = new Vector<uint>(last);
        for (; j + v <= width; j += v)
        {
            var q = Vector.AsVectorUInt32(Vector.ConvertToInt32(Vector.AsVectorSingle(Vector.Load(keys + j)) * by));
            Vector.AsVectorInt32(Vector.Min(q, cap)).Store(at + j);
        }
        for (; j < width; j++) at[j] = (int)Math.Min((uint)(BitConverter.UInt32BitsToSingle(keys[j]) * scale), last);
    }

    /// <summary>The radix sort of one row, writing each entry's <paramref name="table"/>[rank]: false for NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static bool RadixRankRow(float* x, float* b, int width, float* ranks, float[] table, Scratch s)
    {
        fixed (uint* k0 = s.Keys, k1 = s.KeysOut)
        fixed (int* o0 = s.Order, o1 = s.OrderOut, counts = s.Counts)
        fixed (float* value = table)
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
            for (int r = 0; r < width; r++) ranks[order[r]] = value[r];
            return true;
        }
    }
}
