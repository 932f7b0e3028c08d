using CloudSoup.Control.Errors;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Merging;

public class LinearMergeTests
{
    private static Dictionary<string, torch.Tensor> Model(float a, float b) => new()
    {
        ["fc1.weight"] = torch.tensor(new[] { a, b, a + b, a - b }).reshape(2, 2),
        ["fc1.bias"] = torch.tensor(new[] { a, b }),
    };

    [Fact]
    public async Task Weighted_linear_merge_matches_hand_computed_values()
    {
        using var dir = new TempDir();
        SafetensorsFiles.Write(dir["a.safetensors"], Model(1, 2));
        SafetensorsFiles.Write(dir["b.safetensors"], Model(3, -2));
        var recipe = RecipeParser.Parse("""
            merge_method: linear
            models:
              - model: a.safetensors
                parameters: {weight: 1.0}
              - model: b.safetensors
                parameters: {weight: 3.0}
            """);
        await using (var sink = new LocalDirectorySink(dir["out"]))
            await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(recipe, sink, null, CancellationToken.None);

        var merged = SafetensorsFiles.Read(dir["out/model.safetensors"]);
        // (1*x_a + 3*x_b) / 4
        Assert.Equal(new[] { 2.5f, -1.0f }, merged["fc1.bias"].data<float>().ToArray());
        Assert.Equal(new[] { 2.5f, -1.0f, 1.5f, 3.5f }, merged["fc1.weight"].data<float>().ToArray());
        Assert.True(File.Exists(dir["out/report.json"]));
        Assert.Empty(Directory.GetDirectories(dir["out"]));   // staging folder is gone
    }

    [Fact]
    public async Task Shape_mismatch_fails_and_writes_nothing()
    {
        using var dir = new TempDir();
        SafetensorsFiles.Write(dir["a.safetensors"], Model(1, 2));
        SafetensorsFiles.Write(dir["b.safetensors"], new Dictionary<string, torch.Tensor> { ["fc1.weight"] = torch.zeros(3, 2), ["fc1.bias"] = torch.zeros(2) });
        var recipe = RecipeParser.Parse("merge_method: linear\nmodels: [{model: a.safetensors}, {model: b.safetensors}]");
        var sink = new LocalDirectorySink(dir["out"]);
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(recipe, sink, null, CancellationToken.None));
        Assert.Equal(ErrorKind.IncompatibleModels, e.Kind);
        Assert.Contains("fc1.weight", e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir["out"]));
    }
}
