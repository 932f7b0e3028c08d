// mergekit compatibility (docs/methods.md, "Differences from mergekit"): every config of mergekit's examples/ and
// tests/test_basic_merges.py (Fixtures/mergekit/, derived as its README says) runs on tiny checkpoints of the same
// architectures, several results are recomputed here by hand, in plain double arithmetic on the fixture values
// (never through CloudSoup's merge code), and the configs using features CloudSoup refuses fail with a one-line error
// naming the field.
using System.Text.RegularExpressions;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Mergekit;

public partial class MergekitConfigTests
{
    private static readonly string Folder = Path.Combine(AppContext.BaseDirectory, "Fixtures", "mergekit");

    private static List<string> Configs(string sub) =>
        Directory.GetFiles(Path.Combine(Folder, sub), "*.yml").Select(f => $"{sub}/{Path.GetFileName(f)}").Order(StringComparer.Ordinal).ToList();

    public static TheoryData<string> Runnable => new(Configs("examples").Concat(Configs("tests")));

    [GeneratedRegex(@"[\w.\-]+(?=\.safetensors)")]
    private static partial Regex FixtureName();

    private sealed record Run(Recipe Recipe, MergeReport Report, Dictionary<string, torch.Tensor> Merged, Dictionary<string, IReadOnlyDictionary<string, FixtureTensor>> Inputs);

    /// <summary>Writes the checkpoints <paramref name="config"/> names next to a copy of it, and merges.</summary>
    private static async Task<Run> Merge(TempDir dir, string config)
    {
        string text = await File.ReadAllTextAsync(Path.Combine(Folder, config));
        var inputs = new Dictionary<string, IReadOnlyDictionary<string, FixtureTensor>>();
        foreach (var name in FixtureName().Matches(text).Select(m => m.Value).Distinct())
        {
            Assert.True(TinyCheckpoints.Knows(name), $"{config} names '{name}', which has no fixture");
            TinyCheckpoints.Write(name, dir[$"{name}.safetensors"]);
            inputs[name] = TinyCheckpoints.Get(name);
        }
        var recipe = RecipeParser.Parse(text);
        MergeReport report;
        await using (var sink = new LocalDirectorySink(dir["out"]))
            report = await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(recipe, sink, null, CancellationToken.None);
        return new Run(recipe, report, SafetensorsFiles.Read(dir["out/model.safetensors"]), inputs);
    }

    [Fact]
    public void The_fixture_folder_holds_every_mergekit_config()
    {
        // 6 examples; test_basic_merges.py: 23 Llama/GPT-2/Granite configs (nuslerp: 9) + 17 VLM (nuslerp: 9), 1 refused
        Assert.Equal(6, Configs("examples").Count);
        Assert.Equal(48, Configs("tests").Count);
        Assert.Equal(Refusals.Count, Configs("refused").Count);
    }

    [Theory]
    [MemberData(nameof(Runnable))]
    public async Task Every_mergekit_example_and_test_config_runs(string config)
    {
        using var dir = new TempDir();
        var run = await Merge(dir, config);
        var first = run.Inputs.Values.First();
        if (run.Recipe.Slices is null)
            Assert.Equal(first.Keys.Order(StringComparer.Ordinal), run.Merged.Keys.Order(StringComparer.Ordinal));
        else
            Assert.Equal(first.Count + (run.Recipe.Slices.Sum(s => s.Length) - Layers(first)) * PerLayer(first), run.Merged.Count);
        var dtype = run.Recipe.DType switch { DType.F16 => torch.ScalarType.Float16, DType.BF16 => torch.ScalarType.BFloat16, _ => torch.ScalarType.Float32 };
        foreach (var (name, t) in run.Merged)
        {
            Assert.Equal(dtype, t.dtype);
            Assert.True(t.isfinite().all().ToBoolean(), $"{config}: {name} is not finite");
        }
        // A parameter the method does not take is ignored with a warning, as mergekit ignores it.
        bool ignoresWeight = run.Recipe.MergeMethod is "slerp" or "sce" or "ram" or "ramplus_tl" or "model_stock" or "arcee_fusion" or "nearswap" or "karcher"
            && File.ReadAllText(Path.Combine(Folder, config)).Contains("weight:");
        Assert.Equal(ignoresWeight, run.Report.Warnings.Any(w => w.Contains("does not use 'weight'")));
    }

