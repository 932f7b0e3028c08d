using System.Text.Json;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Evaluation;

/// <summary>
/// TorchScript modules saved by PyTorch 1.13 (Fixtures/torchscript/make_fixtures.py) evaluated with weights
/// that differ from the ones saved inside them: the numbers match PyTorch's only if CloudSoup overwrote
/// every parameter and buffer (BatchNorm running stats included).
/// </summary>
public class TorchScriptModelTests
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchscript");

    [Theory]
    [InlineData("mlp", "data8.safetensors")]
    [InlineData("cnn", "data.safetensors")]
    public async Task Metrics_match_pytorch(string name, string dataFile)
    {
        var store = new LocalCheckpointStore(Dir);
        var expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "expected.json"))).RootElement.GetProperty(name);
        using var model = await EvalModelLoader.Default.LoadAsync(store, $"{name}.pt", null, null, CancellationToken.None);
        await using var weightsFile = await Checkpoint.OpenAsync(store, $"{name}.weights.safetensors", CancellationToken.None);
        var weights = await JobEvaluator.ReadAllAsync(weightsFile, CancellationToken.None);
        model.LoadWeights(weights, "fixture");
        using var data = await EvalData.LoadAsync(store, dataFile, CancellationToken.None);
        var metrics = Evaluator.Evaluate(model, data, batchSize: 5);
        Assert.Equal(expected.GetProperty("accuracy").GetDouble(), metrics.Accuracy, 9);
        Assert.Equal(expected.GetProperty("loss").GetDouble(), metrics.Loss, 5);
        using var _ = torch.no_grad();
        var logits = model.Forward(data.Inputs.narrow(0, 0, 2));
        var want = expected.GetProperty("first_logits").EnumerateArray().SelectMany(r => r.EnumerateArray().Select(v => v.GetDouble())).ToArray();
        var got = logits.to_type(torch.ScalarType.Float64).data<double>().ToArray();
        for (int i = 0; i < want.Length; i++) Assert.Equal(want[i], got[i], 4);
    }

    [Fact]
    public async Task Weights_that_do_not_fit_the_module_are_refused()
    {
        var store = new LocalCheckpointStore(Dir);
        using var model = await EvalModelLoader.Default.LoadAsync(store, "mlp.pt", null, null, CancellationToken.None);
        var e = Assert.Throws<CloudSoupException>(() => model.LoadWeights(new Dictionary<string, torch.Tensor>
        {
            ["fc1.weight"] = torch.zeros(6, 8), ["fc1.bias"] = torch.zeros(6), ["fc2.weight"] = torch.zeros(4, 6), ["fc2.bias"] = torch.zeros(3),
        }, "bad"));
        Assert.Contains("fc2.weight", e.Message);
    }

    [Fact]
    public async Task A_file_that_is_not_torchscript_is_a_clear_error()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["fake.pt"], "not a zip archive");
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => EvalModelLoader.Default.LoadAsync(new LocalCheckpointStore(dir.Path), "fake.pt", null, null, CancellationToken.None));
        Assert.Contains("not a loadable TorchScript module", e.Message);
    }
}
