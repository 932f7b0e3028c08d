// Hugging Face's sharded PyTorch folders (pytorch_model-0000k-of-0000N.bin + pytorch_model.bin.index.json;
// Fixtures/sharded_bin/make_fixtures.py, made with PyTorch 1.13): read through the same restricted unpickler as a single
// .bin, lazily, with the index validated like a safetensors index; a merge of sharded folders equals the merge of the
// same models in single files.
using System.Text.Json.Nodes;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Formats;

public class ShardedTorchTests
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "sharded_bin");
    private static readonly LocalCheckpointStore Store = new(Dir);

    private static async Task<Dictionary<string, torch.Tensor>> ReadAll(ICheckpointStore store, string reference)
    {
        await using var c = await Checkpoint.OpenAsync(store, reference, CancellationToken.None);
        var result = new Dictionary<string, torch.Tensor>();
        foreach (var n in c.TensorNames) result[n] = await c.ReadTensorAsync(n, CancellationToken.None);
        return result;
    }

    private static void AssertSame(Dictionary<string, torch.Tensor> expected, Dictionary<string, torch.Tensor> got)
    {
        Assert.Equal(expected.Keys.Order(), got.Keys.Order());
        foreach (var (name, t) in expected)
        {
            Assert.Equal(t.dtype, got[name].dtype);
            Assert.Equal(t.shape, got[name].shape);
            Assert.True(t.eq(got[name]).all().ToBoolean(), name);
        }
    }

    [Theory]
    [InlineData("a-sharded", "a.expected.safetensors")]
    [InlineData("b-sharded", "b.expected.safetensors")]
    [InlineData("a-sharded/pytorch_model.bin.index.json", "a.expected.safetensors")]
    [InlineData("a-single", "a.expected.safetensors")]
    public async Task A_sharded_folder_reads_like_the_tensors_pytorch_saved(string reference, string expected) =>
        AssertSame(await ReadAll(Store, expected), await ReadAll(Store, reference));

    [Fact]
    public async Task Opening_reads_each_shards_pickle_and_no_tensor_bytes()
    {
        await using var c = await Checkpoint.OpenAsync(Store, "a-sharded", CancellationToken.None);
        Assert.Equal(4, c.Files.Count);
        Assert.All(c.Files, f => Assert.Matches(@"pytorch_model-0000\d-of-00004\.bin$", f.File));
        long total = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "a-sharded", "pytorch_model.bin.index.json")))!["metadata"]!["total_size"]!.GetValue<long>();
        Assert.Equal(total, c.TotalBytes);
    }

    [Fact]
    public async Task A_merge_of_sharded_bin_folders_equals_the_merge_of_the_single_files()
    {
        using var dir = new TempDir();
        async Task<Dictionary<string, torch.Tensor>> Merge(string a, string b, string name)
        {
            var recipe = RecipeParser.Parse($"merge_method: linear\nmodels:\n  - {{model: {a}, parameters: {{weight: 0.3}}}}\n  - {{model: {b}, parameters: {{weight: 0.7}}}}\n");
            await using (var sink = new LocalDirectorySink(dir[name]))
                await new MergeJobRunner(Store).RunAsync(recipe, sink, null, CancellationToken.None);
            return SafetensorsFiles.Read(dir[$"{name}/model.safetensors"]);
        }
        var sharded = await Merge("a-sharded", "b-sharded", "sharded");
        AssertSame(await Merge("a-single/pytorch_model.bin", "b-single/pytorch_model.bin", "single"), sharded);
        AssertSame(await Merge("a.expected.safetensors", "b.expected.safetensors", "safetensors"), sharded);
        Assert.Equal(File.ReadAllBytes(dir["single/model.safetensors"]), File.ReadAllBytes(dir["sharded/model.safetensors"]));
    }

    /// <summary>A copy of a-sharded with its index rewritten by <paramref name="edit"/>.</summary>
    private static LocalCheckpointStore EditedCopy(TempDir dir, Action<JsonObject> edit, Action<string>? files = null)
    {
        Directory.CreateDirectory(dir["m"]);
        foreach (var f in Directory.GetFiles(Path.Combine(Dir, "a-sharded"))) File.Copy(f, dir[$"m/{Path.GetFileName(f)}"]);
        var index = JsonNode.Parse(File.ReadAllText(dir["m/pytorch_model.bin.index.json"]))!.AsObject();
        edit(index["weight_map"]!.AsObject());
        File.WriteAllText(dir["m/pytorch_model.bin.index.json"], index.ToJsonString());
        files?.Invoke(dir["m"]);
        return new LocalCheckpointStore(dir.Path);
    }

    [Theory]
    [InlineData("../a-single/pytorch_model.bin", "points outside the checkpoint folder")]
    [InlineData("/etc/passwd", "points outside the checkpoint folder")]
    [InlineData("..", "points outside the checkpoint folder")]
    [InlineData("notes.txt", "neither .safetensors nor a PyTorch")]
    public async Task An_index_naming_a_shard_outside_the_folder_or_of_another_kind_is_refused(string shard, string why)
    {
        using var dir = new TempDir();
        var store = EditedCopy(dir, map => map["lm_head.weight"] = shard);
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => Checkpoint.OpenAsync(store, "m", CancellationToken.None));
        Assert.Equal(ErrorKind.InvalidCheckpoint, e.Kind);
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public async Task An_index_listing_a_tensor_no_shard_holds_is_refused()
    {
        using var dir = new TempDir();
        var store = EditedCopy(dir, map => map["model.extra.weight"] = "pytorch_model-00001-of-00004.bin");
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => Checkpoint.OpenAsync(store, "m", CancellationToken.None));
        Assert.Contains("the index lists tensors its shards do not contain: model.extra.weight", e.Message);
    }

    [Fact]
    public async Task A_hostile_shard_is_refused_by_the_restricted_unpickler_and_runs_nothing()
    {
        using var dir = new TempDir();
        var store = EditedCopy(dir, _ => { }, folder =>
            File.Copy(Path.Combine(AppContext.BaseDirectory, "Fixtures", "pickle", "hostile_system.pt"), Path.Combine(folder, "pytorch_model-00002-of-00004.bin"), overwrite: true));
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => Checkpoint.OpenAsync(store, "m", CancellationToken.None));
        Assert.Equal(ErrorKind.InvalidCheckpoint, e.Kind);
        Assert.Contains("os.system", e.Message);
        Assert.False(File.Exists(Path.Combine(Environment.CurrentDirectory, "cloudsoup-pwned")));
    }
}
