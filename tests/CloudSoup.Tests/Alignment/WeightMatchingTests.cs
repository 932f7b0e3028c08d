using CloudSoup.Engine.Alignment;
using CloudSoup.Control.Errors;
using TorchSharp;
using static TorchSharp.torch;

namespace CloudSoup.Tests.Alignment;

public class WeightMatchingTests
{
    private static void AssertSameFunction(nn.Module<Tensor, Tensor> net, Dictionary<string, Tensor> before, Dictionary<string, Tensor> after, Tensor input)
    {
        using var y0 = TestNets.Run(net, before, input);
        using var y1 = TestNets.Run(net, after, input);
        Assert.True(y0.allclose(y1, rtol: 1e-5, atol: 1e-5), $"outputs differ by up to {(y0 - y1).abs().max().item<float>()}");
    }

    private static void AssertChanged(Dictionary<string, Tensor> before, Dictionary<string, Tensor> after, PermutationSpec spec)
    {
        // Guards against a vacuous test: the permuted model's tensors really moved.
        Assert.Contains(spec.Tensors, t => !Same(before[t], after[t]));
    }

    private static bool Same(Tensor x, Tensor y) =>
        x.shape.SequenceEqual(y.shape) && x.dtype == y.dtype && x.eq(y).all().item<bool>();

    public static TheoryData<string> Nets => new() { "mlp", "mlp-layernorm", "cnn-bn", "cnn-flatten", "vgg-bn", "resnet", "resnet-bottleneck" };

    private static (nn.Module<Tensor, Tensor> Net, Tensor Input, PermutationSpec Spec) Build(string kind, int seed)
    {
        torch.manual_seed(seed);
        return kind switch
        {
            "mlp" => Make(TestNets.Mlp(6, 10, 12, 9, 3), torch.randn(7, 6), "auto"),
            "mlp-layernorm" => Make(TestNets.MlpLayerNorm(), torch.randn(7, 6), "auto"),
            "cnn-bn" => Make(TestNets.CnnBn(), torch.randn(4, 3, 6, 6), "auto"),
            "cnn-flatten" => Make(TestNets.BuiltinCnn(), torch.randn(4, 64), "auto"),
            "vgg-bn" => Make(TestNets.VggBn(), torch.randn(4, 3, 6, 6), "vgg"),
            "resnet" => Make(TestNets.ResNet(), torch.randn(4, 3, 8, 8), "resnet"),
            "resnet-bottleneck" => Make(TestNets.ResNet(bottleneck: true), torch.randn(4, 3, 8, 8), "resnet"),
            _ => throw new ArgumentException(kind),
        };

        static (nn.Module<Tensor, Tensor>, Tensor, PermutationSpec) Make(nn.Module<Tensor, Tensor> net, Tensor input, string spec) =>
            (net, input, BuiltinSpecs.ForName(spec, TestNets.Shapes(TestNets.State(net))));
    }

    [Theory]
    [MemberData(nameof(Nets))]
    public void A_randomly_permuted_model_computes_the_same_function(string kind)
    {
        var (net, input, spec) = Build(kind, 1);
        var a = TestNets.State(net);
        var sizes = spec.Validate(TestNets.Shapes(a));
        var permuted = Permutations.Apply(spec, TestNets.RandomPerms(sizes, 2), a);
        AssertChanged(a, permuted, spec);
        AssertSameFunction(net, a, permuted, input);
    }

