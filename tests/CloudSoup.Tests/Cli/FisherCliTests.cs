using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Cli;

/// <summary>`cloudsoup fisher`: writes a Fisher with the checkpoint's keys; bad input exits 2 with one line and writes nothing.</summary>
public class FisherCliTests(CliBuildFixture _) : IClassFixture<CliBuildFixture>
{
    private static (int Code, string Out, string Err) Fisher(string dir, params string[] args) =>
        MergeCliTests.Run("dotnet", [CliBuildFixture.Dll, "fisher", .. args], dir);

    private static void Inputs(TempDir dir)
    {
        torch.manual_seed(3);
        SafetensorsFiles.Write(dir["m.safetensors"], new Dictionary<string, torch.Tensor>
        {
            ["fc1.weight"] = torch.randn(6, 4), ["fc1.bias"] = torch.randn(6), ["fc2.weight"] = torch.randn(3, 6), ["fc2.bias"] = torch.randn(3),
        });
        SafetensorsFiles.Write(dir["d.safetensors"], new Dictionary<string, torch.Tensor> { ["inputs"] = torch.randn(20, 4), ["labels"] = torch.randint(0, 3, 20) });
    }

    [Fact]
    public void Writes_a_fisher_with_the_checkpoints_keys_and_shapes()
    {
        using var dir = new TempDir();
        Inputs(dir);
        var (code, stdout, err) = Fisher(dir.Path, "--model", "builtin:mlp", "--weights", "m.safetensors", "--data", "d.safetensors", "--out", "f.safetensors", "--labels", "exact");
        Assert.True(code == 0, err);
        Assert.Contains("exact labels, 20 examples", stdout);
        var f = SafetensorsFiles.Read(dir["f.safetensors"]);
        var m = SafetensorsFiles.Read(dir["m.safetensors"]);
        Assert.Equal(m.Keys.Order(), f.Keys.Order());
        foreach (var (k, t) in m)
        {
            Assert.Equal(t.shape, f[k].shape);
            Assert.True((f[k] >= 0).all().ToBoolean() && f[k].sum().ToDouble() > 0, k);
        }
    }

    [Theory]
    [InlineData("--labels", "soft")]
    [InlineData("--weights", "missing.safetensors")]
    [InlineData("--samples", "0")]
    public void Bad_input_exits_2_with_one_line_and_no_output(string option, string value)
    {
        using var dir = new TempDir();
        Inputs(dir);
        var args = new Dictionary<string, string> { ["--model"] = "builtin:mlp", ["--weights"] = "m.safetensors", ["--data"] = "d.safetensors", ["--out"] = "f.safetensors" };
        args[option] = value;
        var (code, _, err) = Fisher(dir.Path, args.SelectMany(kv => new[] { kv.Key, kv.Value }).ToArray());
        Assert.True(code == 2, $"exit {code}: {err}");
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(File.Exists(dir["f.safetensors"]));
        Assert.False(File.Exists(dir["f.safetensors.partial"]));
    }
}
