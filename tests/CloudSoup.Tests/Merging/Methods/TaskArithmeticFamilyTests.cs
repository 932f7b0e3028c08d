// Worked examples of docs/methods.md "Test fixture F and worked examples" (float64, 1e-6) and mergekit's
// generalized_task_arithmetic.py / sparsify.py behaviour.
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Merging.Methods;
using TorchSharp;
using static CloudSoup.Tests.Merging.Methods.MethodFixture;

namespace CloudSoup.Tests.Merging.Methods;

public class TaskArithmeticFamilyTests
{
    private static torch.Tensor[] Models => [T(Theta(Tau1)), T(Theta(Tau2)), T(Theta(Tau3))];

    private static torch.Tensor Run(IMergeMethod m, Dictionary<string, object> global, Dictionary<string, object>? perModel = null) =>
        m.Merge(Input(m, T(Theta0), Models, global, perModel is null ? null : [perModel, perModel, perModel]));

    [Theory]
    [InlineData(0.5, new[] { 1.3, -0.85, 0.3, 0.1 })]
    [InlineData(1.0, new[] { 1.6, -0.7, 0.1, 0.2 })]
    [InlineData(0.0, new[] { 1.0, -1.0, 0.5, 0.0 })]
    public void Task_arithmetic_addition(double lambda, double[] expected) =>
        Close(expected, Run(new TaskArithmetic(), D(("lambda", lambda))));

    [Fact]
    public void Task_arithmetic_negation_uses_a_negative_weight()
    {
        var m = new TaskArithmetic();
        Close([0.5, -0.8, 0.5, -0.1], m.Merge(Input(m, T(Theta0), [T(Theta(Tau1))], perModel: [D(("weight", -1.0))])));
    }

    [Fact]
    public void Ties_dis_mean_keeps_two_of_four() =>
        Close([1.45, -0.6, -0.1, 0.0], Run(new Ties(), D(("lambda", 1.0)), D(("weight", 1.0), ("density", 0.5))));

    [Fact]
    public void Ties_dis_sum_is_normalize_false() =>
        Close([1.27, -0.88, 0.32, 0.0], Run(new Ties(), D(("lambda", 0.3), ("normalize", false)), D(("weight", 1.0), ("density", 0.5))));

    [Fact]
    public void Ties_official_trim_of_three_of_four_with_density_075() =>
        // int(0.75·4) = 3 kept: the official code's "≥ threshold" result for K = 50 % (docs/methods.md).
        Close([1.45, -0.75, -0.1, 0.1], Run(new Ties(), D(("lambda", 1.0)), D(("weight", 1.0), ("density", 0.75))));

    private static readonly Dictionary<int, double[]> DareKeep = new()
    {
        // keep masks of the DARE worked example in docs/methods.md (model 0 is the base).
        [1] = [1, 0, 1, 0], [2] = [1, 0, 0, 1], [3] = [0, 1, 1, 0],
    };

    [Fact]
    public void Dare_linear_with_injected_masks_and_inverse_density() =>
        Close([1.2, -0.9, -0.1, 0.1], Run(new DareLinear(new FixedMasks(DareKeep)), D(("lambda", 0.5), ("rescale_mode", "inverse_density")), D(("weight", 1.0), ("density", 0.5))));

    [Fact]
    public void Dare_linear_with_l1_rescale_matches_each_task_vectors_l1_norm()
    {
        // τ1 kept [0.5,0,0,0]: L1 0.8/0.5 → ×1.6 → [0.8,0,0,0]; τ2 kept [-0.3,0,0,0.1]: 1.0/0.4 → [-0.75,0,0,0.25];
        // τ3 kept [0,0.1,-0.6,0]: 1.1/0.7 → [0, 0.157142857, -0.942857143, 0]. Sum·0.5 + θ0.
        double s0 = 0.8 - 0.75, s1 = 0.1 * 1.1 / 0.7, s2 = -0.6 * 1.1 / 0.7, s3 = 0.25;
        Close([1 + 0.5 * s0, -1 + 0.5 * s1, 0.5 + 0.5 * s2, 0.5 * s3],
            Run(new DareLinear(new FixedMasks(DareKeep)), D(("lambda", 0.5)), D(("weight", 1.0), ("density", 0.5))));
    }

