// Activation matching on the built-in architectures: it must undo a known permutation (exactly, and under
// noise), measure the built-in CNN the way the evaluator runs it, and run as a job step for builtin:cnn.
using CloudSoup.Engine.Alignment;
using CloudSoup.Cli.Demo;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;
using static TorchSharp.torch;

namespace CloudSoup.Tests.Alignment;

public class ActivationMatchingTests
{
    private static (string Architecture, Dictionary<string, Tensor> Weights, nn.Module<Tensor, Tensor> Net) Model(string kind, int seed)
    {
        torch.manual_seed(seed);
        var net = kind == "cnn" ? TestNets.BuiltinCnn() : TestNets.Mlp(64, 24, 20, 3);
        return (kind == "cnn" ? "builtin:cnn" : "builtin:mlp", TestNets.State(net), net);
    }

    [Theory]
    [InlineData("mlp", 0.0)]
    [InlineData("cnn", 0.0)]
    [InlineData("mlp", 0.02)]
    [InlineData("cnn", 0.02)]
    public void A_permuted_copy_is_put_back_unit_for_unit(string kind, double noise)
    {
        var (architecture, a, _) = Model(kind, 1);
        var spec = BuiltinSpecs.Auto(TestNets.Shapes(a));
        var hidden = TestNets.RandomPerms(spec.Validate(TestNets.Shapes(a)), 2);
        var b = Permutations.Apply(spec, hidden, a);
        torch.manual_seed(3);
        foreach (var key in b.Keys.ToList())
            if (b[key].is_floating_point() && !key.EndsWith("running_var")) b[key] = b[key] + noise * torch.randn_like(b[key]);
        var inputs = torch.randn(400, 64);

        var match = ActivationMatching.Match(architecture, spec, a, b, inputs, batchSize: 128);
        var aligned = Permutations.Apply(spec, match.Permutations, b);
        foreach (var (name, t) in a)
        {
            if (!t.is_floating_point()) continue;
            double diff = (aligned[name] - t).abs().max().item<float>();
            Assert.True(diff <= 6 * noise + 1e-6, $"{kind}: {name} is off by {diff} after alignment (noise {noise})");
        }
        // Guards against a vacuous test: the hidden permutation really moved units of every layer.
        Assert.All(hidden.Values, p => Assert.Contains(p, v => v != Array.IndexOf(p, v)));
    }

