using CloudSoup.Engine.Alignment;
using CloudSoup.Control.Errors;

namespace CloudSoup.Tests.Alignment;

public class PermutationSpecTests
{
    private static Dictionary<string, long[]> MlpShapes() => new()
    {
        ["fc1.weight"] = [8, 4], ["fc1.bias"] = [8],
        ["fc2.weight"] = [6, 8], ["fc2.bias"] = [6],
        ["fc3.weight"] = [2, 6], ["fc3.bias"] = [2],
    };

    private static string Axes(PermutationSpec spec, string perm) =>
        string.Join(" ", spec.AxesOf(perm).Select(a => $"{a.Tensor}:{a.Axis}"));

    [Fact]
    public void Json_spec_parses_validates_and_round_trips()
    {
        var spec = PermutationSpec.ParseJson("""
            {"permutations": {"P0": [["fc1.weight", 0], ["fc1.bias", 0], ["fc2.weight", 1]],
                              "P1": [["fc2.weight", 0], ["fc2.bias", 0], ["fc3.weight", 1]]}}
            """);
        Assert.Equal(new[] { "P0", "P1" }, spec.Names);
        Assert.Equal(new[] { (0, "P1", 1), (1, "P0", 1) }, spec.PermsOf("fc2.weight").OrderBy(x => x.Axis));
        Assert.Empty(spec.PermsOf("fc3.bias"));
        var sizes = spec.Validate(MlpShapes());
        Assert.Equal(8, sizes["P0"]);
        Assert.Equal(6, sizes["P1"]);
        var again = PermutationSpec.ParseJson(spec.ToJson());
        Assert.Equal(Axes(spec, "P1"), Axes(again, "P1"));
    }

