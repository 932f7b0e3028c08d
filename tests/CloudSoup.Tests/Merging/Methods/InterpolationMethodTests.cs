// slerp table and Model Stock incl. the degenerate case (docs/methods.md, worked examples), and the other
// per-tensor methods as mergekit/merge_methods/*.py define them, in float64.
using CloudSoup.Control.Methods;
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Merging.Methods;
using TorchSharp;
using static CloudSoup.Tests.Merging.Methods.MethodFixture;

namespace CloudSoup.Tests.Merging.Methods;

public class InterpolationMethodTests
{
    [Theory]
    [InlineData(new[] { 1.0, 0, 0, 0 }, new[] { 0.0, 1, 0, 0 }, 0.5, new[] { 0.7071068, 0.7071068, 0, 0 })]
    [InlineData(new[] { 1.0, 0, 0, 0 }, new[] { 0.0, 1, 0, 0 }, 0.25, new[] { 0.9238795, 0.3826834, 0, 0 })]
    [InlineData(new[] { 2.0, 0, 0, 0 }, new[] { 0.0, 1, 0, 0 }, 0.5, new[] { 1.414214, 0.7071068, 0, 0 })]
    [InlineData(new[] { 1.0, 0, 0, 0 }, new[] { 0.5, 0.8660254, 0, 0 }, 0.5, new[] { 0.8660254, 0.5, 0, 0 })]
    [InlineData(new[] { 1.0, 0, 0, 0 }, new[] { 1.0, 0.01, 0, 0 }, 0.5, new[] { 1.0, 0.005, 0, 0 })]
    [InlineData(new[] { 1.0, 2, 0, 0 }, new[] { -1.0, -2, 0, 0 }, 0.5, new[] { 0.0, 0, 0, 0 })]
    [InlineData(new[] { 1.0, 2, 3, 4 }, new[] { 0.0, 0, 0, 0 }, 0.5, new[] { 0.7071068, 1.414214, 2.12132, 2.828427 })]
    [InlineData(new[] { 1.5, -1.2, 0.5, 0.1 }, new[] { 0.7, -0.6, 0.7, 0.1 }, 0.3, new[] { 1.279342, -1.035765, 0.5698467, 0.101678 })]
    // t outside [0, 1] extrapolates along the same arc (or line), as mergekit does
    [InlineData(new[] { 1.0, 0, 0, 0 }, new[] { 0.0, 1, 0, 0 }, 1.5, new[] { -0.7071068, 0.7071068, 0, 0 })]
    [InlineData(new[] { 1.0, 0, 0, 0 }, new[] { 0.0, 1, 0, 0 }, -0.5, new[] { 0.7071068, -0.7071068, 0, 0 })]
    [InlineData(new[] { 1.0, 0, 0, 0 }, new[] { 1.0, 0.01, 0, 0 }, 2.0, new[] { 1.0, 0.02, 0, 0 })]
    public void Slerp_table(double[] v0, double[] v1, double t, double[] expected)
    {
        var m = new Slerp();
        Close(expected, m.Merge(Input(m, T(v0), [T(v1)], D(("t", t)))), 1e-6);
    }

    [Fact]
    public void Nuslerp_flattened_with_weights_equals_slerp()
    {
        var m = new NuSlerp();
        // no base: t = w2/(w1+w2) = 0.3
        var r = m.Merge(Input(m, null, [T(Theta(Tau1)), T(Theta(Tau2))], perModel: [D(("weight", 0.7)), D(("weight", 0.3))]));
        Close([1.279342, -1.035765, 0.5698467, 0.101678], r);
        // zero weight sum → t = 0.5
        var half = m.Merge(Input(m, null, [T(1, 0, 0, 0), T(0, 1, 0, 0)], perModel: [D(("weight", -0.5)), D(("weight", 0.5))]));
        Close([0.7071068, 0.7071068, 0, 0], half);
    }

    [Fact]
    public void Nuslerp_unflattened_slerps_each_vector()
    {
        var m = new NuSlerp();
        var a = torch.tensor(new double[] { 1, 0, 0, 1 }, dtype: torch.ScalarType.Float64).reshape(2, 2);
        var b = torch.tensor(new double[] { 0, 1, 1, 0 }, dtype: torch.ScalarType.Float64).reshape(2, 2);
        // per column vector (last dim slices of the transposed tensor) when row_wise; per row otherwise — both give the
        // 45° midpoint here for each unit vector.
        var r = m.Merge(Input(m, null, [a, b], D(("nuslerp_flatten", false)), [D(("weight", 1.0)), D(("weight", 1.0))]));
        Close([0.7071068, 0.7071068, 0.7071068, 0.7071068], r);
    }