    [Fact]
    public void The_builtin_cnn_is_the_pytorch_module_with_the_same_names()
    {
        var (_, w, net) = Model("cnn", 5);
        var x = torch.randn(7, 64);
        using var model = BuiltinModel.Create("builtin:cnn");
        model.LoadWeights(w, "test");
        using var expected = TestNets.Run(net, w, x);
        using (torch.no_grad())
            Assert.True(model.Forward(x).allclose(expected, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void Unsupported_architectures_and_specs_that_permute_no_hidden_layer_are_refused()
    {
        var (_, a, _) = Model("mlp", 1);
        var spec = BuiltinSpecs.Auto(TestNets.Shapes(a));
        var x = torch.randn(10, 64);
        var e = Assert.Throws<CloudSoupException>(() => ActivationMatching.Match("model.pt", spec, a, a, x));
        Assert.Contains("builtin:mlp or builtin:cnn", e.Message);
        var outputOnly = PermutationSpec.ParseJson("""{"permutations": {"P": [["fc3.weight", 0], ["fc3.bias", 0]]}}""");
        e = Assert.Throws<CloudSoupException>(() => ActivationMatching.Match("builtin:mlp", outputOnly, a, a, x));
        Assert.Contains("permutes none of the hidden layers", e.Message);
    }

    [Fact]
    public async Task A_job_aligns_builtin_cnns_by_activations()
    {
        var (_, a, net) = Model("cnn", 7);
        var spec = BuiltinSpecs.Auto(TestNets.Shapes(a));
        var b = Permutations.Apply(spec, TestNets.RandomPerms(spec.Validate(TestNets.Shapes(a)), 8), a);
        using var dir = new TempDir();
        SafetensorsFiles.Write(dir["a.safetensors"], a);
        SafetensorsFiles.Write(dir["b.safetensors"], b);
        torch.manual_seed(9);
        SafetensorsFiles.Write(dir["data.safetensors"], new Dictionary<string, Tensor> { ["inputs"] = torch.randn(300, 64), ["labels"] = torch.randint(0, 3, [300], torch.int64) });
        // Weight 1 on b: the output is b aligned to a, which must be a again.
        var recipe = RecipeParser.Parse("""
            merge_method: linear
            parameters: {normalize: false}
            models: [{model: a.safetensors, parameters: {weight: 0}}, {model: b.safetensors, parameters: {weight: 1}}]
            alignment: {method: activation_matching}
            evaluation: {model: "builtin:cnn", data: data.safetensors, reset_bn: false}
            """);
        await using (var sink = new LocalDirectorySink(dir["out"]))
        {
            var report = await new MergeJobRunner(new LocalCheckpointStore(dir.Path), new JobEvaluator()).RunAsync(recipe, sink, null, CancellationToken.None);
            Assert.Equal("activation_matching", report.Alignment!.Method);
            Assert.True(report.Alignment.Models.Single(m => !m.IsReference).UnitsMoved > 0);
        }
        var merged = SafetensorsFiles.Read(dir["out/model.safetensors"]);
        foreach (var (name, t) in a.Where(kv => kv.Value.is_floating_point()))
            Assert.True(merged[name].allclose(t, rtol: 1e-5, atol: 1e-6), $"{name} differs from the reference after alignment");
    }

    [Fact]
    public async Task Mnist_cnns_from_different_seeds_merge_far_better_aligned_by_either_method()
    {
        using var splits = MnistDigits.Load(MnistDigits.DigitsFolder(RepoRoot.Path), train: 3000, heldOut: 1000);
        using var dir = new TempDir();
        // Two CNNs trained on MNIST from different seeds (Fixtures/trained/make_fixtures.cs trained them once).
        foreach (var name in new[] { "a", "b" })
            File.Copy(Path.Combine(AppContext.BaseDirectory, "Fixtures", "trained", $"cnn_{name}.safetensors"), dir[$"{name}.safetensors"]);
        SafetensorsFiles.Write(dir["heldout.safetensors"], new Dictionary<string, Tensor> { ["inputs"] = splits.HeldOut.Inputs, ["labels"] = splits.HeldOut.Labels });

        var accuracy = new Dictionary<string, double>();
        foreach (var method in new[] { "none", "weight_matching", "activation_matching" })
        {
            var alignment = method == "none" ? "" : $"alignment: {{method: {method}}}";
            await using var sink = new LocalDirectorySink(dir[$"out-{method}"]);
            var report = await new MergeJobRunner(new LocalCheckpointStore(dir.Path), new JobEvaluator()).RunAsync(RecipeParser.Parse($$"""
                merge_method: linear
                models: [{model: a.safetensors}, {model: b.safetensors}]
                {{alignment}}
                evaluation: {model: "builtin:cnn", data: heldout.safetensors}
                """), sink, null, CancellationToken.None);
            var ev = report.Evaluation!;
            Assert.True(ev.Ingredients.All(i => i.HeldOut.Accuracy > 0.9), $"the ingredients are not trained: {string.Join(", ", ev.Ingredients.Select(i => i.HeldOut.Accuracy))}");
            accuracy[method] = ev.Merged.HeldOut.Accuracy;
            if (method != "none")
            {
                var path = report.Alignment!.Models.Single(m => !m.IsReference).Path!;
                Assert.True(path.Aligned.Barrier < path.Naive.Barrier, $"{method}: aligned barrier {path.Aligned.Barrier} vs naive {path.Naive.Barrier}");
            }
        }
        // BatchNorm statistics are re-estimated for every merge (reset_bn), so the gap is the alignment's alone.
        Assert.True(accuracy["weight_matching"] > accuracy["none"] + 0.05, string.Join(", ", accuracy));
        Assert.True(accuracy["activation_matching"] > accuracy["none"] + 0.05, string.Join(", ", accuracy));
    }
}
