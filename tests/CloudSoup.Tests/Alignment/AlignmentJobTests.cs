using System.Text.Json;
using CloudSoup.Cli.Demo;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Alignment;

/// <summary>Alignment as a step of a merge job: recipe, job path, report.</summary>
public class AlignmentJobTests
{
    private static Dictionary<string, torch.Tensor> RandomMlp(long seed, params int[] widths)
    {
        torch.random.manual_seed(seed);
        var d = new Dictionary<string, torch.Tensor>();
        for (int k = 1; k < widths.Length; k++)
        {
            d[$"fc{k}.weight"] = torch.randn(widths[k], widths[k - 1]);
            d[$"fc{k}.bias"] = torch.randn(widths[k]);
        }
        return d;
    }

    private static torch.Tensor Logits(IReadOnlyDictionary<string, torch.Tensor> weights, torch.Tensor x)
    {
        using var model = BuiltinModel.Create("builtin:mlp");
        model.LoadWeights(weights, "test");
        return model.Forward(x).clone();
    }

    private static async Task<MergeReport> Run(TempDir dir, string recipe, string output)
    {
        await using var sink = new LocalDirectorySink(dir[output]);
        return await new MergeJobRunner(new LocalCheckpointStore(dir.Path), new JobEvaluator()).RunAsync(RecipeParser.Parse(recipe), sink, null, CancellationToken.None);
    }

    private static string AlignOnly(int wa, int wb) =>
        "merge_method: linear\nparameters: {normalize: false}\nmodels:\n" +
        $"  - {{model: a.safetensors, parameters: {{weight: {wa}}}}}\n" +
        $"  - {{model: b.safetensors, parameters: {{weight: {wb}}}}}\n" +
        "alignment: {method: weight_matching, spec: mlp, seed: 3}\n";

    [Fact]
    public async Task Align_only_weight_1_0_returns_the_reference_and_0_1_the_permuted_model_with_the_same_function()
    {
        using var dir = new TempDir();
        var a = RandomMlp(1, 6, 16, 12, 3);
        var b = RandomMlp(2, 6, 16, 12, 3);
        SafetensorsFiles.Write(dir["a.safetensors"], a);
        SafetensorsFiles.Write(dir["b.safetensors"], b);

        await Run(dir, AlignOnly(1, 0), "ref");
        var reference = SafetensorsFiles.Read(dir["ref/model.safetensors"]);
        foreach (var (name, t) in a) Assert.True(t.eq(reference[name]).all().item<bool>(), $"{name} differs from the reference");

        var report = await Run(dir, AlignOnly(0, 1), "perm");
        var permuted = SafetensorsFiles.Read(dir["perm/model.safetensors"]);
        Assert.False(b["fc1.weight"].eq(permuted["fc1.weight"]).all().item<bool>(), "alignment left model b's hidden units in place");
        torch.random.manual_seed(9);
        var x = torch.randn(32, 6);
        Assert.True(Logits(b, x).allclose(Logits(permuted, x), rtol: 1e-4, atol: 1e-4), "the permuted model computes a different function");

        var al = report.Alignment!;
        Assert.Equal("a.safetensors", al.Reference);
        Assert.Equal(2, al.Permutations.Count);
        var moved = al.Models.Single(m => m.Model == "b.safetensors");
        Assert.True(moved.Objective.Count >= 2);
        for (int i = 1; i < moved.Objective.Count; i++) Assert.True(moved.Objective[i] >= moved.Objective[i - 1]);
        Assert.True(moved.Objective[^1] > moved.Objective[0]);
        using var json = JsonDocument.Parse(File.ReadAllBytes(dir["perm/report.json"]));
        Assert.Equal(moved.Objective.Count, json.RootElement.GetProperty("alignment").GetProperty("models")[1].GetProperty("objective").GetArrayLength());
    }