    [Fact]
    public void Dare_ties_elects_signs_on_the_dropped_and_rescaled_vectors()
    {
        // τ̃ = [1,0,0,0], [-0.6,0,0,0.2], [0,0.2,-1.2,0]; sums [0.4,0.2,-1.2,0.2] → signs [+,+,-,+];
        // agreeing entries: [1.0, 0.2, -1.2, 0.2], divisors [1,1,1,1] (normalize defaults to false for dare_ties).
        Close([2.0, -0.8, -0.7, 0.2],
            Run(new DareTies(new FixedMasks(DareKeep)), D(("rescale_mode", "inverse_density")), D(("weight", 1.0), ("density", 0.5))));
    }

    [Fact]
    public void Breadcrumbs_worked_example() =>
        Close([1.05, -1.05, 0.6, 0.05], Run(new Breadcrumbs(), D(("lambda", 0.5)), D(("weight", 1.0), ("density", 0.5), ("gamma", 0.25))));

    [Fact]
    public void Breadcrumbs_with_gamma_zero_keeps_the_top_density_not_nothing()
    {
        // mergekit's defect: n_top = 0 made the kept slice empty. Here gamma = 0 keeps the 2 largest.
        var kept = Sparsifiers.MagnitudeOutliers(T(Tau1), 0.5, 0.0);
        Close([0.5, -0.2, 0, 0], kept);
        // the default gamma 0.01 on a 50-element tensor at density 0.5 keeps 25 (mergekit kept 0)
        var v = torch.arange(1, 51, dtype: torch.ScalarType.Float64);
        Assert.Equal(25, Sparsifiers.MagnitudeOutliers(v, 0.5, 0.01).count_nonzero().ToInt64());
    }

    [Theory]
    [InlineData(0.01)]
    [InlineData(0.5)]
    public void Breadcrumbs_at_density_1_keeps_the_whole_task_vector_whatever_gamma(double gamma)
    {
        // mergekit/sparsify.py returns the tensor unchanged at density ≥ 1; the recipe defaults are density 1, gamma 0.01.
        Close(Tau3, Sparsifiers.MagnitudeOutliers(T(Tau3), 1.0, gamma));
        Close([1.6, -0.7, 0.1, 0.2], Run(new Breadcrumbs(), D(), D(("weight", 1.0), ("gamma", gamma))));
    }

    [Fact]
    public void Breadcrumbs_with_density_plus_gamma_above_1_cuts_fewer_outliers()
    {
        // n = 10, density 0.5 keeps 5; gamma 0.6 would cut 6 from the top, leaving too few, so it cuts 10 − 5 = 5:
        // the five smallest survive (mergekit lowers n_top by the missing bottom count).
        var v = torch.arange(1, 11, dtype: torch.ScalarType.Float64);
        Close([1, 2, 3, 4, 5, 0, 0, 0, 0, 0], Sparsifiers.MagnitudeOutliers(v, 0.5, 0.6));
    }

    [Fact]
    public void Equal_magnitudes_rank_the_lower_index_as_larger_in_ties_and_breadcrumbs()
    {
        // docs/methods.md, "Ties between equal magnitudes": the order is |δ| descending, then the flat index ascending.
        Close([0.5, -0.5, 0, 0], Sparsifiers.Magnitude(T(0.5, -0.5, 0.5, 0.2), 0.5));
        var ties = new Ties();
        Close([1.5, -1.5, 0.5, 0], ties.Merge(Input(ties, T(Theta0), [T(1.5, -1.5, 1.0, 0.2)], perModel: [D(("weight", 1.0), ("density", 0.5))])));
        // ranks 0..7 are indices 0..7 here; gamma 0.25 cuts ranks 0, 1 (the first two 0.3s), density 0.5 keeps ranks 2..5
        Close([0, 0, 0.3, -0.3, 0.1, 0.1, 0, 0], Sparsifiers.MagnitudeOutliers(T(0.3, 0.3, 0.3, -0.3, 0.1, 0.1, -0.1, 0.1), 0.5, 0.25));
    }

