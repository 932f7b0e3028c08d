using System.Text.Json;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using static CloudSoup.Tests.Support.RawSafetensors;

namespace CloudSoup.Tests.Merging;

/// <summary>
/// `linear` on random checkpoints against a float64 oracle computed here from the stored values
/// (mergekit semantics: Σ w_i x_i, divided by Σ w_i when normalize). Files are written and read with the
/// test's own safetensors code, so a bug in CloudSoup's reader or writer cannot hide itself.
/// </summary>
public class LinearOracleTests
{
    private static readonly (string Name, long[] Shape)[] Layout =
    [
        ("embed.weight", [7, 5]),
        ("layers.0.fc.weight", [4, 6]),
        ("layers.0.fc.bias", [4]),
        ("layers.1.fc.weight", [4, 6]),
        ("layers.1.fc.bias", [4]),
        ("head.weight", [3, 4]),
    ];

    private static List<(string, Tensor)> RandomModel(int seed, string dtype)
    {
        var rng = new Random(seed);
        return Layout.Select(l => (l.Name, RawSafetensors.Random(rng, dtype, l.Shape))).ToList();
    }

    private static async Task RunAsync(string recipeDir, string yaml, string outDir)
    {
        var recipe = RecipeParser.Parse(yaml);
        await using var sink = new LocalDirectorySink(outDir);
        await new MergeJobRunner(new LocalCheckpointStore(recipeDir)).RunAsync(recipe, sink, null, CancellationToken.None);
    }

    /// <summary>Asserts every output tensor equals the oracle within the rounding of <paramref name="outDType"/>.</summary>
    private static void AssertMatches(Dictionary<string, Tensor> actual, string outDType, Func<string, int, double> expected, double relTol)
    {
        Assert.Equal(Layout.Select(l => l.Name).Order(), actual.Keys.Order());
        foreach (var (name, shape) in Layout)
        {
            var t = actual[name];
            Assert.Equal(outDType, t.DType);
            Assert.Equal(shape, t.Shape);
            for (int i = 0; i < t.Values.Length; i++)
            {
                double e = expected(name, i);
                Assert.True(Math.Abs(t.Values[i] - e) <= relTol * Math.Max(1, Math.Abs(e)), $"{name}[{i}]: got {t.Values[i]:R}, expected {e:R}");
            }
        }
    }

    [Theory]
    [InlineData("F32", true, null, null, "F32", 1e-6)]
    [InlineData("F32", false, null, null, "F32", 1e-6)]
    [InlineData("F16", true, null, null, "F16", 1e-3)]
    [InlineData("BF16", false, null, null, "BF16", 8e-3)]
    [InlineData("F32", true, "float64", null, "F64", 1e-13)]      // compute in float64: exact to double rounding
    [InlineData("F16", true, "float32", "float16", "F16", 1e-3)]
    [InlineData("BF16", true, "float32", null, "F32", 1e-6)]       // bf16 in, f32 out: no bf16 rounding of the result
    [InlineData("F32", false, "bfloat16", null, "BF16", 8e-3)]     // out dtype defaults to dtype
    public async Task Weighted_average_matches_the_float64_oracle(string inDType, bool normalize, string? dtype, string? outDType, string expectOut, double tol)
    {
        using var dir = new TempDir();
        double[] w = [0.7, -0.2, 1.9];
        var models = Enumerable.Range(0, 3).Select(i => RandomModel(100 + i, inDType)).ToList();
        for (int i = 0; i < 3; i++) RawSafetensors.Write(dir[$"m{i}.safetensors"], models[i]);
        var yaml = $"""
            merge_method: linear
            models:
              - {"{"}model: m0.safetensors, parameters: {"{"}weight: {w[0]}{"}"}{"}"}
              - {"{"}model: m1.safetensors, parameters: {"{"}weight: {w[1]}{"}"}{"}"}
              - {"{"}model: m2.safetensors, parameters: {"{"}weight: {w[2]}{"}"}{"}"}
            parameters: {"{"}normalize: {(normalize ? "true" : "false")}{"}"}
            """ + (dtype != null ? $"\ndtype: {dtype}" : "") + (outDType != null ? $"\nout_dtype: {outDType}" : "");
        await RunAsync(dir.Path, yaml, dir["out"]);

        var byName = models.Select(m => m.ToDictionary(t => t.Item1, t => t.Item2)).ToList();
        double wsum = normalize ? w.Sum() : 1.0;
        AssertMatches(Read(dir["out/model.safetensors"]), expectOut,
            (name, i) => Enumerable.Range(0, 3).Sum(k => w[k] * byName[k][name].Values[i]) / wsum, tol);
    }