    [Fact]
    public async Task Mnist_mlps_from_different_seeds_have_a_much_lower_barrier_after_alignment()
    {
        using var splits = MnistDigits.Load(MnistDigits.DigitsFolder(RepoRoot.Path), train: 3000, heldOut: 1000);
        using var dir = new TempDir();
        // Two MLPs trained on MNIST from different seeds (Fixtures/trained/make_fixtures.cs trained them once).
        foreach (var name in new[] { "a", "b" })
            File.Copy(Path.Combine(AppContext.BaseDirectory, "Fixtures", "trained", $"mlp_{name}.safetensors"), dir[$"{name}.safetensors"]);
        SafetensorsFiles.Write(dir["heldout.safetensors"], new Dictionary<string, torch.Tensor> { ["inputs"] = splits.HeldOut.Inputs, ["labels"] = splits.HeldOut.Labels });

        foreach (var method in new[] { "weight_matching", "activation_matching" })
        {
            var report = await Run(dir, $$"""
                merge_method: linear
                models: [{model: a.safetensors}, {model: b.safetensors}]
                alignment: {method: {{method}}}
                evaluation: {model: "builtin:mlp", data: heldout.safetensors}
                """, $"out-{method}");
            var path = report.Alignment!.Models.Single(m => !m.IsReference).Path!;
            Assert.Equal(11, path.Naive.Curve.Count);
            // Endpoints are the same models (alignment keeps the function), so both curves share them.
            Assert.Equal(path.Naive.Curve[^1].Loss, path.Aligned.Curve[^1].Loss, 3);
            Assert.True(path.Naive.Barrier > 0.05, $"{method}: naive barrier {path.Naive.Barrier} is too small to test anything");
            Assert.True(path.Aligned.Barrier < 0.5 * path.Naive.Barrier, $"{method}: aligned barrier {path.Aligned.Barrier} vs naive {path.Naive.Barrier}");
            Assert.True(AlignmentPlots.Midpoint(path.Aligned).Accuracy > AlignmentPlots.Midpoint(path.Naive).Accuracy);
            // The merged (aligned midpoint) model is what the evaluator scored.
            Assert.Equal(AlignmentPlots.Midpoint(path.Aligned).Accuracy, report.Evaluation!.Merged.HeldOut.Accuracy, 3);
            var html = File.ReadAllText(dir[$"out-{method}/report.html"]);
            Assert.Contains("<h2>Alignment</h2>", html);
            Assert.Contains("data:image/png;base64,iVBOR", html);
        }
    }

    [Fact]
    public async Task A_json_spec_file_from_the_store_drives_the_alignment()
    {
        using var dir = new TempDir();
        SafetensorsFiles.Write(dir["a.safetensors"], RandomMlp(5, 4, 10, 3));
        var b = RandomMlp(6, 4, 10, 3);
        SafetensorsFiles.Write(dir["b.safetensors"], b);
        File.WriteAllText(dir["spec.json"], """{"permutations": {"H": [["fc1.weight", 0], ["fc1.bias", 0], ["fc2.weight", 1]]}}""");
        var report = await Run(dir, "merge_method: linear\nparameters: {normalize: false}\nmodels: [{model: a.safetensors, parameters: {weight: 0}}, {model: b.safetensors, parameters: {weight: 1}}]\nalignment: {method: weight_matching, spec: spec.json}", "out");
        Assert.Equal(new Dictionary<string, int> { ["H"] = 10 }, report.Alignment!.Permutations);
        var permuted = SafetensorsFiles.Read(dir["out/model.safetensors"]);
        torch.random.manual_seed(1);
        var x = torch.randn(16, 4);
        Assert.True(Logits(b, x).allclose(Logits(permuted, x), rtol: 1e-4, atol: 1e-4));
        Assert.True(b["fc2.bias"].eq(permuted["fc2.bias"]).all().item<bool>(), "the output layer's bias is not in the spec and must stay");
    }

    [Theory]
    [InlineData("alignment: {method: weight_matching, reference: c.safetensors}", "alignment.reference")]
    [InlineData("alignment: {method: activation_matching}", "alignment.method")]
    [InlineData("alignment: {method: sinkhorn}", "alignment.method")]
    [InlineData("alignment: {method: weight_matching, path_points: 1}", "alignment.path_points")]
    [InlineData("alignment: {method: weight_matching, max_iter: 0}", "alignment.max_iter")]
    [InlineData("alignment: {method: weight_matching, reset_bn: maybe}", "alignment.reset_bn")]
    [InlineData("alignment: {method: weight_matching, iterations: 5}", "alignment.iterations")]
    [InlineData("alignment: [weight_matching]", "alignment")]
    public void Invalid_alignment_sections_are_rejected_naming_the_field(string section, string field)
    {
        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse($"merge_method: linear\nmodels: [{{model: a.safetensors}}, {{model: b.safetensors}}]\n{section}"));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.Equal(field, e.Field);
    }

    [Fact]
    public void Alignment_section_defaults_and_resolved_json()
    {
        var r = RecipeParser.Parse("merge_method: linear\nseed: 4\nmodels: [{model: a.safetensors}, {model: b.safetensors}]\nalignment: {method: weight_matching, reference: b.safetensors}");
        Assert.Equal(new AlignmentSection("weight_matching", "auto", "b.safetensors", 100, 4, 11, true), r.Alignment);
        Assert.Contains("\"reference\": \"b.safetensors\"", RecipeJson.ToJsonString(r));
        Assert.Null(RecipeParser.Parse("merge_method: linear\nmodels: [{model: a.safetensors}, {model: b.safetensors}]\nalignment: {method: none}").Alignment);
    }
}