    [Theory]
    [MemberData(nameof(Nets))]
    public void An_aligned_model_computes_the_same_function_as_before_alignment(string kind)
    {
        var (net, input, spec) = Build(kind, 3);
        var a = TestNets.State(net);
        torch.manual_seed(4);
        var (other, _, _) = Build(kind, 5);
        var b = TestNets.State(other);
        var result = Aligner.Align([a, b], 0, spec, seed: 11);
        AssertChanged(b, result.Models[1], spec);
        AssertSameFunction(net, b, result.Models[1], input);
        Assert.True(result.PerModel[1].Objective[^1] > result.PerModel[1].Objective[0]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Weight_matching_recovers_a_known_permutation_of_an_mlp(int seed)
    {
        torch.manual_seed(seed);
        var a = TestNets.State(TestNets.Mlp(20, 32, 32, 24, 10));
        var spec = BuiltinSpecs.Auto(TestNets.Shapes(a));
        var hidden = TestNets.RandomPerms(spec.Validate(TestNets.Shapes(a)), seed);
        var b = Permutations.Apply(spec, hidden, a);
        AssertChanged(a, b, spec);

        var result = Aligner.Align([a, b], 0, spec, seed: seed);
        foreach (var (name, t) in a)
            Assert.True(Same(t, result.Models[1][name]), $"tensor {name} was not restored exactly");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    public void The_objective_never_decreases(int seed)
    {
        torch.manual_seed(seed);
        var a = TestNets.State(TestNets.Mlp(8, 40, 40, 40, 4));
        var b = TestNets.State(TestNets.Mlp(8, 40, 40, 40, 4));
        var spec = BuiltinSpecs.Auto(TestNets.Shapes(a));
        var result = WeightMatching.Match(spec, a, b, seed);
        Assert.True(result.Objective.Count >= 3, $"only {result.Objective.Count} objective values; the test needs several sweeps");
        for (int i = 1; i < result.Objective.Count; i++)
            Assert.True(result.Objective[i] >= result.Objective[i - 1] - 1e-9 * Math.Abs(result.Objective[i - 1]),
                $"objective fell from {result.Objective[i - 1]} to {result.Objective[i]} at sweep {i}");
        Assert.Equal(result.Sweeps + 1, result.Objective.Count);
    }

    [Fact]
    public void Same_seed_same_permutations_and_seed_changes_the_sweep_order()
    {
        torch.manual_seed(9);
        var a = TestNets.State(TestNets.Mlp(8, 30, 30, 30, 30, 4));
        var b = TestNets.State(TestNets.Mlp(8, 30, 30, 30, 30, 4));
        var spec = BuiltinSpecs.Auto(TestNets.Shapes(a));
        var r1 = WeightMatching.Match(spec, a, b, seed: 5);
        var r2 = WeightMatching.Match(spec, a, b, seed: 5);
        foreach (var p in spec.Names) Assert.Equal(r1.Permutations[p], r2.Permutations[p]);
        Assert.Equal(r1.Objective, r2.Objective);

        var orders = Enumerable.Range(0, 20).Select(s => string.Join(",", WeightMatching.SweepOrder(spec.Names, s, 0))).Distinct().Count();
        Assert.True(orders > 1, "the sweep order should depend on the seed");
        Assert.Equal(WeightMatching.SweepOrder(spec.Names, 3, 1), WeightMatching.SweepOrder(spec.Names, 3, 1));
    }

    [Fact]
    public void Apply_rejects_index_vectors_that_are_not_permutations()
    {
        torch.manual_seed(1);
        var a = TestNets.State(TestNets.Mlp(4, 3, 2));
        var spec = BuiltinSpecs.Auto(TestNets.Shapes(a));
        Assert.Contains("not a permutation", Assert.Throws<ArgumentException>(() => Permutations.Apply(spec, new Dictionary<string, int[]> { ["P_fc1"] = [0, 0, 1] }, a)).Message);
        Assert.Contains("not a permutation", Assert.Throws<ArgumentException>(() => Permutations.Apply(spec, new Dictionary<string, int[]> { ["P_fc1"] = [0, 1] }, a)).Message);
        Assert.Contains("P_fc1", Assert.Throws<ArgumentException>(() => Permutations.Apply(spec, new Dictionary<string, int[]>(), a)).Message);
    }

    [Fact]
    public void Non_finite_weights_are_rejected_with_the_tensor_name()
    {
        torch.manual_seed(1);
        var a = TestNets.State(TestNets.Mlp(4, 6, 3));
        var b = TestNets.State(TestNets.Mlp(4, 6, 3));
        b["fc1.weight"][0, 0] = torch.tensor(float.NaN);
        var spec = BuiltinSpecs.Auto(TestNets.Shapes(a));
        var e = Assert.Throws<CloudSoupException>(() => WeightMatching.Match(spec, a, b, 1));
        Assert.Equal(ErrorKind.InvalidCheckpoint, e.Kind);
        Assert.Contains("fc1.weight", e.Message);
    }

    [Fact]
    public void Reference_stays_unchanged_and_three_models_align_to_it()
    {
        torch.manual_seed(2);
        var a = TestNets.State(TestNets.Mlp(5, 16, 16, 3));
        var spec = BuiltinSpecs.Auto(TestNets.Shapes(a));
        var sizes = spec.Validate(TestNets.Shapes(a));
        var b = Permutations.Apply(spec, TestNets.RandomPerms(sizes, 1), a);
        var c = Permutations.Apply(spec, TestNets.RandomPerms(sizes, 2), a);
        var result = Aligner.Align([b, a, c], 1, spec, seed: 3);
        Assert.Empty(result.PerModel[1].Objective);
        foreach (var m in result.Models)
            foreach (var (name, t) in a)
                Assert.True(Same(t, m[name]), name);
    }
}
