// RowRanks.Keep (DELLA's keep mask mostly without ranking, Merging/RowRanks.cs) against the definition: every entry's
// stable rank by a sort, its probability low + rank · span / steps, and u < p. On rows the buckets settle
// (bell-shaped, Laplace, few distinct magnitudes as from bfloat16 weights, widths that end mid-vector, fewer than
// eight buckets, a row of 70,001), rows they give to the sort (a huge outlier, all zero, an infinity, subnormals only,
// one column), draws placed exactly on a probability and one step either side of it (the entries whose bounds do not
// settle them), and NaN; rows enough for three ranges, each reading its uniforms from its first row. Each row's L1
// sums are those of |x − b| and of the kept |x − b| in L1Norms' order.
using CloudSoup.Engine.Merging;

namespace CloudSoup.Tests.Merging;

public class RowRanksTests
{
    public static TheoryData<string, int, int> Rows() => new()
    {
        { "bell", 7, 1_000 }, { "bell", 3, 1_031 }, { "laplace", 5, 4_096 }, { "quarter steps", 9, 1_003 }, { "bfloat16 steps", 5, 4_096 }, { "bell", 40, 2 },
        { "bell", 30, 3 }, { "bell", 9, 13 }, { "bell", 11, 63 }, { "outlier", 4, 1_000 }, { "zeros", 3, 100 }, { "infinity", 3, 100 },
        { "subnormal", 3, 100 }, { "bell", 17, 1 }, { "bell", 1, 70_001 }, { "bell", 2 * (int)(RowRanks.RangeElements / 1_000) + 3, 1_000 },   // three ranges of rows
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void The_mask_is_u_below_the_probability_of_the_stable_rank(string kind, int rows, int width)
    {
        var random = new Random(rows * 7919 + width);
        var x = Values(kind, rows * width, random);
        var b = Enumerable.Range(0, rows * width).Select(_ => kind is "bell" or "laplace" ? (float)(random.NextDouble() - 0.5) : 0f).ToArray();
        // Random draws, and draws on a probability or one float step either side (the unsettled ones): three of every
        // four entries (so many that most rows go to the sort), or three in every quarter row (the buckets' exact ranks).
        foreach (var (low, span, every) in new[] { (0.35f, 0.3f, 4), (0.5f, 0f, 4), (0f, 1f, 4), (0.35f, 0.3f, Math.Max(4, width / 4)), (0f, 1f, Math.Max(4, width / 4)) })
        {
            var map = new RankMap(low, span, Math.Max(width - 1, 1));
            var p = Probabilities(x, b, rows, width, map);
            var u = p.Select((pe, e) => (e % width % every) switch
            {
                1 => pe,
                2 => MathF.BitDecrement(pe),
                3 => MathF.BitIncrement(pe),
                _ => (float)random.NextDouble(),
            }).ToArray();
            var (keep, before, after) = Keep(x, b, rows, width, u, map);
            Assert.NotNull(keep);
            for (int e = 0; e < p.Length; e++)
                if (keep[e] != (u[e] < p[e] ? 1 : 0))
                    Assert.Fail($"{kind} {rows}x{width}, span {span}: entry {e} (u {u[e]:R}, p {p[e]:R}) kept {keep[e]}");
            for (int r = 0; r < rows; r++)
            {
                var row = Enumerable.Range(r * width, width);
                Assert.Equal(L1NormsTests.Lanes(row.Select(e => MathF.Abs(x[e] - b[e]))), before[r]);
                Assert.Equal(L1NormsTests.Lanes(row.Select(e => MathF.Abs((x[e] - b[e]) * keep[e]))), after[r]);
            }
        }
    }

    [Fact]
    // Quarter and bfloat16 steps: a few magnitudes, a hundred entries or more each, so a draw is unsettled with a
    // chance of about 100 · 0.3 / 999 and a row has dozens, over the budget of exact ranks: the second try ranks
    // each one-magnitude bucket in column order. An outlier puts all else into one bucket of many magnitudes.
    public unsafe void Buckets_settle_bell_shaped_and_stepped_rows_and_leave_crowded_ones_to_the_sort()
    {
        const int width = 1_000;
        var random = new Random(5);
        var map = new RankMap(0.35f, 0.3f, width - 1);
        var table = map.Table(width);
        var scratch = new RowRanks.Scratch(width);
        var u = Enumerable.Range(0, width).Select(_ => (float)random.NextDouble()).ToArray();
        var keep = new byte[width];
        foreach (var (kind, settled) in new[] { ("bell", true), ("laplace", true), ("quarter steps", true), ("bfloat16 steps", true), ("outlier", false), ("zeros", false) })
        {
            var x = Values(kind, width, random);
            var keys = x.Select(v => (uint)MagnitudeCuts.Key(v)).ToArray();
            // Six draws on their entry's probability or a step either side: the buckets rank those exactly.
            var p = Probabilities(x, new float[width], 1, width, map);
            for (int e = 1; e < width; e += 167) u[e] = (e % 3) switch { 0 => p[e], 1 => MathF.BitDecrement(p[e]), _ => MathF.BitIncrement(p[e]) };
            fixed (uint* kk = keys) fixed (float* up = u) fixed (byte* kp = keep)
                Assert.True(settled == RowRanks.KeepByBuckets(kk, keys.Max(), width, up, kp, table, scratch) is true, kind);
            if (settled)
                for (int e = 0; e < width; e++) Assert.True(keep[e] == (u[e] < p[e] ? 1 : 0), $"{kind}: entry {e}");
        }
    }

    [Fact]
    public void A_nan_magnitude_is_reported()
    {
        foreach (var at in new[] { 0, 517, 999 })   // in the vector body and the scalar tail
        {
            var x = Values("bell", 2 * 1_000, new Random(at));
            x[1_000 + at] = float.NaN;
            Assert.Null(Keep(x, new float[x.Length], 2, 1_000, new float[x.Length], new RankMap(0.35f, 0.3f, 999)).Keep);
        }
    }

    private static float[] Values(string kind, int n, Random random) => Enumerable.Range(0, n).Select(e => kind switch
    {
        "bell" => (float)((random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5) * 0.01),
        "laplace" => (float)(Math.Log(random.NextDouble()) * (random.Next(2) * 2 - 1) * 0.01),
        "quarter steps" => (float)(Math.Round(random.NextDouble() * 16 - 8) / 4),
        // differences of nearby bfloat16 weights: a bell of whole multiples of one step
        "bfloat16 steps" => (float)(Math.Round((random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5) * 8) / 1024),
        "outlier" => e % 1_000 == 3 ? 1e30f : (float)random.NextDouble(),
        "zeros" => e % 2 == 0 ? 0f : -0f,
        "infinity" => e % 100 == 50 ? float.NegativeInfinity : (float)random.NextDouble(),
        "subnormal" => BitConverter.Int32BitsToSingle(random.Next(1, 1 << 20)) * (random.Next(2) * 2 - 1),
        _ => throw new ArgumentException(kind),
    }).ToArray();

    /// <summary>The definition: each entry's probability from its stable rank of |x − b| in its row.</summary>
    private static float[] Probabilities(float[] x, float[] b, int rows, int width, RankMap map)
    {
        var table = map.Table(width);
        var p = new float[x.Length];
        for (int r = 0; r < rows; r++)
        {
            var order = Enumerable.Range(r * width, width).OrderBy(e => MagnitudeCuts.Key(x[e] - b[e])).ThenBy(e => e).ToArray();
            for (int rank = 0; rank < width; rank++) p[order[rank]] = table[rank];
        }
        return p;
    }

    private static unsafe (byte[]? Keep, double[] Before, double[] After) Keep(float[] x, float[] b, int rows, int width, float[] u, RankMap map)
    {
        var bits = new byte[KeepBits.Bytes(x.Length)];
        var (before, after) = (new double[rows], new double[rows]);
        fixed (float* xp = x, bp = b) fixed (byte* kp = bits)
        {
            var job = new RowRanks.KeepJob
            {
                X = xp, B = bp, Rows = rows, Width = width, Map = map, Keep = kp, Before = before, After = after,
                Uniforms = start => new ArrayUniforms(u, start),
            };
            if (!RowRanks.Keep([job])) return (null, before, after);
            var keep = new byte[x.Length];
            for (int e = 0; e < keep.Length; e++) keep[e] = (byte)KeepBits.At(kp, e);
            return (keep, before, after);
        }
    }

    /// <summary>Given uniforms, read from where the reader is opened.</summary>
    private sealed unsafe class ArrayUniforms(float[] u, long start) : IUniformReader
    {
        private long _next = start;

        public void Read(float* into, int count)
        {
            new ReadOnlySpan<float>(u, (int)_next, count).CopyTo(new Span<float>(into, count));
            _next += count;
        }
    }
}
