// evaluation.reset_bn: BatchNorm running statistics re-estimated from the merged weights. Checked against the
// statistics computed here from the layer's input, for the built-in CNN (exact) and the PyTorch-made TorchScript
// CNN (running-average convergence), and through a merge job whose written model must carry them.
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Evaluation;

public class BatchNormResetTests
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchscript");

    private static async Task<(Dictionary<string, torch.Tensor> Weights, EvalData Data)> Fixture()
    {
        var store = new LocalCheckpointStore(Dir);
        await using var file = await Checkpoint.OpenAsync(store, "cnn.weights.safetensors", CancellationToken.None);
        return (await JobEvaluator.ReadAllAsync(file, CancellationToken.None), await EvalData.LoadAsync(store, "data.safetensors", CancellationToken.None));
    }

    /// <summary>bn1's input is conv1's output: its per-channel mean and unbiased variance over examples and positions.</summary>
    private static (double[] Mean, double[] Var) Expected(IReadOnlyDictionary<string, torch.Tensor> w, torch.Tensor inputs)
    {
        using var _ = torch.no_grad();
        var pre = torch.nn.functional.conv2d(inputs.view(inputs.shape[0], 1, 4, 4), w["conv1.weight"], w["conv1.bias"], padding: [1, 1]).to_type(torch.ScalarType.Float64);
        var mean = pre.mean([0, 2, 3]);
        var variance = pre.var([0, 2, 3], unbiased: true);
        return (mean.data<double>().ToArray(), variance.data<double>().ToArray());
    }

    private static void Close(double[] expected, torch.Tensor got, double tol)
    {
        var g = got.to_type(torch.ScalarType.Float64).data<double>().ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - g[i]) <= tol * Math.Max(1, Math.Abs(expected[i])), $"[{i}] {g[i]} vs {expected[i]}");
    }

    [Fact]
    public async Task Builtin_cnn_with_batchnorm_matches_pytorchs_module_and_resets_exactly()
    {
        var (weights, data) = await Fixture();
        using var builtin = BuiltinModel.Create("builtin:cnn");
        builtin.LoadWeights(weights, "fixture");
        using var script = await EvalModelLoader.Default.LoadAsync(new LocalCheckpointStore(Dir), "cnn.pt", null, null, CancellationToken.None);
        script.LoadWeights(weights, "fixture");
        using (torch.no_grad())
            Assert.True(builtin.Forward(data.Inputs).allclose(script.Forward(data.Inputs), rtol: 1e-5, atol: 1e-5));

        var fresh = builtin.ResetBatchNorm(data, 2048, batchSize: 5)!;
        var (mean, variance) = Expected(weights, data.Inputs);
        Close(mean, fresh["bn1.running_mean"], 1e-6);
        Close(variance, fresh["bn1.running_var"], 1e-6);
        Assert.Equal("exact population statistics", builtin.BatchNormResetMethod);
    }

    [Fact]
    public async Task Torchscript_reset_converges_to_the_same_statistics()
    {
        var (weights, data) = await Fixture();
        using var script = await EvalModelLoader.Default.LoadAsync(new LocalCheckpointStore(Dir), "cnn.pt", null, null, CancellationToken.None);
        script.LoadWeights(weights, "fixture");
        var fresh = script.ResetBatchNorm(data, 2048, batchSize: 256)!;
        var (mean, variance) = Expected(weights, data.Inputs);
        Close(mean, fresh["bn1.running_mean"], 1e-5);
        Close(variance, fresh["bn1.running_var"], 1e-5);
        // The model is back in eval mode: outputs use the new running statistics.
        using var builtin = BuiltinModel.Create("builtin:cnn");
        var withFresh = weights.ToDictionary(kv => kv.Key, kv => fresh.TryGetValue(kv.Key, out var f) ? f : kv.Value);
        builtin.LoadWeights(withFresh, "fixture");
        using (torch.no_grad())
            Assert.True(builtin.Forward(data.Inputs).allclose(script.Forward(data.Inputs), rtol: 1e-4, atol: 1e-4));
    }

    [Theory]
    [InlineData("builtin:cnn", 1e-6)]
    [InlineData("cnn.pt", 1e-5)]
    public async Task A_merge_job_writes_the_reestimated_statistics_and_evaluates_with_them(string model, double tol)
    {
        using var dir = new TempDir();
        var (a, data) = await Fixture();
        torch.manual_seed(5);
        var b = a.ToDictionary(kv => kv.Key, kv => kv.Value.is_floating_point() ? kv.Value + 0.3 * torch.randn_like(kv.Value) : kv.Value.clone());
        b["bn1.running_var"] = b["bn1.running_var"].abs() + 0.1;
        SafetensorsFiles.Write(dir["a.safetensors"], a);
        SafetensorsFiles.Write(dir["b.safetensors"], b);
        File.Copy(Path.Combine(Dir, "data.safetensors"), dir["data.safetensors"]);
        File.Copy(Path.Combine(Dir, "cnn.pt"), dir["cnn.pt"]);

        async Task<(Dictionary<string, torch.Tensor>, CloudSoup.Engine.Reports.MergeReport)> Run(string name, string extra)
        {
            var recipe = RecipeParser.Parse($"merge_method: linear\nmodels: [a.safetensors, b.safetensors]\nevaluation: {{model: {model}, data: data.safetensors{extra}}}");
            CloudSoup.Engine.Reports.MergeReport report;
            await using (var sink = new LocalDirectorySink(dir[name]))
                report = await new MergeJobRunner(new LocalCheckpointStore(dir.Path), new JobEvaluator()).RunAsync(recipe, sink, null, CancellationToken.None);
            return (SafetensorsFiles.Read(dir[$"{name}/model.safetensors"]), report);
        }

        var (reset, report) = await Run("reset", "");
        var (mean, variance) = Expected(reset, data.Inputs);   // statistics of the merged model's own bn1 input
        Close(mean, reset["bn1.running_mean"], tol);
        Close(variance, reset["bn1.running_var"], tol);
        Assert.Equal(["bn1.running_mean", "bn1.running_var"], report.BatchNormReset!.Tensors);

        // The reported metrics are those of the written model.
        using var check = BuiltinModel.Create("builtin:cnn");
        check.LoadWeights(reset, "written");
        var metrics = Evaluator.Evaluate(check, data);
        Assert.Equal(metrics.Accuracy, report.Evaluation!.Merged.HeldOut.Accuracy, 9);
        Assert.Equal(metrics.Loss, report.Evaluation.Merged.HeldOut.Loss, 4);

        var (plain, plainReport) = await Run("plain", ", reset_bn: false");
        Assert.Null(plainReport.BatchNormReset);
        Assert.True(plain["bn1.running_mean"].allclose((a["bn1.running_mean"] + b["bn1.running_mean"]) / 2, rtol: 1e-6, atol: 1e-6));
    }
}
