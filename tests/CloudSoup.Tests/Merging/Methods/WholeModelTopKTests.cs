// TIES with topk_scope: model (the paper's whole-model top-k) against hand-computed results, and its
// difference from mergekit's per-tensor top-k.
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Merging.Methods;

public class WholeModelTopKTests
{
    private static async Task<(Dictionary<string, torch.Tensor> Out, CloudSoup.Engine.Reports.MergeReport Report)> Merge(TempDir dir, string parameters, float[]? bValues = null)
    {
        SafetensorsFiles.Write(dir["base.safetensors"], new Dictionary<string, torch.Tensor> { ["a"] = torch.zeros(4), ["b"] = torch.zeros(2) });
        // Model 1's task vector: a = [0.1, 0.9, -0.8, 0.7], b = [0.2, -0.05]; n = 6.
        SafetensorsFiles.Write(dir["m1.safetensors"], new Dictionary<string, torch.Tensor> { ["a"] = torch.tensor(new[] { 0.1f, 0.9f, -0.8f, 0.7f }), ["b"] = torch.tensor(new[] { 0.2f, -0.05f }) });
        // Model 2 changes nothing: its zero task vector never agrees with an elected sign, so the result is model 1's kept part.
        SafetensorsFiles.Write(dir["m2.safetensors"], new Dictionary<string, torch.Tensor> { ["a"] = torch.zeros(4), ["b"] = torch.tensor(bValues ?? [0f, 0f]) });
        var recipe = RecipeParser.Parse($"merge_method: ties\nbase_model: base.safetensors\nmodels: [{{model: m1.safetensors, parameters: {{weight: 1}}}}, {{model: m2.safetensors, parameters: {{weight: 1}}}}]\nparameters: {parameters}");
        CloudSoup.Engine.Reports.MergeReport report;
        string outDir = dir[$"out{Guid.NewGuid():N}"];
        await using (var sink = new LocalDirectorySink(outDir))
            report = await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(recipe, sink, null, CancellationToken.None);
        return (SafetensorsFiles.Read(Path.Combine(outDir, "model.safetensors")), report);
    }

    private static void Close(float[] expected, torch.Tensor t) =>
        Assert.True(t.allclose(torch.tensor(expected), rtol: 0, atol: 1e-6), $"got {string.Join(", ", t.data<float>().ToArray())}");

    [Fact]
    public async Task Whole_model_top_k_keeps_the_largest_half_of_the_whole_task_vector()
    {
        using var dir = new TempDir();
        // k = int(0.5 · 6) = 3 → threshold 0.7: a keeps 0.9, -0.8, 0.7 and b keeps nothing.
        var (whole, report) = await Merge(dir, "{density: 0.5, topk_scope: model}");
        Close([0, 0.9f, -0.8f, 0.7f], whole["a"]);
        Close([0, 0], whole["b"]);
        Assert.Contains("m1.safetensors: 0.7", report.MethodNotes["(whole model)"]);
        // Per tensor (mergekit): a keeps int(0.5·4) = 2 (0.9, -0.8), b keeps int(0.5·2) = 1 (0.2).
        var (perTensor, _) = await Merge(dir, "{density: 0.5}");
        Close([0, 0.9f, -0.8f, 0], perTensor["a"]);
        Close([0.2f, 0], perTensor["b"]);
    }

    [Fact]
    public async Task Ties_at_the_threshold_are_all_kept_and_density_one_keeps_everything()
    {
        using var dir = new TempDir();
        // density 1/3 → k = 2 → threshold 0.8 (|−0.8|): 0.9 and −0.8 kept.
        var (third, _) = await Merge(dir, "{density: 0.3333334, topk_scope: model}");
        Close([0, 0.9f, -0.8f, 0], third["a"]);
        var (all, _) = await Merge(dir, "{density: 1.0, topk_scope: model}");
        Close([0.1f, 0.9f, -0.8f, 0.7f], all["a"]);
        Close([0.2f, -0.05f], all["b"]);
    }

    [Fact]
    public async Task A_density_that_varies_by_tensor_is_rejected_for_whole_model_top_k()
    {
        using var dir = new TempDir();
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => Merge(dir, "{density: [{filter: a, value: 0.5}, {value: 0.9}], topk_scope: model}"));
        Assert.Contains("density", e.Field);
    }
}