    [Fact]
    public void Model_stock_filter_wise_takes_one_angle_per_vector_along_the_last_dimension()
    {
        // [2, 2, 2] with a zero base: the four last-dim vectors of x1, x2 are orthogonal (t = 0), parallel (t = 1),
        // orthogonal, parallel. One angle per leading slice (the rows of dim 0) would mix them.
        var m = new ModelStock();
        var b = torch.zeros(2, 2, 2, dtype: torch.ScalarType.Float64);
        var x1 = T(1, 0, 1, 0, 1, 1, 0, 2).reshape(2, 2, 2);
        var x2 = T(0, 1, 2, 0, 1, -1, 0, 1).reshape(2, 2, 2);
        var r = m.Merge(Input(m, b, [x1, x2], D(("filter_wise", true))));
        Assert.Equal(new long[] { 2, 2, 2 }, r.shape);
        Close([0, 0, 1.5, 0, 0, 0, 0, 1.5], r);
        // a 1-D tensor is one vector: cos of [1, 0, 1, 0] and [0, 1, 2, 0] is 2/√10, t = 2c/(1 + c)
        double c = 2 / Math.Sqrt(10), t = 2 * c / (1 + c);
        Close([t * 0.5, t * 0.5, t * 1.5, 0], m.Merge(Input(m, torch.zeros(4, dtype: torch.ScalarType.Float64), [T(1, 0, 1, 0), T(0, 1, 2, 0)], D(("filter_wise", true)))));
    }

    [Fact]
    public void Model_stock_two_models()
    {
        var m = new ModelStock();
        Close([1.279915, -1.031102, 0.3133903, 0.03110162], m.Merge(Input(m, T(Theta0), [T(Theta(Tau1)), T(Theta(Tau3))])));
    }

    [Fact]
    public void Model_stock_three_models_is_the_degenerate_negative_t()
    {
        var m = new ModelStock();
        var r = m.Merge(Input(m, T(Theta0), [T(Theta(Tau1)), T(Theta(Tau2)), T(Theta(Tau3))]));
        // mean pairwise cos −0.2611634 → t = −1.640223 (mergekit does not clamp)
        double t = -1.640223;
        var mean = new[] { 0.2, 0.1, -0.4 / 3, 0.2 / 3 }.Select((d, i) => Theta0[i] + d).ToArray();
        Close(mean.Select((x, i) => t * x + (1 - t) * Theta0[i]).ToArray(), r, 1e-5);
        Assert.True(r.isfinite().all().ToBoolean());
    }

    [Fact]
    public void Nearswap_pulls_close_elements_to_the_other_model()
    {
        var m = new NearSwap();
        // |b − x| = [0.5, 0.2, 0, 0.1]; t = 0.1 → ω = [0.2, 0.5, 1, 1]
        var r = m.Merge(Input(m, T(Theta0), [T(Theta(Tau1))], D(("t", 0.1))));
        Close([1.0 + 0.2 * 0.5, -1.0 - 0.5 * 0.2, 0.5, 0.1], r);
    }

    [Fact]
    public void Ram_keeps_unique_changes_and_averages_shared_ones()
    {
        var m = new Ram();
        // τ1 = [0.5, −0.2, 0, 0.1], τ2 = [−0.3, 0.4, 0.2, 0.1]: element 2 unique to τ2, others shared by 2
        var r = m.Merge(Input(m, T(Theta0), [T(Theta(Tau1)), T(Theta(Tau2))]));
        Close([1 + 0.1, -1 + 0.1, 0.5 + 0.2, 0.1], r);
    }

    [Fact]
    public void Ramplus_boosts_unique_entries_by_the_overlap_ratio()
    {
        var m = new RamPlusTl();
        // τ2: 3 shared, 1 unique → ρ = 3 → clip to α = 0.2 → λ = 1 + 0.1·0.2 = 1.02 on the unique element
        var r = m.Merge(Input(m, T(Theta0), [T(Theta(Tau1)), T(Theta(Tau2))]));
        Close([1 + 0.1, -1 + 0.1, 0.5 + 0.2 * 1.02, 0.1], r);
    }

    [Fact]
    public void Sce_weights_by_energy_and_erases_sign_conflicts()
    {
        var m = new Sce();
        var r = m.Merge(Input(m, T(Theta0), [T(Theta(Tau1)), T(Theta(Tau2))]));
        // energies mean(τ²): τ1 0.075, τ2 0.075 → ω = ½ each. Sums [0.2, 0.2, 0.2, 0.2] → all +.
        // Agreeing: e0 τ1 only → 0.5; e1 τ2 only → 0.4; e2 τ2 → 0.2; e3 both → 0.1.
        Close([1.5, -0.6, 0.7, 0.1], r);
    }