    [Theory]
    [InlineData(4096, 0, 0.5, 1)]          // magnitudes from four values: about a thousand ties at every threshold
    [InlineData(4096, 0, 0.25, 3)]
    [InlineData(4096, 41, 0.5, 7)]         // breadcrumbs' window: drops the 41 first ranks
    [InlineData(5000, 50, 0.3, 1)]
    [InlineData(64, 0, 0.5, 2)]            // all zeros but a few: the threshold itself ties with most entries
    [InlineData(1000, 10, 0.0, 5)]         // nothing kept
    [InlineData(1000, 0, 1.0, 5)]          // everything kept
    public void Selection_masks_equal_the_stable_sort_masks_under_many_ties(int n, int start, double fraction, int seed)
    {
        // The selection path (kthvalue + lowest indices among equals) must keep exactly the entries the stable sort
        // ranks at [start, start + count): docs/methods.md, "Ties between equal magnitudes".
        using var scope = torch.NewDisposeScope();
        using var gen = new torch.Generator((ulong)seed);
        var levels = n == 64 ? torch.tensor(new[] { 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25 }) : torch.tensor(new[] { 0.5, -0.5, 0.25, -0.25, 1.0, 0.0, -0.0 });
        var v = levels.index_select(0, torch.randint(0, levels.shape[0], [n], generator: gen)).to_type(torch.ScalarType.Float32);
        long count = (long)(fraction * n);
        var bySort = torch.zeros_like(v);
        if (count > 0) bySort.index_fill_(0, Sparsifiers.RankByMagnitude(v).narrow(0, start, Math.Min(count, n - start)), 1.0);
        var bySelection = Sparsifiers.RankedRangeMask(v, start, Math.Min(count, n - start));
        Assert.True(bySort.equal(bySelection).all().ToBoolean(), $"masks differ at n={n}, start={start}, count={count}");
        Assert.Equal(Math.Min(count, n - start), bySelection.count_nonzero().ToInt64());
    }

    [Fact]
    public void A_task_vector_with_NaN_gets_the_sort_paths_mask()
    {
        using var scope = torch.NewDisposeScope();
        var v = torch.tensor(new[] { 0.5f, float.NaN, 0.5f, -0.5f, 0.1f, float.NaN, 0.2f, 0.5f });
        for (long start = 0; start < 8; start++)
            for (long count = 0; start + count <= 8; count++)
            {
                var bySort = torch.zeros_like(v);
                if (count > 0) bySort.index_fill_(0, Sparsifiers.RankByMagnitude(v).narrow(0, start, count), 1.0);
                Assert.True(bySort.equal(Sparsifiers.RankedRangeMask(v, start, count)).all().ToBoolean(), $"start={start}, count={count}");
            }
    }

    [Theory]
    [InlineData(1000, 0.5, 0.01)]
    [InlineData(1000, 0.2, 0.05)]
    [InlineData(37, 0.3, 0.1)]
    public void Magnitude_and_breadcrumbs_keep_exact_counts(int n, double density, double gamma)
    {
        using var gen = new torch.Generator(7);
        var v = torch.randn(n, dtype: torch.ScalarType.Float64, generator: gen);
        Assert.Equal((long)(density * n), Sparsifiers.Magnitude(v, density).count_nonzero().ToInt64());
        Assert.Equal((long)(density * n), Sparsifiers.MagnitudeOutliers(v, density, gamma).count_nonzero().ToInt64());
        // breadcrumbs drops exactly the int(γn) largest magnitudes
        var kept = Sparsifiers.MagnitudeOutliers(v, density, gamma);
        var largest = v.abs().sort(descending: true).Values.narrow(0, 0, (long)(gamma * n));
        Assert.True(kept.abs().max().ToDouble() <= (largest.NumberOfElements > 0 ? largest.min().ToDouble() : double.MaxValue));
    }

    [Fact]
    public void L1_rescale_preserves_the_l1_norm()
    {
        using var gen = new torch.Generator(3);
        var v = torch.randn(500, dtype: torch.ScalarType.Float64, generator: gen);
        var keep = torch.bernoulli(torch.full(500, 0.3, dtype: torch.ScalarType.Float64), gen);
        var p = Sparsifiers.DareProbabilities(v, 0.3);
        var r = Sparsifiers.ApplyMask(v, keep, p, rescale: true, RescaleMode.L1);
        Assert.Equal(v.abs().sum().ToDouble(), r.abs().sum().ToDouble(), 9);
    }

    [Fact]
    public void Seeded_dare_masks_reproduce_and_differ_per_model_and_tensor()
    {
        var m = new DareLinear();
        var x = torch.randn(64, 32, dtype: torch.ScalarType.Float64);
        var b = torch.zeros(64, 32, dtype: torch.ScalarType.Float64);
        var pm = D(("weight", 1.0), ("density", 0.3));
        torch.Tensor Once(string name, long seed) => m.Merge(Input(m, b, [x, x], perModel: [pm, pm], seed: seed, name: name));
        var a1 = Once("l.0.w", 5);
        Assert.True(a1.allclose(Once("l.0.w", 5), 0, 0));
        Assert.False(a1.allclose(Once("l.1.w", 5), 0, 0));
        Assert.False(a1.allclose(Once("l.0.w", 6), 0, 0));
        // two models with the same tensor get different masks
        var input = Input(m, b, [x, x], perModel: [pm, pm]);
        var p = Sparsifiers.DareProbabilities(x, 0.3);
        Assert.False(SeededMaskProvider.Instance.KeepMask(p, input, 1).allclose(SeededMaskProvider.Instance.KeepMask(p, input, 2), 0, 0));
    }

