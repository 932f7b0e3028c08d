using CloudSoup.Control.Errors;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Evaluation;

public class BuiltinModelTests
{
    private static Dictionary<string, torch.Tensor> RandomMlp(long seed, params long[] sizes)
    {
        var g = new torch.Generator((ulong)seed);
        var d = new Dictionary<string, torch.Tensor>();
        for (int i = 0; i + 1 < sizes.Length; i++)
        {
            d[$"fc{i + 1}.weight"] = torch.randn(new[] { sizes[i + 1], sizes[i] }, generator: g);
            d[$"fc{i + 1}.bias"] = torch.randn(new[] { sizes[i + 1] }, generator: g);
        }
        return d;
    }

    [Fact]
    public void Mlp_matches_a_hand_written_forward_pass_and_metrics()
    {
        var w = RandomMlp(1, 6, 5, 4, 3);
        var x = torch.randn(new long[] { 40, 6 }, generator: new torch.Generator(2));
        var y = torch.randint(0, 3, new long[] { 40 }, generator: new torch.Generator(3));
        // Independent computation in float64 with plain loops over the weights.
        var xs = x.to_type(torch.ScalarType.Float64).data<double>().ToArray();
        var mats = Enumerable.Range(1, 3).Select(i => (W: w[$"fc{i}.weight"].to_type(torch.ScalarType.Float64), B: w[$"fc{i}.bias"].to_type(torch.ScalarType.Float64))).ToList();
        int correct = 0;
        double loss = 0;
        for (int n = 0; n < 40; n++)
        {
            double[] h = xs.Skip(n * 6).Take(6).ToArray();
            for (int l = 0; l < 3; l++)
            {
                var W = mats[l].W.data<double>().ToArray(); var B = mats[l].B.data<double>().ToArray();
                int outs = B.Length, ins = h.Length;
                var o = new double[outs];
                for (int r = 0; r < outs; r++) { o[r] = B[r]; for (int c = 0; c < ins; c++) o[r] += W[r * ins + c] * h[c]; if (l < 2) o[r] = Math.Max(0, o[r]); }
                h = o;
            }
            long label = y[n].item<long>();
            double max = h.Max(), lse = max + Math.Log(h.Sum(v => Math.Exp(v - max)));
            loss += lse - h[label];
            if (Array.IndexOf(h, h.Max()) == label) correct++;
        }
        using var model = BuiltinModel.Create("builtin:mlp");
        model.LoadWeights(w, "test");
        using var data = new EvalData(x, y, "test");
        var m = Evaluator.Evaluate(model, data, batchSize: 7);
        Assert.Equal(correct / 40.0, m.Accuracy, 12);
        Assert.Equal(loss / 40, m.Loss, 4);
        Assert.Equal(40, m.Examples);
    }

    [Fact]
    public void Later_checkpoints_must_fit_the_first()
    {
        using var model = BuiltinModel.Create("builtin:mlp");
        model.LoadWeights(RandomMlp(1, 6, 5, 3), "a");
        var e = Assert.Throws<CloudSoupException>(() => model.LoadWeights(RandomMlp(1, 6, 4, 3), "b"));
        Assert.Contains("fc1.weight", e.Message);
        Assert.Throws<CloudSoupException>(() => model.LoadWeights(new Dictionary<string, torch.Tensor> { ["fc1.weight"] = torch.zeros(5, 6) }, "c"));
    }

    [Fact]
    public void Unknown_builtin_names_the_field() =>
        Assert.Equal("evaluation.model", Assert.Throws<CloudSoupException>(() => BuiltinModel.Create("builtin:transformer")).Field);

    [Fact]
    public async Task Eval_data_is_validated()
    {
        using var dir = new TempDir();
        SafetensorsFiles.Write(dir["ok.safetensors"], new Dictionary<string, torch.Tensor> { ["inputs"] = torch.zeros(4, 3), ["labels"] = torch.tensor(new long[] { 0, 1, 2, 1 }) });
        SafetensorsFiles.Write(dir["nolabels.safetensors"], new Dictionary<string, torch.Tensor> { ["inputs"] = torch.zeros(4, 3) });
        SafetensorsFiles.Write(dir["mismatch.safetensors"], new Dictionary<string, torch.Tensor> { ["inputs"] = torch.zeros(4, 3), ["labels"] = torch.tensor(new long[] { 0, 1 }) });
        SafetensorsFiles.Write(dir["negative.safetensors"], new Dictionary<string, torch.Tensor> { ["inputs"] = torch.zeros(2, 3), ["labels"] = torch.tensor(new long[] { 0, -1 }) });
        var store = new LocalCheckpointStore(dir.Path);
        using (var ok = await EvalData.LoadAsync(store, "ok.safetensors", CancellationToken.None)) Assert.Equal(4, ok.Count);
        Assert.Contains("'labels' is missing", (await Assert.ThrowsAsync<CloudSoupException>(() => EvalData.LoadAsync(store, "nolabels.safetensors", CancellationToken.None))).Message);
        Assert.Contains("4 examples but 'labels' has 2", (await Assert.ThrowsAsync<CloudSoupException>(() => EvalData.LoadAsync(store, "mismatch.safetensors", CancellationToken.None))).Message);
        Assert.Contains("negative", (await Assert.ThrowsAsync<CloudSoupException>(() => EvalData.LoadAsync(store, "negative.safetensors", CancellationToken.None))).Message);
    }
}
