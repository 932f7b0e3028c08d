using System.Text.Json;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Intake;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Service;
using CloudSoup.Tests.Support;
using CloudSoup.Worker.Queue;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace CloudSoup.Tests.Merging;

/// <summary>
/// Issue 15: inputs with NaN or infinite values. The merge counts them per tensor, per input model and in the output,
/// says so in report.json and report.html, and with nonfinite: refuse fails the job naming the model and the tensor.
/// </summary>
[Collection(AzuriteCollection.Name)]
public class NonFiniteTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;

    /// <summary>Model a: 2 NaN and 1 +inf in "w"; model c: one -inf in "b"; "ok" finite everywhere.</summary>
    private static void WriteModels(TempDir dir)
    {
        for (int m = 0; m < 3; m++)
        {
            var gen = new torch.Generator((ulong)(70 + m));
            var w = torch.randn(new long[] { 4, 8 }, generator: gen);
            var b = torch.randn(new long[] { 8 }, generator: gen);
            if (m == 0)
            {
                w[0, 1] = float.NaN;
                w[2, 3] = float.NaN;
                w[3, 7] = float.PositiveInfinity;
            }
            if (m == 2) b[5] = float.NegativeInfinity;
            SafetensorsFiles.Write(dir[$"m{m}.safetensors"], new Dictionary<string, torch.Tensor> { ["w"] = w, ["b"] = b, ["ok"] = torch.randn(new long[] { 3 }, generator: gen) });
        }
    }

    private const string Recipe = "merge_method: linear\nmodels: [{model: m0.safetensors}, {model: m1.safetensors}, {model: m2.safetensors}]\n";

    private static Task<MergeReport> MergeAsync(TempDir dir, string recipe) =>
        MergeIntoAsync(dir, recipe, new LocalDirectorySink(dir["out"]));

    private static async Task<MergeReport> MergeIntoAsync(TempDir dir, string recipe, IOutputSink sink)
    {
        await using (sink)
            return await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(RecipeParser.Parse(recipe), sink, null, None);
    }

    /// <summary>NaN and infinite counts counted directly (torch.isnan / torch.isinf over the whole tensor), to check the report against.</summary>
    private static (long Nan, long Inf) Direct(torch.Tensor t) => (torch.isnan(t).sum().ToInt64(), torch.isinf(t).sum().ToInt64());

    [Fact]
    public async Task Non_finite_values_are_counted_per_tensor_input_and_output_in_report_json_and_html()
    {
        using var dir = new TempDir();
        WriteModels(dir);
        var report = await MergeAsync(dir, Recipe);

        var merged = SafetensorsFiles.Read(dir["out/model.safetensors"]);
        var inputs = Enumerable.Range(0, 3).Select(m => SafetensorsFiles.Read(dir[$"m{m}.safetensors"])).ToList();
        Assert.Equal(new[] { "w", "b" }, report.NonFinite.Select(t => t.Tensor));      // "ok" is finite: not listed
        foreach (var t in report.NonFinite)
        {
            var expectedInputs = inputs.Select((m, i) => (Model: $"m{i}.safetensors", Count: Direct(m[t.Tensor]))).Where(x => x.Count != (0, 0))
                .Select(x => new NonFiniteInput(x.Model, x.Count.Item1, x.Count.Item2));
            Assert.Equal(expectedInputs, t.Inputs);
            Assert.Equal(Direct(merged[t.Tensor]), (t.OutputNan, t.OutputInf));
        }
        Assert.Equal(new NonFiniteInput("m0.safetensors", 2, 1), Assert.Single(report.NonFinite[0].Inputs));
        Assert.True(report.NonFinite[0].OutputNan >= 2);                                    // an average with NaN is NaN
        Assert.Equal((0L, 1L), (report.NonFinite[1].OutputNan, report.NonFinite[1].OutputInf));
        var warning = Assert.Single(report.Warnings);
        Assert.Contains("2 tensors hold NaN or infinite values", warning);
        Assert.Contains("m0.safetensors (3)", warning);
        Assert.Contains("m2.safetensors (1)", warning);

        // What a machine reads: report.json's nonFinite, as written.
        var json = JsonDocument.Parse(File.ReadAllBytes(dir["out/report.json"])).RootElement.GetProperty("nonFinite");
        Assert.Equal("w", json[0].GetProperty("tensor").GetString());
        var first = json[0].GetProperty("inputs")[0];
        Assert.Equal(("m0.safetensors", 2, 1), (first.GetProperty("model").GetString(), first.GetProperty("nan").GetInt64(), first.GetProperty("inf").GetInt64()));
        Assert.Equal(report.NonFinite[0].OutputNan, json[0].GetProperty("outputNan").GetInt64());
        // What a person reads.
        var html = File.ReadAllText(dir["out/report.html"]);
        Assert.Contains("NaN and infinite values", html);
        Assert.Contains("<code>w</code>", html);
        Assert.Contains("2 / 1", html);
    }

    [Fact]
    public async Task Sce_counts_its_inputs_after_the_merge_the_same_way_and_refuses_them_the_same_way()
    {
        // sce's kernel vouches for finite inputs (IVouchesForInputs), so the executor counts them after the merge; the
        // report and the refusal must be what counting first gives.
        using var dir = new TempDir();
        WriteModels(dir);
        const string sce = "merge_method: sce\nbase_model: m1.safetensors\nmodels: [{model: m0.safetensors}, {model: m2.safetensors}]\n";
        var report = await MergeAsync(dir, sce);
        var inputs = Enumerable.Range(0, 3).Select(m => SafetensorsFiles.Read(dir[$"m{m}.safetensors"])).ToList();
        Assert.Equal(new[] { "w", "b" }, report.NonFinite.Select(t => t.Tensor));
        foreach (var t in report.NonFinite)
            Assert.Equal(inputs.Select((m, i) => (Model: $"m{i}.safetensors", Count: Direct(m[t.Tensor]))).Where(x => x.Count != (0, 0))
                .Select(x => new NonFiniteInput(x.Model, x.Count.Item1, x.Count.Item2)), t.Inputs);
        var merged = SafetensorsFiles.Read(dir["out/model.safetensors"]);
        foreach (var t in report.NonFinite) Assert.Equal(Direct(merged[t.Tensor]), (t.OutputNan, t.OutputInf));

        using var again = new TempDir();
        WriteModels(again);
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => MergeAsync(again, sce + "nonfinite: refuse\n"));
        Assert.StartsWith("m0.safetensors: tensor 'w' has 2 NaN and 1 infinite values", e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(again["out"]));
    }

    [Fact]
    public async Task A_finite_merge_reports_nothing()
    {
        using var dir = new TempDir();
        SafetensorsFiles.Write(dir["a.safetensors"], TestBlobs.RandomModel(1));
        SafetensorsFiles.Write(dir["b.safetensors"], TestBlobs.RandomModel(2));
        var report = await MergeAsync(dir, "merge_method: linear\nmodels: [{model: a.safetensors}, {model: b.safetensors}]\n");
        Assert.Empty(report.NonFinite);
        Assert.Empty(report.Warnings);
        Assert.DoesNotContain("NaN and infinite", File.ReadAllText(dir["out/report.html"]));
    }

    [Fact]
    public async Task Nonfinite_refuse_fails_naming_the_model_and_the_tensor_and_writes_nothing()
    {
        using var dir = new TempDir();
        WriteModels(dir);
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => MergeAsync(dir, Recipe + "nonfinite: refuse\n"));
        Assert.False(e.IsRetriable);
        Assert.StartsWith("m0.safetensors: tensor 'w' has 2 NaN and 1 infinite values", e.Message);
        Assert.Contains("nonfinite: refuse", e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir["out"]));
    }

    [Fact]
    public async Task An_output_that_overflows_its_dtype_is_reported_and_refused_with_the_option()
    {
        using var dir = new TempDir();
        // Finite inputs whose average, 1e5, is beyond float16's largest value (65504).
        foreach (var m in new[] { "a", "b" })
            SafetensorsFiles.Write(dir[$"{m}.safetensors"], new Dictionary<string, torch.Tensor> { ["w"] = torch.full(new long[] { 2, 2 }, 1e5f), ["v"] = torch.ones(3) });
        const string recipe = "merge_method: linear\nout_dtype: float16\nmodels: [{model: a.safetensors}, {model: b.safetensors}]\n";

        var report = await MergeAsync(dir, recipe);
        var w = Assert.Single(report.NonFinite);
        Assert.Equal(("w", 0L, 4L), (w.Tensor, w.OutputNan, w.OutputInf));
        Assert.Empty(w.Inputs);
        Assert.Contains("in no input", Assert.Single(report.Warnings));

        var e = await Assert.ThrowsAsync<CloudSoupException>(() => MergeIntoAsync(dir, recipe + "nonfinite: refuse\n", new LocalDirectorySink(dir["refused"])));
        Assert.Equal("nonfinite", e.Field);
        Assert.Contains("merged tensor 'w' has 4 infinite values although its inputs are finite", e.Message);
        Assert.Contains("float16", e.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir["refused"]));
    }

    [Fact]
    public void The_check_finds_a_lone_NaN_or_infinity_never_mistakes_large_values_and_ignores_integers()
    {
        Assert.Null(NonFiniteValues.Count(torch.full(new long[] { 4 }, 60000f).to_type(torch.ScalarType.Float16)));      // a float16 sum would overflow
        Assert.Null(NonFiniteValues.Count(torch.full(new long[] { 4 }, 3e38f)));                                         // a float32 sum would overflow
        foreach (var dtype in new[] { torch.ScalarType.Float32, torch.ScalarType.Float64, torch.ScalarType.Float16, torch.ScalarType.BFloat16 })
            foreach (var (value, expected) in new[] { (float.NaN, new NonFiniteCount(1, 0)), (float.PositiveInfinity, new NonFiniteCount(0, 1)), (float.NegativeInfinity, new NonFiniteCount(0, 1)) })
            {
                var lone = torch.randn(1000).to_type(dtype);
                lone[617] = value;
                Assert.Equal(expected, NonFiniteValues.Count(lone));
            }
        Assert.Null(NonFiniteValues.Count(torch.arange(10, dtype: torch.ScalarType.Int64)));
        Assert.Null(NonFiniteValues.Count(torch.empty(0)));
        var t = torch.zeros(6).to_type(torch.ScalarType.BFloat16);
        t[1] = float.NaN;
        t[4] = float.NegativeInfinity;
        t[5] = float.PositiveInfinity;
        Assert.Equal(new NonFiniteCount(1, 2), NonFiniteValues.Count(t));
    }

    [Fact]
    public void The_recipe_key_parses_round_trips_and_leaves_job_ids_of_recipes_without_it_alone()
    {
        Assert.Equal(NonFinitePolicy.Warn, RecipeParser.Parse(Recipe).NonFinite);
        var refuse = RecipeParser.Parse(Recipe + "nonfinite: refuse\n");
        Assert.Equal(NonFinitePolicy.Refuse, refuse.NonFinite);
        Assert.Equal(NonFinitePolicy.Refuse, RecipeParser.Parse(RecipeJson.ToJsonString(refuse)).NonFinite);
        Assert.Equal("refuse", RecipeJson.ToJson(refuse)["nonfinite"]!.GetValue<string>());
        Assert.False(RecipeJson.ToJson(RecipeParser.Parse(Recipe)).ContainsKey("nonfinite"));
        var versions = new Dictionary<string, string>();
        Assert.Equal(JobIds.Compute(RecipeParser.Parse(Recipe), versions), JobIds.Compute(RecipeParser.Parse(Recipe + "nonfinite: warn\n"), versions));
        Assert.NotEqual(JobIds.Compute(RecipeParser.Parse(Recipe), versions), JobIds.Compute(refuse, versions));

        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(Recipe + "nonfinite: ignore\n"));
        Assert.Equal("nonfinite", e.Field);
        Assert.Equal("nonfinite: must be one of warn, refuse", e.Message);
    }

    [Fact]
    public async Task In_the_service_a_refused_input_fails_the_job_with_the_reason_and_publishes_nothing()
    {
        var storage = await azurite.NewStorageAsync();
        var jobs = new JobStore(storage.JobsTable);
        using var dir = new TempDir();
        WriteModels(dir);
        var ckpt = storage.Container(storage.Options.CheckpointsContainer);
        for (int m = 0; m < 3; m++) await ckpt.GetBlobClient($"nan/m{m}.safetensors").UploadAsync(dir[$"m{m}.safetensors"]);
        string c = storage.Options.CheckpointsContainer;
        var submitted = await new MergeSubmitter(storage, jobs, NullLogger<MergeSubmitter>.Instance).SubmitAsync(
            $"merge_method: linear\nnonfinite: refuse\nmodels: [{{model: {c}/nan/m0.safetensors}}, {{model: {c}/nan/m1.safetensors}}, {{model: {c}/nan/m2.safetensors}}]\n", "test", None);

        Assert.True(await new JobProcessor(storage, jobs, NullLogger<JobProcessor>.Instance).ProcessNextAsync(None));
        var job = (await jobs.GetAsync(submitted.Job.Id, None))!;
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Equal(1, job.Attempts);                                                   // bad input: not retried
        Assert.StartsWith($"{c}/nan/m0.safetensors: tensor 'w' has 2 NaN and 1 infinite values", job.Error);
        Assert.Empty(await storage.Container(storage.Options.MergedContainer).ListAsync($"{job.Id}/"));
    }
}