    [Fact]
    public void Sce_equal_variances_keep_the_lower_index_first()
    {
        // variances [1, 1, 1, 0]: 3 non-zero, select_topk 0.5 keeps int(1.5) = 1 position, the lowest index among the
        // equal ones (docs/methods.md, "Ties between equal magnitudes"). Then τ1 = [1,0,0,0], τ2 = [−1,0,0,0]: the sum 0
        // elects +, so τ1 alone (energy weight ½ of ½) gives 1. Keeping position 1 instead would give [0, 1, 0, 0].
        var m = new Sce();
        var r = m.Merge(Input(m, torch.zeros(4, dtype: torch.ScalarType.Float64), [T(1, -1, 1, 0), T(-1, 1, -1, 0)], D(("select_topk", 0.5))));
        Close([1, 0, 0, 0], r);
    }

    [Fact]
    public void Multislerp_of_orthogonal_unit_vectors_with_equal_weights_is_the_midpoint()
    {
        var m = new MultiSlerp();
        var r = m.Merge(Input(m, null, [T(1, 0, 0, 0), T(0, 1, 0, 0)], perModel: [D(("weight", 1.0)), D(("weight", 1.0))]));
        Close([0.7071068, 0.7071068, 0, 0], r, 1e-6);
    }

    [Fact]
    public void Karcher_of_orthogonal_unit_vectors_is_the_midpoint_and_keeps_the_mean_norm()
    {
        var m = new Karcher();
        var r = m.Merge(Input(m, null, [T(2, 0, 0, 0), T(0, 4, 0, 0)]));
        Close([3 * 0.7071068, 3 * 0.7071068, 0, 0], r, 1e-5);
        var three = m.Merge(Input(m, null, [T(1, 0, 0), T(0, 1, 0), T(0, 0, 1)]));
        Close([0.5773503, 0.5773503, 0.5773503], three, 1e-5);
    }

    [Fact]
    public void Arcee_fusion_takes_only_the_outlier_changes()
    {
        var m = new ArceeFusion();
        // one row: one large change among small spread ones (0.001·i) → only the outlier passes median + 1.5·IQR
        var b = torch.zeros(20, dtype: torch.ScalarType.Float64);
        var values = Enumerable.Range(0, 20).Select(i => 0.001 * i).ToArray();
        values[7] = 3.0;
        var r = m.Merge(Input(m, b, [T(values)]));
        var expected = new double[20];
        expected[7] = 3.0;
        Close(expected, r);
    }

    [Fact]
    public void Passthrough_scales_its_single_input()
    {
        var m = new Passthrough();
        Close([2, -2, 1, 0], m.Merge(Input(m, null, [T(Theta0)], perModel: [D(("scale", 2.0))])));
    }

    [Fact]
    public void Every_method_gives_finite_output_on_random_tensors()
    {
        using var gen = new torch.Generator(11);
        torch.Tensor R() => torch.randn(6, 5, dtype: torch.ScalarType.Float64, generator: gen);
        // methods with auxiliary inputs (fisher, gradient_matching) are covered in FisherFamilyTests; soups are
        // job-level (their per-tensor merge is SoupWeights after the search), covered in the Soups tests
        foreach (var m in MergeMethods.All.Where(m => m.Parameters.All(p => p.Kind != ParameterKind.Reference)))
        {
            int others = m.Name switch { "slerp" or "nearswap" or "arcee_fusion" => 1, "passthrough" => 1, _ => 3 };
            if (m.Name == "nuslerp") others = 2;
            bool usesBase = m.BaseModel == BaseModelUse.Required;
            var global = D(("t", 0.3));
            var pms = Enumerable.Range(0, others).Select(_ => (IReadOnlyDictionary<string, object>)D(("weight", 0.5), ("density", 0.5))).ToList();
            var g = global.Where(kv => m.Parameters.Any(p => p.Name == kv.Key)).ToDictionary();
            var r = m.Merge(Input(m, usesBase ? R() : null, Enumerable.Range(0, others).Select(_ => R()).ToList(), g,
                pms.Select(p => (IReadOnlyDictionary<string, object>)p.Where(kv => m.Parameters.Any(s => s.Name == kv.Key)).ToDictionary()).ToList()));
            Assert.True(r.isfinite().all().ToBoolean(), m.Name);
            Assert.Equal(new long[] { 6, 5 }, r.shape);
        }
    }
}