    [Fact]
    public void Dare_kept_fraction_is_close_to_density()
    {
        var m = new DareLinear();
        var x = torch.ones(200, 100, dtype: torch.ScalarType.Float64);
        var input = Input(m, torch.zeros_like(x), [x], perModel: [D(("weight", 1.0), ("density", 0.3))]);
        var mask = SeededMaskProvider.Instance.KeepMask(Sparsifiers.DareProbabilities(x, 0.3), input, 1);
        double frac = mask.mean().ToDouble();
        // 20,000 Bernoulli(0.3) draws: sd ≈ 0.0032; 5 sd.
        Assert.InRange(frac, 0.284, 0.316);
    }

    [Fact]
    public void Seeded_masks_are_drawn_chunk_by_chunk_each_from_its_own_seed()
    {
        // The stream's definition (docs/methods.md, "Randomness"): chunk c of the flattened tensor is drawn from a
        // generator seeded with Seeds.For(mask seed, "chunk c"), whichever core draws it.
        using var scope = torch.NewDisposeScope();
        var m = new DareLinear();
        long n = 2 * SeededMaskProvider.ChunkElements + 12345;
        var x = torch.ones(n, dtype: torch.ScalarType.Float32);
        var input = Input(m, torch.zeros_like(x), [x, x], perModel: [D(("weight", 1.0), ("density", 0.3)), D(("weight", 1.0), ("density", 0.3))], seed: 3, name: "w");
        var p = Sparsifiers.DareProbabilities(x, 0.3);
        var mask = SeededMaskProvider.Instance.KeepMask(p, input, 1);
        long seed = SeededMaskProvider.SeedFor(input, 1);
        for (long c = 0; c * SeededMaskProvider.ChunkElements < n; c++)
        {
            long start = c * SeededMaskProvider.ChunkElements, length = Math.Min(SeededMaskProvider.ChunkElements, n - start);
            using var gen = new torch.Generator((ulong)Seeds.For(seed, $"chunk {c}"));
            var expected = torch.bernoulli(p.narrow(0, start, length), gen);
            Assert.True(expected.equal(mask.narrow(0, start, length)).all().ToBoolean(), $"chunk {c} differs");
        }
        Assert.True(mask.equal(SeededMaskProvider.Instance.KeepMask(p, input, 1)).all().ToBoolean());
        Assert.Equal(torch.ScalarType.Float32, mask.dtype);
    }

    [Fact]
    public unsafe void Seeded_uniforms_below_p_are_the_seeded_masks_chunk_by_chunk()
    {
        // DELLA's fused path reads the uniforms and compares them itself (RowRanks.Keep): over several chunks and with
        // probabilities that vary entry by entry, u < p must be KeepMask's draws, from wherever the reading starts.
        using var scope = torch.NewDisposeScope();
        var m = new DellaLinear();
        long n = 2 * SeededMaskProvider.ChunkElements + 12345;
        var x = torch.ones(n, dtype: torch.ScalarType.Float32);
        var input = Input(m, torch.zeros_like(x), [x, x], perModel: [D(("weight", 1.0), ("density", 0.3)), D(("weight", 1.0), ("density", 0.3))], seed: 5, name: "w");
        var p = torch.rand(n, generator: new torch.Generator(8));
        var mask = SeededMaskProvider.Instance.KeepMask(p, input, 1);
        var u = torch.empty_like(p);
        SeededMaskProvider.UniformsFrom(SeededMaskProvider.SeedFor(input, 1), 0).Read(Float32Memory.Of(u), (int)n);
        Assert.True(u.lt(p).to_type(torch.ScalarType.Float32).equal(mask).all().ToBoolean());
        // Read from inside the second chunk, as a range of rows does.
        long start = SeededMaskProvider.ChunkElements + 1_000;
        var tail = torch.empty(n - start, dtype: torch.ScalarType.Float32);
        SeededMaskProvider.UniformsFrom(SeededMaskProvider.SeedFor(input, 1), start).Read(Float32Memory.Of(tail), (int)(n - start));
        Assert.True(tail.equal(u.narrow(0, start, n - start)).all().ToBoolean());
    }