    [Theory]
    [InlineData("""{"permutations": {"P0": [["fc9.weight", 0]]}}""", "fc9.weight")]
    [InlineData("""{"permutations": {"P0": [["fc1.bias", 1]]}}""", "only 1 axes")]
    [InlineData("""{"permutations": {"P0": [["fc1.weight", 0], ["fc3.weight", 1]]}}""", "inconsistent sizes")]
    public void Validation_against_a_model_names_the_problem(string json, string expected)
    {
        var spec = PermutationSpec.ParseJson(json);
        var e = Assert.Throws<CloudSoupException>(() => spec.Validate(MlpShapes()));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.Equal("alignment.spec", e.Field);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("""{"perms": {}}""", "unknown key 'perms'")]
    [InlineData("""{"permutations": {"P0": [["fc1.weight"]]}}""", "entry 0")]
    [InlineData("""{"permutations": {"P0": [["fc1.weight", 0.5]]}}""", "integer axis")]
    [InlineData("""{"permutations": {"P0": [["fc1.weight", -1]]}}""", "negative")]
    [InlineData("""{"permutations": {"P0": []}}""", "names no tensor axis")]
    [InlineData("""{"permutations": {}}""", "no permutations")]
    [InlineData("""{"permutations": {"P0": [["w", 0]], "P1": [["w", 0]]}}""", "claimed by both")]
    [InlineData("""{"permutations": {"P0": [["w", 0], ["w", 1]]}}""", "two axes")]
    public void Malformed_json_specs_are_rejected(string json, string expected)
    {
        var e = Assert.Throws<CloudSoupException>(() => PermutationSpec.ParseJson(json));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Auto_orders_layers_numerically_and_attaches_norms()
    {
        var shapes = new Dictionary<string, long[]>();
        for (int k = 1; k <= 11; k++)   // fc10, fc11 must come after fc9, not after fc1
        {
            shapes[$"fc{k}.weight"] = [k == 11 ? 3 : 10 + k, k == 1 ? 5 : 9 + k];
            shapes[$"fc{k}.bias"] = [k == 11 ? 3 : 10 + k];
        }
        shapes["ln3.weight"] = [13]; shapes["ln3.bias"] = [13];
        var spec = BuiltinSpecs.Auto(shapes);
        Assert.Equal(10, spec.Names.Count);
        Assert.Equal("fc3.weight:0 fc3.bias:0 ln3.bias:0 ln3.weight:0 fc4.weight:1", Axes(spec, "P_fc3"));
        Assert.Equal("fc10.weight:0 fc10.bias:0 fc11.weight:1", Axes(spec, "P_fc10"));
    }

    [Fact]
    public void Auto_reorders_top_level_groups_for_vgg_naming()
    {
        var shapes = new Dictionary<string, long[]>
        {
            ["classifier.0.weight"] = [20, 16], ["classifier.0.bias"] = [20], ["classifier.2.weight"] = [5, 20],
            ["features.0.weight"] = [8, 3, 3, 3], ["features.1.weight"] = [8], ["features.1.bias"] = [8],
            ["features.1.running_mean"] = [8], ["features.1.running_var"] = [8], ["features.1.num_batches_tracked"] = [],
            ["features.3.weight"] = [16, 8, 3, 3], ["features.4.weight"] = [16], ["features.4.bias"] = [16],
        };
        var spec = BuiltinSpecs.ForName("vgg", shapes);
        Assert.Equal(new[] { "P_features.0", "P_features.3", "P_classifier.0" }, spec.Names);
        Assert.Equal("features.0.weight:0 features.1.bias:0 features.1.running_mean:0 features.1.running_var:0 features.1.weight:0 features.3.weight:1",
            Axes(spec, "P_features.0"));
        Assert.Equal("features.3.weight:0 features.4.bias:0 features.4.weight:0 classifier.0.weight:1", Axes(spec, "P_features.3"));
    }

    [Theory]
    [InlineData("residual")]
    [InlineData("identity-blocks")]
    [InlineData("ambiguous")]
    [InlineData("mismatch")]
    [InlineData("orphan-norm")]
    [InlineData("single")]
    public void Auto_fails_clearly_when_it_cannot_derive_a_chain(string case_)
    {
        var shapes = case_ switch
        {
            "residual" => new Dictionary<string, long[]> { ["conv1.weight"] = [8, 3, 3, 3], ["layer1.0.downsample.0.weight"] = [8, 8, 1, 1], ["fc.weight"] = [2, 8] },
            // A ResNet whose blocks all have identity skips chains by shape, but must not be treated as a chain.
            "identity-blocks" => new Dictionary<string, long[]> { ["conv1.weight"] = [8, 3, 3, 3], ["layer1.0.conv1.weight"] = [8, 8, 3, 3], ["layer1.0.conv2.weight"] = [8, 8, 3, 3], ["fc.weight"] = [2, 8] },
            // Name order breaks (b.fc → c.in), and both c → a → b and c → b → a chain.
            "ambiguous" => new Dictionary<string, long[]> { ["a.fc.weight"] = [4, 4], ["b.fc.weight"] = [4, 4], ["c.in.weight"] = [4, 5] },
            // 30 inputs are not a flatten of 8 channels' maps.
            "mismatch" => new Dictionary<string, long[]> { ["conv.weight"] = [8, 3, 3, 3], ["fc.weight"] = [2, 30] },
            "orphan-norm" => new Dictionary<string, long[]> { ["fc1.weight"] = [8, 4], ["norm.weight"] = [7], ["fc2.weight"] = [2, 8] },
            _ => new Dictionary<string, long[]> { ["fc.weight"] = [2, 4] },
        };
        var expected = case_ switch
        {
            "residual" or "identity-blocks" => "residual", "ambiguous" => "ambiguous", "mismatch" => "'conv' has 8 outputs but 'fc' takes 30 inputs",
            "orphan-norm" => "norm 'norm' has 7 channels", _ => "need at least two",
        };
        var e = Assert.Throws<CloudSoupException>(() => BuiltinSpecs.Auto(shapes));
        Assert.Equal("alignment.spec", e.Field);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Auto_gives_a_linear_layer_after_a_spatial_flatten_one_block_of_inputs_per_channel()
    {
        // conv2's 12 channels of 4×4 maps flattened into fc1's 192 inputs.
        var shapes = new Dictionary<string, long[]>
        {
            ["conv1.weight"] = [6, 1, 3, 3], ["conv1.bias"] = [6], ["bn1.weight"] = [6], ["bn1.running_mean"] = [6],
            ["conv2.weight"] = [12, 6, 3, 3], ["conv2.bias"] = [12], ["fc1.weight"] = [20, 192], ["fc1.bias"] = [20], ["fc2.weight"] = [3, 20],
        };
        var spec = BuiltinSpecs.Auto(shapes);
        Assert.Equal(new[] { (1, "P_conv2", 16) }, spec.PermsOf("fc1.weight").Where(p => p.Axis == 1));
        Assert.Equal(12, spec.Validate(shapes)["P_conv2"]);
        var again = PermutationSpec.ParseJson(spec.ToJson());
        Assert.Equal(new[] { (1, "P_conv2", 16) }, again.PermsOf("fc1.weight").Where(p => p.Axis == 1));
    }

    [Theory]
    [InlineData("""{"permutations": {"P": [["fc1.weight", 1, 0]]}}""", "block 0")]
    [InlineData("""{"permutations": {"P": [["fc1.weight", 1, 7]]}}""", "not a multiple of 7")]
    [InlineData("""{"permutations": {"P": [["fc1.weight", 1, "4"]]}}""", "integer axis and block")]
    public void Json_blocks_are_checked(string json, string expected)
    {
        var e = Assert.Throws<CloudSoupException>(() => PermutationSpec.ParseJson(json).Validate(new Dictionary<string, long[]> { ["fc1.weight"] = [5, 12] }));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Mlp_spec_rejects_convolutions_and_unknown_names_are_rejected()
    {
        var shapes = new Dictionary<string, long[]> { ["conv.weight"] = [8, 3, 3, 3], ["fc.weight"] = [2, 8] };
        Assert.Contains("rank-2", Assert.Throws<CloudSoupException>(() => BuiltinSpecs.ForName("mlp", shapes)).Message);
        Assert.Contains("unknown spec 'transformer'", Assert.Throws<CloudSoupException>(() => BuiltinSpecs.ForName("transformer", shapes)).Message);
    }

    [Fact]
    public void Resnet_spec_shares_the_residual_permutation_across_identity_blocks()
    {
        var shapes = new Dictionary<string, long[]>
        {
            ["conv1.weight"] = [8, 3, 3, 3], ["bn1.weight"] = [8], ["bn1.bias"] = [8],
            ["layer1.0.conv1.weight"] = [8, 8, 3, 3], ["layer1.0.bn1.weight"] = [8],
            ["layer1.0.conv2.weight"] = [8, 8, 3, 3], ["layer1.0.bn2.weight"] = [8],
            ["layer2.0.conv1.weight"] = [12, 8, 3, 3], ["layer2.0.bn1.weight"] = [12],
            ["layer2.0.conv2.weight"] = [12, 12, 3, 3], ["layer2.0.bn2.weight"] = [12],
            ["layer2.0.downsample.0.weight"] = [12, 8, 1, 1], ["layer2.0.downsample.1.weight"] = [12],
            ["fc.weight"] = [4, 12], ["fc.bias"] = [4],
        };
        var spec = BuiltinSpecs.ResNet(shapes);
        Assert.Equal(new[] { "P_res0", "P_layer1.0.inner1", "P_layer2.0.inner1", "P_res1" }, spec.Names);
        Assert.Equal("conv1.weight:0 bn1.weight:0 bn1.bias:0 layer1.0.conv1.weight:1 layer1.0.conv2.weight:0 layer1.0.bn2.weight:0 layer2.0.conv1.weight:1 layer2.0.downsample.0.weight:1",
            Axes(spec, "P_res0"));
        Assert.Equal("layer2.0.conv2.weight:0 layer2.0.bn2.weight:0 layer2.0.downsample.0.weight:0 layer2.0.downsample.1.weight:0 fc.weight:1",
            Axes(spec, "P_res1"));
        spec.Validate(shapes);

        shapes.Remove("layer2.0.downsample.0.weight");
        shapes.Remove("layer2.0.downsample.1.weight");
        Assert.Contains("without a projection", Assert.Throws<CloudSoupException>(() => BuiltinSpecs.ResNet(shapes)).Message);
    }
}