    private static int Layers(IReadOnlyDictionary<string, FixtureTensor> model) =>
        model.Keys.Select(n => Regex.Match(n, @"\.(?:layers|h)\.(\d+)\.")).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value)).Distinct().Count();

    private static int PerLayer(IReadOnlyDictionary<string, FixtureTensor> model) =>
        model.Keys.Count(n => Regex.IsMatch(n, @"\.(?:layers|h)\.0\."));

    // ---- results recomputed by hand ----

    [Fact]
    public async Task Linear_example_is_the_normalized_weighted_sum()
    {
        using var dir = new TempDir();
        var run = await Merge(dir, "examples/linear.yml");
        foreach (var name in new[] { "model.embed_tokens.weight", "model.layers.7.mlp.up_proj.weight", "model.norm.weight" })
        {
            double[] a = V(run, "orca_mini_v3_13b", name), b = V(run, "WizardLM-13B-V1.2", name), c = V(run, "Platypus2-13B", name);
            Close(a.Select((_, i) => (1.0 * a[i] + 0.3 * b[i] + 0.5 * c[i]) / 1.8).ToArray(), run.Merged[name], name);
        }
    }

    [Fact]
    public async Task Gradient_slerp_example_interpolates_each_filter_along_its_gradient()
    {
        using var dir = new TempDir();
        var run = await Merge(dir, "examples/gradient-slerp.yml");
        // t at layer l of 40 is the gradient at l/39; the last entry covers every other tensor
        foreach (var (name, t) in new[]
        {
            ("model.layers.10.self_attn.q_proj.weight", Gradient([0, 0.5, 0.3, 0.7, 1], 10 / 39.0)),
            ("model.layers.30.mlp.down_proj.weight", Gradient([1, 0.5, 0.7, 0.3, 0], 30 / 39.0)),
            ("model.layers.5.input_layernorm.weight", 0.5),
            ("model.embed_tokens.weight", 0.5),
        })
            Close(Slerp(t, V(run, "orca_mini_v3_13b", name), V(run, "Platypus2-13B", name)), run.Merged[name], name);
        Assert.Equal(0.4949, Gradient([0, 0.5, 0.3, 0.7, 1], 10 / 39.0), 4);   // docs/methods.md's worked value
    }

    [Fact]
    public async Task Ties_example_trims_elects_and_takes_the_disjoint_mean_with_gradients_and_filters()
    {
        using var dir = new TempDir();
        var run = await Merge(dir, "examples/ties.yml");
        foreach (var (name, layer) in new[] { ("model.layers.20.mlp.up_proj.weight", 20), ("model.layers.20.self_attn.q_proj.weight", 20), ("model.layers.39.mlp.gate_proj.weight", 39) })
        {
            double t = layer / 39.0;
            double wizard = name.Contains("mlp") ? 0.5 : 0;
            var expected = Ties(V(run, "Llama-2-13B-fp16", name),
                [V(run, "orca_mini_v3_13b", name), V(run, "Platypus2-13B", name), V(run, "WizardMath-13B-V1.0", name)],
                [1.0, Gradient([0, 0.3, 0.7, 1], t), wizard], [Gradient([1, 0.7, 0.1], t), 0.5, 0.33]);
            Close(expected, run.Merged[name], name);
        }
    }

    [Fact]
    public async Task Frankenmerge_example_stacks_44_layers_with_the_first_models_embeddings_and_the_last_models_head()
    {
        using var dir = new TempDir();
        var run = await Merge(dir, "examples/orcamini-platy-44layer.yml");
        Close(V(run, "orca_mini_v3_13b", "model.layers.23.mlp.up_proj.weight"), run.Merged["model.layers.23.mlp.up_proj.weight"], "layer 23");
        Close(V(run, "Platypus2-13B", "model.layers.20.mlp.up_proj.weight"), run.Merged["model.layers.24.mlp.up_proj.weight"], "layer 24");
        Close(V(run, "Platypus2-13B", "model.layers.39.self_attn.o_proj.weight"), run.Merged["model.layers.43.self_attn.o_proj.weight"], "layer 43");
        Assert.False(run.Merged.ContainsKey("model.layers.44.mlp.up_proj.weight"));
        Close(V(run, "orca_mini_v3_13b", "model.embed_tokens.weight"), run.Merged["model.embed_tokens.weight"], "embed");
        Close(V(run, "Platypus2-13B", "lm_head.weight"), run.Merged["lm_head.weight"], "lm_head");
        Close(V(run, "Platypus2-13B", "model.norm.weight"), run.Merged["model.norm.weight"], "norm");
    }

    [Fact]
    public async Task Gpt2_stack_repeats_the_twelve_layers()
    {
        using var dir = new TempDir();
        var run = await Merge(dir, "tests/test_gpt2_stack.yml");
        for (int l = 0; l < 12; l++)
            foreach (int copy in new[] { l, l + 12 })
                Close(V(run, "gpt2_like", $"transformer.h.{l}.attn.c_attn.weight"), run.Merged[$"transformer.h.{copy}.attn.c_attn.weight"], $"layer {copy}");
        Close(V(run, "gpt2_like", "transformer.wpe.weight"), run.Merged["transformer.wpe.weight"], "wpe");
    }

    [Fact]
    public async Task Breadcrumbs_at_its_defaults_keeps_the_whole_task_vectors()
    {
        // density 1 (default): mergekit keeps every entry whatever gamma is, so this is task arithmetic.
        using var dir = new TempDir();
        var run = await Merge(dir, "tests/test_breadcrumbs_merge.yml");
        foreach (var name in new[] { "model.layers.1.mlp.down_proj.weight", "lm_head.weight" })
        {
            double[] a = V(run, "llama_a", name), b = V(run, "llama_b", name), c = V(run, "llama_c", name);
            Close(c.Select((x, i) => x + 0.6 * (a[i] - x) + 0.4 * (b[i] - x)).ToArray(), run.Merged[name], name);
        }
    }

    [Fact]
    public async Task Slerp_ignores_the_models_weights_with_a_warning()
    {
        using var dir = new TempDir();
        var run = await Merge(dir, "tests/test_slerp_merge.yml");
        foreach (var name in new[] { "model.layers.0.self_attn.q_proj.weight", "model.embed_tokens.weight" })
            Close(Slerp(0.35, V(run, "llama_a", name), V(run, "llama_b", name)), run.Merged[name], name);
        Assert.Contains(run.Report.Warnings, w => w.StartsWith("models[0].parameters.weight is ignored", StringComparison.Ordinal));
        Assert.Contains(run.Report.Warnings, w => w.StartsWith("models[1].parameters.weight is ignored", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Model_stock_filter_wise_takes_one_angle_per_vector_along_the_last_dimension()
    {
        using var dir = new TempDir();
        var run = await Merge(dir, "tests/test_model_stock_filterwise_VLM_merge.yml");
        // The 4-D patch convolution [8, 3, 2, 2]: 48 vectors of 2; a 2-D matrix: one per row; a 1-D bias: one vector.
        foreach (var (name, width) in new[] { ("vision_tower.vision_model.embeddings.patch_embedding.weight", 2), ("language_model.model.layers.1.mlp.up_proj.weight", 8), ("multi_modal_projector.linear_1.bias", 8) })
            Close(ModelStock(V(run, "llava_a", name), [V(run, "llava_b", name), V(run, "llava_c", name)], width), run.Merged[name], name);
    }

    [Fact]
    public async Task Passthrough_scale_zeroes_o_proj_and_copies_everything_else()
    {
        using var dir = new TempDir();
        var run = await Merge(dir, "tests/test_passthrough_scale.yml");
        foreach (var (name, t) in run.Merged)
            Close(name.Contains("o_proj") ? new double[t.NumberOfElements] : V(run, "llama_a", name), t, name);
    }

    // ---- refusals ----

    /// <summary>Each refused config and the field its error names (docs/methods.md, "Refused mergekit features").</summary>
    private static readonly Dictionary<string, string> Refusals = new()
    {
        ["refused/lora_reference.yml"] = "models[1].model",
        ["refused/test_source_union.yml"] = "tokenizer_source",
        ["refused/test_slerp_union.yml"] = "tokenizer_source",
        ["refused/test_force_token.yml"] = "tokenizer.tokens",
        ["refused/test_pad_to_multiple_of.yml"] = "tokenizer.pad_to_multiple_of",
        ["refused/modules.yml"] = "modules",
        ["refused/slice_base_model.yml"] = "slices[0].base_model",
        ["refused/test_della_invalid_epsilon.yml"] = "parameters.epsilon",
    };

    public static TheoryData<string> Refused => new(Configs("refused"));

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task Configs_using_refused_features_fail_with_one_line_naming_the_field(string config)
    {
        using var dir = new TempDir();
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => Merge(dir, config));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.Equal(Refusals[config], e.Field);
        Assert.StartsWith(e.Field + ":", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(File.Exists(dir["out/model.safetensors"]));
    }

    // ---- hand arithmetic (no CloudSoup code) ----

    private static double[] V(Run run, string model, string tensor) => run.Inputs[model][tensor].Values.Select(v => (double)v).ToArray();

    /// <summary>Output within one unit in the last place of its dtype (plus 1e-6) of the hand-computed value.</summary>
    private static void Close(double[] expected, torch.Tensor actual, string what)
    {
        double ulp = actual.dtype switch { torch.ScalarType.Float16 => Math.Pow(2, -10), torch.ScalarType.BFloat16 => Math.Pow(2, -7), _ => 1e-6 };
        var got = actual.to_type(torch.ScalarType.Float64).flatten().data<double>().ToArray();
        Assert.Equal(expected.Length, got.Length);
        for (int i = 0; i < got.Length; i++)
            Assert.True(Math.Abs(got[i] - expected[i]) <= ulp * Math.Abs(expected[i]) + 1e-6, $"{what}[{i}]: expected {expected[i]}, got {got[i]}");
    }

    /// <summary>mergekit's gradient: linear interpolation of the list at t·(len − 1).</summary>
    private static double Gradient(double[] points, double t)
    {
        double s = t * (points.Length - 1);
        int i = (int)Math.Floor(s);
        if (i >= points.Length - 1) return points[^1];
        return (1 - (s - i)) * points[i] + (s - i) * points[i + 1];
    }

    private static double Norm(double[] v) => Math.Sqrt(v.Sum(x => x * x));

    /// <summary>slerp on the flattened tensors: angle from the normalised vectors (a norm ≤ 1e-8 is left alone), lerp when |cos| > 0.9995.</summary>
    private static double[] Slerp(double t, double[] v0, double[] v1)
    {
        double n0 = Norm(v0), n1 = Norm(v1);
        double dot = 0;
        for (int i = 0; i < v0.Length; i++) dot += (n0 > 1e-8 ? v0[i] / n0 : v0[i]) * (n1 > 1e-8 ? v1[i] / n1 : v1[i]);
        if (Math.Abs(dot) > 0.9995) return v0.Select((x, i) => (1 - t) * x + t * v1[i]).ToArray();
        double omega = Math.Acos(dot), s0 = Math.Sin((1 - t) * omega) / Math.Sin(omega), s1 = Math.Sin(t * omega) / Math.Sin(omega);
        return v0.Select((x, i) => s0 * x + s1 * v1[i]).ToArray();
    }

    /// <summary>
    /// TIES with per-tensor top-k: keep int(density·n) entries of each task vector by |δ| (δ in float32, as the inputs;
    /// equal magnitudes: lower index first), weight, elect the sign of the sum (≥ 0: +), average the agreeing entries
    /// by their weights.
    /// </summary>
    private static double[] Ties(double[] b, double[][] xs, double[] weights, double[] densities)
    {
        int n = b.Length;
        var sum = new double[n];
        var weighted = new double[xs.Length][];
        for (int m = 0; m < xs.Length; m++)
        {
            var delta = xs[m].Select((x, i) => (double)((float)x - (float)b[i])).ToArray();
            var keep = new bool[n];
            int k = densities[m] >= 1 ? n : (int)(densities[m] * n);
            foreach (int i in Enumerable.Range(0, n).OrderByDescending(i => Math.Abs(delta[i])).ThenBy(i => i).Take(k)) keep[i] = true;
            weighted[m] = delta.Select((d, i) => keep[i] ? d * weights[m] : 0).ToArray();
            for (int i = 0; i < n; i++) sum[i] += weighted[m][i];
        }
        var result = new double[n];
        for (int i = 0; i < n; i++)
        {
            int sign = sum[i] >= 0 ? 1 : -1;
            double mixed = 0, divisor = 0;
            for (int m = 0; m < xs.Length; m++)
                if (Math.Sign(weighted[m][i]) == sign) { mixed += weighted[m][i]; divisor += weights[m]; }
            result[i] = b[i] + mixed / (divisor == 0 ? 1 : divisor);
        }
        return result;
    }

    /// <summary>Model Stock for two fine-tunes, one angle per consecutive run of <paramref name="width"/> values (the last dimension).</summary>
    private static double[] ModelStock(double[] b, double[][] xs, int width)
    {
        var result = new double[b.Length];
        for (int start = 0; start < b.Length; start += width)
        {
            var o1 = Enumerable.Range(start, width).Select(i => xs[0][i] - b[i]).ToArray();
            var o2 = Enumerable.Range(start, width).Select(i => xs[1][i] - b[i]).ToArray();
            double cos = Math.Clamp(o1.Zip(o2, (p, q) => p * q).Sum() / Math.Max(Norm(o1) * Norm(o2), 1e-6), -1, 1);
            double t = 2 * cos / (1 + cos);
            for (int i = start; i < start + width; i++)
                result[i] = t * (xs[0][i] + xs[1][i]) / 2 + (1 - t) * b[i];
        }
        return result;
    }
}