    [Fact]
    public void Della_ranks_equal_the_stable_argsort_of_the_argsort()
    {
        using var scope = torch.NewDisposeScope();
        using var gen = new torch.Generator(11);
        // 2-D float32: the radix ranks (RowRanks); 3-D and float64: the stable argsort and scatter; 1-D and a NaN row too
        foreach (var (shape, dtype) in new[] { (new long[] { 37, 53 }, torch.ScalarType.Float32), (new long[] { 6, 40, 3 }, torch.ScalarType.Float32),
                     (new long[] { 37, 53 }, torch.ScalarType.Float64), (new long[] { 3001 }, torch.ScalarType.Float32), (new long[] { 4, 2100 }, torch.ScalarType.Float32) })
        {
            // few distinct magnitudes, so the sort has many ties to order (lower index first)
            var delta = (torch.randint(-3, 4, shape, generator: gen).to_type(dtype)) * 0.25;
            if (shape[0] == 4) delta[1, 7] = double.NaN;
            var rows = delta.dim() <= 1 ? delta.reshape(1, -1) : delta.reshape(delta.shape[0], delta.shape[1], -1);
            var rank = rows.abs().sort(dim: 1, descending: false, stable: true).Indices.sort(dim: 1, stable: true).Indices.to_type(delta.dtype);
            var expected = ((0.5 - 0.15) + 2 * 0.15 * rank / (rows.shape[1] - 1)).reshape(delta.shape);
            Assert.True(expected.equal(Sparsifiers.DellaProbabilities(delta, 0.5, 0.15)).all().ToBoolean(), string.Join("x", shape));
        }
        // Continuous magnitudes, where every radix digit differs between keys (every pass runs), with a few exact
        // repeats and zeros, and values from 1e-30 to 1e30.
        foreach (var width in new[] { 2, 3, 1_031, 5_000 })
        {
            var delta = torch.randn(new long[] { 17, width }, generator: gen) * torch.pow(10, torch.randint(-30, 31, new long[] { 17, width }, generator: gen).to_type(torch.ScalarType.Float32));
            if (width > 100)
            {
                delta[3, 10] = delta[3, 90];
                delta[3, 11] = -delta[3, 90];
                delta[5, 7] = 0;
                delta[5, 8] = -0.0f;
            }
            var rank = delta.abs().sort(dim: 1, descending: false, stable: true).Indices.sort(dim: 1, stable: true).Indices.to_type(delta.dtype);
            var expected = (0.5 - 0.15) + 2 * 0.15 * rank / (width - 1);
            Assert.True(expected.equal(Sparsifiers.DellaProbabilities(delta, 0.5, 0.15)).all().ToBoolean(), $"17x{width}");
        }
    }

    [Fact]
    public void Della_probabilities_span_density_plus_minus_epsilon_by_rank()
    {
        var p = Sparsifiers.DellaProbabilities(T(0.5, -0.2, 0.0, 0.1), 0.5, 0.15);
        // ranks by |δ|: 3, 2, 0, 1 → 0.35 + 0.3·rank/3
        Close([0.65, 0.55, 0.35, 0.45], p);
    }

    [Fact]
    public void Della_with_injected_masks_and_inverse_density_divides_by_each_probability()
    {
        var keep = new Dictionary<int, double[]> { [1] = [1, 1, 0, 0] };
        var m = new DellaLinear(new FixedMasks(keep));
        var r = m.Merge(Input(m, T(Theta0), [T(Theta(Tau1))], D(("rescale_mode", "inverse_density")), [D(("weight", 1.0), ("density", 0.5), ("epsilon", 0.15))]));
        Close([1 + 0.5 / 0.65, -1 - 0.2 / 0.55, 0.5, 0.0], r);
    }

    [Fact]
    public void No_nan_or_inf_on_zero_task_vectors()
    {
        foreach (var m in new IMergeMethod[] { new Ties(), new DareTies(), new DareLinear(), new Breadcrumbs(), new BreadcrumbsTies(), new Della(), new DellaLinear(), new TaskArithmetic() })
        {
            var b = torch.randn(8, 8, dtype: torch.ScalarType.Float64);
            var pm = D(("weight", 1.0), ("density", 0.5));
            var r = m.Merge(Input(m, b, [b.clone(), b.clone()], perModel: [pm, pm]));
            Assert.True(r.isfinite().all().ToBoolean(), m.Name);
            Assert.True(r.allclose(b), m.Name);
        }
    }
}
