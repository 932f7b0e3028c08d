// MagnitudeCuts.Find (the radix selection of the top-m magnitudes, Merging/MagnitudeCuts.cs) against a sort: the same
// set for every rank, on data with many equal magnitudes, on lengths that end mid-vector and span several blocks,
// and null for a NaN anywhere (in the vector body or the scalar tail).
using CloudSoup.Engine.Merging;

namespace CloudSoup.Tests.Merging;

public class MagnitudeCutsTests
{
    [Theory]
    [InlineData(1, false)]
    [InlineData(13, true)]
    [InlineData(1_003, false)]
    [InlineData(2 * Float32Memory.Block + 4_099, true)]
    public unsafe void The_cut_holds_the_set_a_stable_sort_ranks_first(int n, bool withBase)
    {
        var random = new Random(n);
        // Quarter steps: many equal magnitudes; some wide values too, and infinities.
        var x = Enumerable.Range(0, n).Select(_ => (float)(Math.Round(random.NextDouble() * 16 - 8) / 4)).ToArray();
        var b = withBase ? Enumerable.Range(0, n).Select(_ => (float)(Math.Round(random.NextDouble() * 8) / 4)).ToArray() : null;
        for (int i = 0; i < n; i += 97) x[i] = (float)(random.NextDouble() * 1e6);
        if (n > 20) { x[17] = float.PositiveInfinity; x[n - 1] = float.NegativeInfinity; }
        var keys = Enumerable.Range(0, n).Select(j => MagnitudeCuts.Key(b == null ? x[j] : x[j] - b[j])).ToArray();
        long[] ranks = [0, 1, n / 3, n / 2, n - 1, n, n + 5];
        MagnitudeCut[]? cuts;
        fixed (float* xp = x, bp = b) cuts = MagnitudeCuts.Find(xp, bp, n, ranks);
        Assert.NotNull(cuts);
        // The sort: larger key first, lower index first among equal keys.
        var order = Enumerable.Range(0, n).OrderByDescending(j => keys[j]).ThenBy(j => j).ToArray();
        for (int r = 0; r < ranks.Length; r++)
        {
            var expected = order.Take((int)Math.Clamp(ranks[r], 0, n)).ToHashSet();
            var cut = cuts[r];
            long equalSeen = 0;
            for (int j = 0; j < n; j++)
            {
                bool inCut = keys[j] > cut.Above || (cut.Partial && keys[j] == cut.Above && equalSeen++ < cut.Quota);
                Assert.True(expected.Contains(j) == inCut, $"n {n}, rank {ranks[r]}: element {j} (key {keys[j]:X}) {(inCut ? "in" : "out of")} the cut {cut}");
            }
        }
    }

    [Theory]
    [InlineData(1_003, 5)]       // in a vector
    [InlineData(1_003, 1_002)]   // in the scalar tail
    [InlineData(2 * Float32Memory.Block + 4_099, 70_001)]
    public unsafe void A_NaN_magnitude_has_no_cut(int n, int at)
    {
        var x = Enumerable.Range(0, n).Select(j => (float)Math.Sin(j)).ToArray();
        x[at] = float.NaN;
        fixed (float* xp = x) Assert.Null(MagnitudeCuts.Find(xp, null, n, [n / 2]));
    }

    [Theory]
    [InlineData(1_003)]
    [InlineData(2 * Float32Memory.Block + 4_099)]
    public unsafe void Non_zeros_are_counted_as_torch_counts_them(int n)
    {
        // zeros of both signs, NaN, infinities and subnormals, in vectors, across blocks and in the scalar tail
        float[] kinds = [0f, -0f, 1f, float.NaN, float.PositiveInfinity, float.Epsilon, -2f, 0f, 0f];
        var x = Enumerable.Range(0, n).Select(j => kinds[(j * 7 + j / 5) % kinds.Length]).ToArray();
        long expected = TorchSharp.torch.tensor(x).count_nonzero().item<long>();
        fixed (float* xp = x) Assert.Equal(expected, MagnitudeCuts.CountNonZero(xp, n));
    }

    [Fact]
    public unsafe void Counts_left_by_earlier_searches_do_not_reach_the_next()
    {
        // The counting arrays are pooled and only the bins a search touched are cleared: searches over far-apart
        // magnitudes, one ending at a NaN, then one checked against the sort.
        const int n = 3 * Float32Memory.Block + 17;
        foreach (var scale in new[] { 1e30f, 1e-30f, float.NaN, 1f })
        {
            var x = Enumerable.Range(0, n).Select(j => (float)Math.Sin(j * 0.37) * (float.IsNaN(scale) ? 1f : scale)).ToArray();
            if (float.IsNaN(scale)) x[n - 1] = float.NaN;
            MagnitudeCut[]? cuts;
            fixed (float* xp = x) cuts = MagnitudeCuts.Find(xp, null, n, [n / 3]);
            if (float.IsNaN(scale)) { Assert.Null(cuts); continue; }
            var keys = x.Select(MagnitudeCuts.Key).ToArray();
            var expected = Enumerable.Range(0, n).OrderByDescending(j => keys[j]).ThenBy(j => j).Take(n / 3).ToHashSet();
            long equalSeen = 0;
            var cut = cuts![0];
            for (int j = 0; j < n; j++)
            {
                bool inCut = keys[j] > cut.Above || (cut.Partial && keys[j] == cut.Above && equalSeen++ < cut.Quota);
                Assert.True(expected.Contains(j) == inCut, $"scale {scale}: element {j}");
            }
        }
    }

    [Theory]
    [InlineData(1_003, false)]
    [InlineData(2 * Float32Memory.Block + 4_099, false)]
    [InlineData(2 * Float32Memory.Block + 4_099, true)]
    public unsafe void A_cuts_byte_mask_holds_the_cuts_set(int n, bool quarterSteps)
    {
        // Distinct magnitudes give whole cuts (eight at a time); quarter steps give cuts inside a run of equal keys.
        var random = new Random(n);
        var x = Enumerable.Range(0, n).Select(_ => quarterSteps ? (float)(Math.Round(random.NextDouble() * 16 - 8) / 4) : (float)(random.NextDouble() - 0.5)).ToArray();
        var keys = x.Select(MagnitudeCuts.Key).ToArray();
        var keep = new byte[n];
        fixed (float* xp = x) fixed (byte* kp = keep)
            foreach (long rank in new long[] { 1, n / 3, n - 1 })
            {
                var cut = MagnitudeCuts.Find(xp, null, n, [rank])![0];
                var before = cut.Partial ? MagnitudeCuts.EqualBefore(xp, null, n, cut) : null;
                Array.Fill(keep, (byte)7);
                MagnitudeCuts.MaskOf(xp, cut, before, kp, n);
                long equalSeen = 0;
                for (int j = 0; j < n; j++)
                {
                    bool inCut = keys[j] > cut.Above || (cut.Partial && keys[j] == cut.Above && equalSeen++ < cut.Quota);
                    if (keep[j] != (inCut ? 1 : 0)) Assert.Fail($"rank {rank}, cut {cut}: element {j} is {keep[j]}");
                }
                Assert.Equal(rank, keep.Sum(k => (long)k));
            }
    }
}
