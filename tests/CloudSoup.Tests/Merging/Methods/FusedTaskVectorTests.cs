// The fused float32 kernel of the task-arithmetic family (Merging/FusedTaskVectors.cs) must give the tensor path's
// output byte for byte: every method, sparsifier, rescale and election option, on data with many equal magnitudes
// (cuts that split a run of equal keys), zeros, negative zeros, infinities, and sizes that end mid-vector and span
// several blocks.
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Merging.Methods;
using TorchSharp;
using static CloudSoup.Tests.Merging.Methods.MethodFixture;

namespace CloudSoup.Tests.Merging.Methods;

public class FusedTaskVectorTests
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        string[] methods =
        [
            "task_arithmetic", "task_arithmetic normalize lambda", "ties", "ties dis-sum", "ties inverse_density", "ties lambda",
            "breadcrumbs", "breadcrumbs_ties", "breadcrumbs inverse_density", "breadcrumbs big-gamma", "breadcrumbs dense-rescale",
            "dare_ties", "dare_linear inverse_density", "della", "della_linear", "ties model-thresholds", "ties dense",
            "sce", "sce all", "sce none",
        ];
        foreach (var m in methods)
            foreach (var shape in new[] { "small", "blocks", "matrix" })
                data.Add(m, shape);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_fused_kernel_gives_the_tensor_paths_bytes(string method, string shape)
    {
        long n = shape == "small" ? 1_003 : shape == "matrix" ? 97 * 1_031 : 2 * MagnitudeCuts.Block + 4_099;
        var (b, others) = Inputs(n, seed: 11);
        if (shape == "matrix")   // rows matter to DELLA's ranks
        {
            b = b.reshape(97, 1_031);
            others = others.Select(o => o.reshape(97, 1_031)).ToList();
        }
        AssertSame(method, b, others);
    }

    [Theory]
    [InlineData("dare_ties", 16)]
    [InlineData("dare_ties", 8)]                        // the smallest window
    [InlineData("dare_linear inverse_density", 16)]
    [InlineData("dare_linear no-rescale", 40)]
    [InlineData("della", 16)]
    [InlineData("della", 8)]
    [InlineData("della_linear no-rescale", 40)]
    [InlineData("della nan", 16)]                       // a NaN magnitude in the last window: the tensor path's bytes
    [InlineData("dare_ties nan", 16)]                   // a NaN in the last window makes the L1 factor NaN: the tensor path's bytes
    public void Masks_over_the_budget_are_drawn_a_window_of_rows_at_a_time_with_the_same_bytes(string method, int windowRows)
    {
        // 1 031 columns: rows start mid-byte in the bit masks.
        var (b, others) = Inputs(97 * 1_031, seed: 13);
        b = b.reshape(97, 1_031);
        others = others.Select(o => o.reshape(97, 1_031)).ToList();
        if (method.EndsWith(" nan")) others[1][90, 4] = float.NaN;
        long budget = (windowRows * 1_031L * others.Count + 7) / 8;   // every model's bits of windowRows rows
        Assert.Equal(windowRows, TaskArithmeticFamily.WindowRows(97, 1_031, others.Count, budget));
        using var whole = Merge(method, b, others, fused: true);
        using var windows = Merge(method, b, others, fused: true, maskBudget: budget);
        using var tensorPath = Merge(method, b, others, fused: false);
        AssertSameBytes(method + " (one window)", tensorPath, whole);
        AssertSameBytes(method + $" (windows of {windowRows} rows)", tensorPath, windows);
        // The report says why the tensor took longer (not for the NaN case: the tensor path decided it).
        if (method.EndsWith(" nan")) return;
        var notes = new List<string>();
        using (Merge(method, b, others, fused: true, maskBudget: budget, note: notes.Add)) { }
        var said = Assert.Single(notes);
        Assert.Contains($"{(97 + windowRows - 1) / windowRows} windows of {windowRows} rows", said);
        Assert.Equal(!method.Contains("no-rescale") && !method.Contains("inverse_density"), said.Contains("drawn twice"));
        notes.Clear();
        using (Merge(method, b, others, fused: true, note: notes.Add)) { }
        Assert.Empty(notes);   // one window: nothing to say
    }

    [Fact]
    public void Windows_that_cut_draw_chunks_and_states_give_the_same_bytes()
    {
        // 2 100 × 1 000 entries: three of the mask's seeded chunks, windows of 336 rows ending mid-chunk and mid-state.
        var gen = new torch.Generator(21);
        var b = torch.randn(2_100, 1_000, generator: gen);
        var others = Enumerable.Range(0, 2).Select(_ => (b + torch.randn(2_100, 1_000, generator: gen)).contiguous()).ToList();
        using var whole = Merge("dare_ties", b, others, fused: true);
        using var windows = Merge("dare_ties", b, others, fused: true, maskBudget: 336 * 1_000 * 2 / 8);
        AssertSameBytes("dare_ties (windows of 336 rows)", whole, windows);
    }

    [Theory]
    [InlineData(1L << 30, 256L << 20)]          // a 1 GB container: the least budget, 256 MB
    [InlineData(24L << 30, 1536L << 20)]        // this repository's CI machine, 24 GB: a sixteenth
    [InlineData(64L << 30, 2L << 30)]           // more than 32 GB: the most, 2 GB
    public void The_default_mask_budget_is_a_sixteenth_of_the_processs_memory_within_bounds(long available, long budget) =>
        Assert.Equal(budget, TaskArithmeticFamily.MaskBudgetFor(available));

    [Theory]
    [InlineData("ties")]
    [InlineData("breadcrumbs_ties")]
    [InlineData("task_arithmetic")]
    [InlineData("dare_ties")]
    [InlineData("sce")]
    public void Infinities_and_NaN_give_the_tensor_paths_bytes(string method)
    {
        var (b, others) = Inputs(10_007, seed: 3);
        others[2][400] = float.NegativeInfinity;   // infinite terms, a finite-or-infinite output: the fused path
        others[0][401] = float.PositiveInfinity;
        AssertSame(method, b, others);
        others[0][17] = float.PositiveInfinity;
        others[1][17] = float.NegativeInfinity;    // inf − inf in the sum: NaN, which sends the tensor to the tensor path
        AssertSame(method, b, others);
        others[1][900] = float.NaN;
        AssertSame(method, b, others);
    }

    [Theory]
    [InlineData("ties")]
    [InlineData("task_arithmetic")]
    [InlineData("sce")]
    public void The_kernel_vouches_for_a_finite_output_only(string method)
    {
        using var buffers = new OutputBuffers();
        var (b, others) = Inputs(5_003, seed: 21);
        using (var finite = MergeInto(buffers, method, b, others))
            Assert.True(buffers.IsVouchedFinite(finite));
        others[1][77] = float.PositiveInfinity;   // an infinite task vector: a non-finite output (for sce, NaN: the tensor path's)
        using var infinite = MergeInto(buffers, method, b, others);
        Assert.False(torch.isfinite(infinite).all().item<bool>(), "the infinite input does not reach the output");
        Assert.False(buffers.IsVouchedFinite(infinite));
    }

    [Fact]
    public void Sce_vouches_for_its_inputs_only_when_every_one_is_finite()
    {
        using var buffers = new OutputBuffers();
        var (b, others) = Inputs(5_003, seed: 23);
        using (var finite = MergeInto(buffers, "sce", b, others))
            Assert.True(buffers.AreInputsVouchedFinite(finite));
        // A non-finite entry in a model or in the base, in the vector body and in the scalar tail; with the infinity
        // masked out of the variance selection, the output may well be finite, and the inputs still are not.
        foreach (var (model, at) in new[] { (1, 77), (0, 5_001), (-1, 4_000) })
        {
            var (b2, others2) = Inputs(5_003, seed: 23);
            (model < 0 ? b2 : others2[model])[at] = model == 0 ? float.NaN : float.NegativeInfinity;
            using var merged = MergeInto(buffers, "sce", b2, others2);
            Assert.False(buffers.AreInputsVouchedFinite(merged), $"model {model}, entry {at}");
        }
        // Vouching is for the rented output of this tensor only: the next rental forgets it.
        using (var finite = MergeInto(buffers, "sce", b, others))
        {
            Assert.True(buffers.AreInputsVouchedFinite(finite));
            using var next = buffers.Uninitialized(b);
            Assert.False(buffers.AreInputsVouchedFinite(finite));
        }
    }

    private static torch.Tensor MergeInto(OutputBuffers buffers, string method, torch.Tensor b, List<torch.Tensor> others)
    {
        var pm = others.Select((_, i) => (IReadOnlyDictionary<string, object>)D(("weight", 0.3 + 0.45 * i), ("density", 0.6))).ToList();
        if (method == "sce")
            return new Sce().Merge(Input(new Sce(), b, others, D(("select_topk", 0.45)), others.Select((_, i) => (IReadOnlyDictionary<string, object>)D(("weight", 0.3 + 0.45 * i))).ToList(), buffers: buffers));
        var m = TaskVectorMethod(method, fused: true);
        return m.Merge(Input(m, b, others, null, method == "task_arithmetic" ? others.Select((_, i) => (IReadOnlyDictionary<string, object>)D(("weight", 0.3 + 0.45 * i))).ToList() : pm, buffers: buffers));
    }

    [Fact]
    public void A_cut_inside_a_run_of_equal_magnitudes_keeps_the_lowest_indices()
    {
        // Every |δ| equal: top 3 of 8 are the first three positions, whatever their signs.
        var b = torch.zeros(8);
        var x = torch.tensor(new float[] { -1, 1, 1, -1, 1, 1, -1, 1 });
        var ties = new Ties();
        var input = Input(ties, b, [x], perModel: [D(("weight", 1.0), ("density", 0.375))]);
        using var merged = ties.Merge(input);
        Assert.Equal(new float[] { -1, 1, 1, 0, 0, 0, 0, 0 }, merged.data<float>().ToArray());
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    public unsafe void Sce_variance_equals_torch_var(int models)
    {
        var gen = new torch.Generator((ulong)models);
        long n = 50_003;
        // wide and narrow spreads, equal values, large offsets: where Welford's rounding shows
        var tv = torch.randn(models, n, generator: gen) * torch.logspace(-6, 6, n).unsqueeze(0) + torch.randn(1, n, generator: gen) * 1e3;
        tv[.., 7] = 0.25f;
        tv = tv.contiguous();
        using var expected = tv.var(dim: 0, unbiased: false).contiguous();
        var actual = new float[n];
        var zeros = new float[n];   // x_k − 0 is x_k: the task vectors are the rows of tv
        float* rows = Float32Memory.Of(tv);
        var xs = Enumerable.Range(0, models).Select(k => (nint)(rows + k * n)).ToArray();
        fixed (float* into = actual, b = zeros)
            FusedSce.Variance(xs, b, n, into);
        var want = expected.data<float>().ToArray();
        for (int i = 0; i < n; i++)
            if (BitConverter.SingleToInt32Bits(want[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"element {i}: torch.var {want[i]:R}, Welford in C# {actual[i]:R}");
    }

    private static (torch.Tensor B, List<torch.Tensor> Others) Inputs(long n, int seed)
    {
        var gen = new torch.Generator((ulong)seed);
        // Quarter steps: many equal magnitudes, so cuts split runs of equal keys; zeros where a model left b alone.
        torch.Tensor Quantized() => (torch.randn(n, generator: gen) * 4).round() / 4;
        var b = Quantized().reshape(-1);
        var others = new List<torch.Tensor>();
        for (int i = 0; i < 3; i++)
        {
            var x = b + Quantized();
            x[5] = b[5];                       // δ = 0 in every model
            if (i == 1) x[6] = b[6] * -1;      // sign flips
            others.Add(x);
        }
        b[7] = -0.0f;
        others[0][7] = -0.0f;                  // δ = −0 − (−0) = 0; and x − b with negative zeros elsewhere below
        others[2][8] = -0.0f;
        b[8] = 0.0f;
        return (b.contiguous(), others.Select(o => o.contiguous()).ToList());
    }

    private static unsafe void AssertSame(string method, torch.Tensor b, List<torch.Tensor> others)
    {
        using var fused = Merge(method, b, others, fused: true);
        using var tensorPath = Merge(method, b, others, fused: false);
        AssertSameBytes(method, tensorPath, fused);
        // Again with the merge's scratch pool, its blocks left full of NaN by an earlier tensor: nothing may depend on
        // fresh (zeroed) memory.
        using var scratch = new ScratchBuffers();
        var dirty = Enumerable.Range(0, 4).Select(_ => scratch.Rent(40 * b.NumberOfElements)).ToList();
        foreach (var block in dirty)
        {
            new Span<byte>((void*)block, (int)(40 * b.NumberOfElements)).Fill(0xFF);
            scratch.Return(block);
        }
        using var pooled = Merge(method, b, others, fused: true, scratch);
        AssertSameBytes(method + " (pooled scratch)", tensorPath, pooled);
    }

    private static void AssertSameBytes(string method, torch.Tensor expected, torch.Tensor actual)
    {
        Assert.Equal(expected.dtype, actual.dtype);
        var f = actual.flatten().data<float>().ToArray();
        var t = expected.flatten().data<float>().ToArray();
        Assert.Equal(t.Length, f.Length);
        for (int i = 0; i < t.Length; i++)
            if (BitConverter.SingleToInt32Bits(t[i]) != BitConverter.SingleToInt32Bits(f[i]))
                Assert.Fail($"{method}: element {i} differs: tensor path {t[i]:R}, fused {f[i]:R}");
    }

    private static torch.Tensor Merge(string method, torch.Tensor b, List<torch.Tensor> others, bool fused, ScratchBuffers? scratch = null, long? maskBudget = null,
        Action<string>? note = null)
    {
        string[] words = method.Split(' ');
        if (words[0] == "sce")
        {
            var sce = new Sce { Fused = fused };
            double topK = words.Contains("all") ? 1.0 : words.Contains("none") ? 0.0 : 0.45;
            return sce.Merge(Input(sce, b, others, new Dictionary<string, object> { ["select_topk"] = topK }, others.Select((_, i) => (IReadOnlyDictionary<string, object>)D(("weight", 0.3 + 0.45 * i))).ToList(), seed: 5, scratch: scratch));
        }
        var m = TaskVectorMethod(words[0], fused, maskBudget);
        var global = new Dictionary<string, object>();
        if (words.Contains("no-rescale")) global["rescale"] = false;
        if (words.Contains("normalize")) global["normalize"] = true;
        if (words.Contains("dis-sum")) global["normalize"] = false;
        if (words.Contains("lambda")) global["lambda"] = 0.7;
        if (words.Contains("inverse_density")) { global["rescale"] = true; global["rescale_mode"] = "inverse_density"; }
        if (words.Contains("dense-rescale")) { global["rescale"] = true; global["rescale_mode"] = "inverse_density"; }
        if (words.Contains("model-thresholds"))
        {
            global["topk_scope"] = "model";
            m = (TaskArithmeticFamily)m.WithDecision("""{"m0": 0.5, "m1": 0.30000001192092896, "m2": 0.7}""");
        }
        double density = words.Contains("dense") || words.Contains("dense-rescale") ? 1.0 : 0.4;
        double gamma = words.Contains("big-gamma") ? 0.7 : 0.05;
        var perModel = Enumerable.Range(0, others.Count).Select(i => (IReadOnlyDictionary<string, object>)(m is Breadcrumbs or BreadcrumbsTies
            ? D(("weight", 0.3 + 0.45 * i), ("density", density), ("gamma", gamma))
            : m is TaskArithmetic ? D(("weight", 0.3 + 0.45 * i)) : D(("weight", 0.3 + 0.45 * i), ("density", density)))).ToList();
        return m.Merge(Input(m, b, others, global, perModel, seed: 5, scratch: scratch, note: note));
    }
}
