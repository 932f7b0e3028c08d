// TorchBernoulli draws DARE/DELLA keep-masks in C#; it must give libtorch's torch.bernoulli values from the same
// seed, element for element, or masks (and outputs) would silently change with the implementation.
using CloudSoup.Engine.Merging;
using TorchSharp;

namespace CloudSoup.Tests.Merging;

public class TorchBernoulliTests
{
    public static TheoryData<ulong, string, int> Cases()
    {
        var data = new TheoryData<ulong, string, int>();
        foreach (ulong seed in new ulong[] { 0, 1, 42, 0xFFFFFFFF, 0x1234_5678_9ABC_DEF0, ulong.MaxValue })
            foreach (var p in new[] { "constant 0.3", "constant 0.5", "uniform", "edges" })
                data.Add(seed, p, p == "uniform" ? 5_000 : 1_873);   // not a multiple of the 624-word state
        data.Add(7, "uniform", 1);
        data.Add(7, "uniform", 624);
        data.Add(7, "uniform", 625);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Draws_equal_torch_bernoulli_from_the_same_seed(ulong seed, string probabilities, int n)
    {
        using var scope = torch.NewDisposeScope();
        var p = Probabilities(probabilities, n);
        using var gen = new torch.Generator(seed);
        var expected = torch.bernoulli(p, gen).data<float>().ToArray();
        var pv = p.data<float>().ToArray();
        var actual = new float[n];
        Draw(seed, pv, actual);
        for (int i = 0; i < n; i++)
            if (expected[i] != actual[i])
                Assert.Fail($"seed {seed}, {probabilities}: element {i} (p = {pv[i]:R}) is {actual[i]}, torch.bernoulli drew {expected[i]}");
        Assert.Contains(1f, expected.Length > 10 ? expected : [1f]);   // the draws are not all zero
    }

    [Theory]
    [InlineData(3UL, "uniform", 5_000)]
    [InlineData(0xFFFFFFFFUL, "edges", 1_873)]
    public unsafe void The_uniforms_below_p_are_the_draws(ulong seed, string probabilities, int n)
    {
        var p = Probabilities(probabilities, n).data<float>().ToArray();
        var drawn = new float[n];
        var u = new float[n];
        Draw(seed, p, drawn);
        fixed (float* up = u) new TorchBernoulli.UniformReader(_ => seed, long.MaxValue, 0).Read(up, n);   // one chunk: the generator's stream
        for (int i = 0; i < n; i++) Assert.True(drawn[i] == (u[i] < p[i] ? 1 : 0), $"element {i}");
        Assert.All(u, v => Assert.InRange(v, 0f, 1f - 1f / (1 << 24)));
    }

    [Theory]
    [InlineData(1_000)]   // chunks that end mid-state (1,000 = 624 + 376)
    [InlineData(1_248)]   // chunks of two whole states
    public unsafe void A_reader_opened_anywhere_reads_what_a_reader_from_the_start_reads_there(long chunk)
    {
        const int n = 5_000;
        Func<long, ulong> chunkSeed = c => 77 + 1_000_003UL * (ulong)c;
        var all = new float[n];
        fixed (float* a = all) new TorchBernoulli.UniformReader(chunkSeed, chunk, 0).Read(a, n);
        // Each chunk is its own generator's stream from the start (what SeededMaskProvider's chunks draw).
        for (long c = 0; c * chunk < n; c++)
        {
            int length = (int)Math.Min(chunk, n - c * chunk);
            var own = new float[length];
            fixed (float* o = own) new TorchBernoulli.UniformReader(_ => chunkSeed(c), long.MaxValue, 0).Read(o, length);
            Assert.Equal(own, all.AsSpan((int)(c * chunk), length).ToArray());
        }
        foreach (int start in new[] { 1, 623, 624, 625, 999, 1_000, 1_001, 1_247, 1_248, 2_500, 4_999 })
        {
            var read = new float[n - start];
            var reader = new TorchBernoulli.UniformReader(chunkSeed, chunk, start);
            fixed (float* r = read)
                for (int at = 0, piece = 1; at < read.Length; at += piece, piece = piece * 3 % 1_300 + 1)   // pieces of uneven sizes
                    reader.Read(r + at, Math.Min(piece, read.Length - at));
            Assert.True(all.AsSpan(start).SequenceEqual(read), $"from {start}");
        }
    }

    [Fact]
    public unsafe void A_window_of_DAREs_bit_mask_is_the_whole_draws_bits_there()
    {
        // Two and a half chunks: windows that start and end mid-state, mid-chunk, on a chunk's edge and across one.
        long chunk = SeededMaskProvider.ChunkElements, n = 2 * chunk + chunk / 2;
        const long seed = 4242;
        const float p = 0.3f;
        var whole = new byte[KeepBits.Bytes(n)];
        fixed (byte* w = whole) SeededMaskProvider.DrawKeepBits(seed, p, w, 0, n);
        long kept = 0;
        fixed (byte* w = whole) for (long e = 0; e < n; e++) kept += KeepBits.At(w, e);
        Assert.InRange(kept, (long)(0.29 * n), (long)(0.31 * n));   // the draws are the mask, not zeros or ones
        foreach (var (start, length) in new[] { (0L, 1L), (8L, 623L), (616L, 9L), (624L, 625L), (1_000L, chunk - 1_000), (chunk - 8, 14L), (chunk, chunk), (chunk - 8, chunk + 10), (8L, n - 8) })
        {
            var window = new byte[KeepBits.Bytes(length)];
            fixed (byte* into = window, w = whole)
            {
                SeededMaskProvider.DrawKeepBits(seed, p, into, start, length);
                for (long e = 0; e < length; e++)
                    if (KeepBits.At(into, e) != KeepBits.At(w, start + e)) Assert.Fail($"[{start}, {start + length}): entry {start + e} differs");
            }
        }
    }

    [Fact]
    public unsafe void A_bit_mask_window_starts_on_a_byte()
    {
        var bits = new byte[KeepBits.Bytes(64)];
        Assert.Throws<ArgumentException>(() => { fixed (byte* into = bits) SeededMaskProvider.DrawKeepBits(1, 0.5f, into, 3, 40); });
    }

    private static unsafe void Draw(ulong seed, float[] p, float[] mask)
    {
        fixed (float* pp = p, mp = mask) TorchBernoulli.Draw(seed, pp, mp, p.Length);
    }

    private static torch.Tensor Probabilities(string kind, int n)
    {
        if (kind.StartsWith("constant")) return torch.full(n, float.Parse(kind.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture));
        if (kind == "uniform") return torch.rand(n, generator: new torch.Generator(99));
        // 0, 1, values on the 2^-24 grid the draws land on and one step either side of it
        float step = 1f / (1 << 24);
        var v = new float[n];
        float[] edges = [0f, 1f, 0.5f, 0.5f + step, 0.5f - step, step, 2 * step, 1f - step, 0.25f, 0.75f];
        for (int i = 0; i < n; i++) v[i] = edges[i % edges.Length];
        return torch.tensor(v);
    }
}