    [Fact]
    public async Task Sharded_input_folders_and_sharded_output_follow_the_HF_layout()
    {
        using var dir = new TempDir();
        var a = RandomModel(1, "F32");
        var b = RandomModel(2, "F32");
        // Model a: an HF-sharded folder (index + 2 shards, split unevenly); model b: a single file.
        RawSafetensors.Write(dir["a/model-00001-of-00002.safetensors"], a.Take(2).ToList());
        RawSafetensors.Write(dir["a/model-00002-of-00002.safetensors"], a.Skip(2).ToList());
        var weightMap = a.Select((t, i) => (t.Item1, i < 2 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors"))
            .ToDictionary(x => x.Item1, x => x.Item2);
        File.WriteAllText(dir["a/model.safetensors.index.json"], JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = weightMap }));
        RawSafetensors.Write(dir["b.safetensors"], b);

        // Data bytes per tensor: 140, 96, 16, 96, 16, 48 (f32). 200-byte shards: [140] [96 16] [96 16 48].
        await RunAsync(dir.Path, """
            merge_method: linear
            models: [{model: a, parameters: {weight: 1}}, {model: b.safetensors, parameters: {weight: 3}}]
            output: {shard_size: 200}
            """, dir["out"]);

        var files = Directory.GetFiles(dir["out"]).Select(Path.GetFileName).Where(f => f!.EndsWith(".safetensors")).Order().ToList();
        Assert.Equal(Enumerable.Range(1, 3).Select(k => $"model-{k:D5}-of-00003.safetensors"), files);
        Assert.False(File.Exists(dir["out/model.safetensors"]));
        using var index = JsonDocument.Parse(File.ReadAllText(dir["out/model.safetensors.index.json"]));
        Assert.Equal(Layout.Sum(l => l.Shape.Aggregate(4L, (x, y) => x * y)), index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
        var map = index.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        Assert.Equal(Layout.Select(l => l.Name).Order(), map.Keys.Order());

        var merged = new Dictionary<string, Tensor>();
        foreach (var f in files)
        {
            var shard = Read(dir["out/" + f!]);
            Assert.True(shard.Values.Sum(t => t.Values.Length * 4) <= 200 || shard.Count == 1, $"{f} is over the shard size");
            foreach (var (name, t) in shard)
            {
                Assert.Equal(f, map[name]);   // the index points at the shard that really holds the tensor
                merged.Add(name, t);
            }
        }
        var ad = a.ToDictionary(t => t.Item1, t => t.Item2);
        var bd = b.ToDictionary(t => t.Item1, t => t.Item2);
        AssertMatches(merged, "F32", (name, i) => (ad[name].Values[i] + 3 * bd[name].Values[i]) / 4, 1e-6);
    }

    [Fact]
    public async Task Per_model_filters_beat_global_values_and_unmatched_filters_fall_through()
    {
        using var dir = new TempDir();
        var a = RandomModel(5, "F32");
        var b = RandomModel(6, "F32");
        RawSafetensors.Write(dir["a.safetensors"], a);
        RawSafetensors.Write(dir["b.safetensors"], b);
        // a: 3 on "fc" tensors, no catch-all, so other tensors fall through to the global list.
        // global: "head" → 5, catch-all "*" → 2 (first match wins, so head gets 5, not 2).
        // b: a gradient over the two layers (0 → layer 0, 1 → layer 1) and t = 0 (value 0) outside layers;
        //    plus the global fallback never applies to b because its gradient always yields a value.
        await RunAsync(dir.Path, """
            merge_method: linear
            models:
              - model: a.safetensors
                parameters: {weight: [{filter: fc, value: 3}]}
              - model: b.safetensors
                parameters: {weight: [{filter: layers, value: [0.5, 1.5]}, {value: 0.25}]}
            parameters:
              normalize: false
              weight: [{filter: head, value: 5}, {filter: "*", value: 2}, {value: 100}]
            """, dir["out"]);
        var ad = a.ToDictionary(t => t.Item1, t => t.Item2);
        var bd = b.ToDictionary(t => t.Item1, t => t.Item2);
        (double, double) Weights(string name) => name switch
        {
            "layers.0.fc.weight" or "layers.0.fc.bias" => (3, 0.5),
            "layers.1.fc.weight" or "layers.1.fc.bias" => (3, 1.5),
            "head.weight" => (5, 0.25),
            _ => (2, 0.25),   // embed.weight
        };
        AssertMatches(Read(dir["out/model.safetensors"]), "F32", (name, i) =>
        {
            var (wa, wb) = Weights(name);
            return wa * ad[name].Values[i] + wb * bd[name].Values[i];
        }, 1e-6);
    }

    [Fact]
    public async Task Weights_summing_to_zero_with_normalize_fail_and_write_nothing()
    {
        using var dir = new TempDir();
        RawSafetensors.Write(dir["a.safetensors"], RandomModel(1, "F32"));
        RawSafetensors.Write(dir["b.safetensors"], RandomModel(2, "F32"));
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => RunAsync(dir.Path,
            "merge_method: linear\nmodels: [{model: a.safetensors, parameters: {weight: 1}}, {model: b.safetensors, parameters: {weight: -1}}]", dir["out"]));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.Contains("sum to zero", e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir["out"]));
    }
}
