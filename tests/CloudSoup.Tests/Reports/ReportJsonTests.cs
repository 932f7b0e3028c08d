// report.json is written by System.Text.Json's generated serializer (MergeReport.ToJsonBytes, MergeReportJson); it must
// give the bytes the reflection serializer gives with MergeReport.Json, for reports that fill every section.
using System.Text.Json;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Soups;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Reports;

public class ReportJsonTests
{
    [Fact]
    public async Task A_soup_with_evaluation_serializes_as_the_reflection_serializer_does()
    {
        using var dir = new TempDir();
        SoupTests.WriteIngredients(dir);
        var report = await SoupTests.RunAsync(dir, SoupTests.Recipe("greedy_soup"));
        Assert.NotNull(report.Soup);
        Assert.NotNull(report.Evaluation);
        Assert.NotNull(report.ModelFiles);
        AssertSameBytes(report);
        Assert.Equal(await File.ReadAllBytesAsync(dir["out/report.json"]), report.ToJsonBytes());
    }

    [Fact]
    public async Task Alignment_scope_alignment_parallelism_and_nonfinite_sections_serialize_as_the_reflection_serializer_does()
    {
        using var dir = new TempDir();
        for (int m = 0; m < 4; m++)
        {
            var gen = new torch.Generator((ulong)(300 + m));
            var tensors = Enumerable.Range(0, 3).ToDictionary(i => $"layers.{i}.weight", _ => torch.randn(new long[] { 8, 8 }, generator: gen));
            SafetensorsFiles.Write(dir[$"m{m}.safetensors"], tensors);
        }
        const string recipe = "merge_method: ties\nbase_model: m0.safetensors\nparameters: {topk_scope: model}\n" +
            "alignment: {method: weight_matching, spec: mlp, seed: 5}\nscope_alignment: {enabled: true}\nparallelism: {parts: 2}\n" +
            "models:\n  - {model: m1.safetensors, parameters: {weight: 1, density: 0.3}}\n  - {model: m2.safetensors, parameters: {weight: 1, density: 0.3}}\n" +
            "  - {model: m3.safetensors, parameters: {weight: 1, density: 0.3}}\n";
        var report = await RunAsync(dir, recipe, "out");
        Assert.NotNull(report.Alignment);
        Assert.NotNull(report.ScopeAlignment);
        Assert.NotNull(report.Parallelism);
        AssertSameBytes(report);

        var nan = torch.ones(8, 8);
        nan[1, 1] = float.NaN;
        SafetensorsFiles.Write(dir["nan.safetensors"], new Dictionary<string, torch.Tensor> { ["layers.0.weight"] = nan });
        SafetensorsFiles.Write(dir["one.safetensors"], new Dictionary<string, torch.Tensor> { ["layers.0.weight"] = torch.ones(8, 8) });
        report = await RunAsync(dir, "merge_method: linear\nmodels: [nan.safetensors, one.safetensors]\n", "nonfinite");
        Assert.NotEmpty(report.NonFinite);
        Assert.NotEmpty(report.Warnings);
        AssertSameBytes(report);
    }

    private static async Task<MergeReport> RunAsync(TempDir dir, string recipe, string output)
    {
        await using var sink = new LocalDirectorySink(dir[output]);
        return await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(RecipeParser.Parse(recipe), sink, null, CancellationToken.None);
    }

    private static void AssertSameBytes(MergeReport report)
    {
        var reflection = JsonSerializer.SerializeToUtf8Bytes(report, MergeReport.Json);
        var generated = report.ToJsonBytes();
        Assert.Equal(System.Text.Encoding.UTF8.GetString(reflection), System.Text.Encoding.UTF8.GetString(generated));
    }
}
