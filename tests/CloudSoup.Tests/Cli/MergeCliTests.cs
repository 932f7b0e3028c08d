using System.Diagnostics;
using CloudSoup.Tests.Support;
using static CloudSoup.Tests.Support.RawSafetensors;

namespace CloudSoup.Tests.Cli;

/// <summary>Builds the CLI once (through ./cloudsoup, which rebuilds only when sources changed).</summary>
public sealed class CliBuildFixture
{
    public CliBuildFixture()
    {
        var (code, _, err) = MergeCliTests.Run(Path.Combine(RepoRoot.Path, "cloudsoup"), ["--help"], RepoRoot.Path);
        if (code != 0) throw new InvalidOperationException($"./cloudsoup --help failed ({code}): {err}");
        if (!File.Exists(Dll)) throw new InvalidOperationException($"{Dll} was not built");
    }

    public static string Dll => Path.Combine(RepoRoot.Path, "src", "CloudSoup.Cli", "bin", "Release", "net10.0", "cloudsoup.dll");
}

/// <summary>The real `cloudsoup merge` process: exit codes, one-line errors, nothing left in --out on failure.</summary>
public class MergeCliTests(CliBuildFixture _) : IClassFixture<CliBuildFixture>
{
    internal static (int Code, string Out, string Err) Run(string file, IEnumerable<string> args, string workDir)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workDir, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private static (int Code, string Out, string Err) Merge(string recipe, string outDir, string workDir) =>
        Run("dotnet", [CliBuildFixture.Dll, "merge", recipe, "--out", outDir], workDir);

    private static readonly (string, long[])[] Layout = [("fc1.weight", [8, 4]), ("fc1.bias", [8]), ("fc2.weight", [2, 8])];

    private static List<(string, Tensor)> Model(int seed, long[]? fc1 = null)
    {
        var rng = new Random(seed);
        return Layout.Select(l => (l.Item1, RawSafetensors.Random(rng, "F32", l.Item1 == "fc1.weight" && fc1 != null ? fc1 : l.Item2))).ToList();
    }

    public static TheoryData<string, string> Failures => new()
    {
        { "bad-recipe", "merge_method: linear\nmodels: [{model: ../models/a.safetensors, parameters: {weigth: 1}}]\n" },
        { "unknown-method", "merge_method: blend\nmodels: [{model: ../models/a.safetensors}]\n" },
        { "missing-model", "merge_method: linear\nmodels: [{model: ../models/a.safetensors}, {model: ../models/nope.safetensors}]\n" },
        { "truncated-model", "merge_method: linear\nmodels: [{model: ../models/a.safetensors}, {model: ../models/cut.safetensors}]\n" },
        { "shape-mismatch", "merge_method: linear\nmodels: [{model: ../models/a.safetensors}, {model: ../models/wide.safetensors}]\n" },
        { "zero-weights", "merge_method: linear\nmodels: [{model: ../models/a.safetensors, parameters: {weight: 2}}, {model: ../models/b.safetensors, parameters: {weight: -2}}]\n" },
        { "not-yaml", "merge_method: [linear\n" },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public void Failing_merges_exit_2_with_one_error_line_and_leave_out_untouched(string name, string recipe)
    {
        using var dir = new TempDir();
        RawSafetensors.Write(dir["models/a.safetensors"], Model(1));
        RawSafetensors.Write(dir["models/b.safetensors"], Model(2));
        RawSafetensors.Write(dir["models/wide.safetensors"], Model(3, fc1: [8, 5]));
        var full = File.ReadAllBytes(dir["models/b.safetensors"]);
        File.WriteAllBytes(dir["models/cut.safetensors"], full[..^10]);
        Directory.CreateDirectory(dir["recipes"]);
        File.WriteAllText(dir["recipes/r.yaml"], recipe);

        var (code, _, err) = Merge(dir["recipes/r.yaml"], dir["out"], dir.Path);

        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(code == 2, $"{name}: exit {code}, stderr: {err}");
        Assert.True(lines.Length == 1, $"{name}: expected one stderr line, got: {err}");
        Assert.StartsWith("error: ", lines[0]);
        Assert.DoesNotContain("   at ", err);
        Assert.DoesNotContain("Exception", err);
        Assert.True(!Directory.Exists(dir["out"]) || !Directory.EnumerateFileSystemEntries(dir["out"]).Any(),
            $"{name}: --out holds {string.Join(", ", Directory.Exists(dir["out"]) ? Directory.EnumerateFileSystemEntries(dir["out"]) : [])}");
    }

    [Fact]
    public void Merge_resolves_relative_and_absolute_model_refs_and_exits_0()
    {
        using var dir = new TempDir();
        var a = Model(11);
        var b = Model(12);
        RawSafetensors.Write(dir["models/a.safetensors"], a);
        RawSafetensors.Write(dir["elsewhere/b.safetensors"], b);
        Directory.CreateDirectory(dir["recipes"]);
        File.WriteAllText(dir["recipes/r.yaml"], $"""
            merge_method: linear
            models:
              - {"{"}model: ../models/a.safetensors, parameters: {"{"}weight: 1{"}"}{"}"}
              - {"{"}model: {dir["elsewhere/b.safetensors"]}, parameters: {"{"}weight: 2{"}"}{"}"}
            """);

        // Run from an unrelated working directory: relative refs are relative to the recipe file.
        var (code, _, err) = Merge(dir["recipes/r.yaml"], dir["out"], Path.GetTempPath());

        Assert.True(code == 0, $"exit {code}: {err}");
        var merged = Read(dir["out/model.safetensors"]);
        var ad = a.ToDictionary(t => t.Item1, t => t.Item2);
        var bd = b.ToDictionary(t => t.Item1, t => t.Item2);
        foreach (var (n, t) in merged)
            for (int i = 0; i < t.Values.Length; i++)
                Assert.Equal((ad[n].Values[i] + 2 * bd[n].Values[i]) / 3, t.Values[i], 5);
        Assert.Empty(Directory.GetDirectories(dir["out"]));   // no staging folder left
    }

    [Fact]
    public void Device_option_runs_on_cpu_and_rejects_unknown_or_unavailable_devices_before_reading()
    {
        using var dir = new TempDir();
        RawSafetensors.Write(dir["a.safetensors"], Model(21));
        RawSafetensors.Write(dir["b.safetensors"], Model(22));
        File.WriteAllText(dir["r.yaml"], "merge_method: linear\nmodels: [a.safetensors, b.safetensors]\n");

        var (ok, _, okErr) = Run("dotnet", [CliBuildFixture.Dll, "merge", dir["r.yaml"], "--out", dir["cpu"], "--device", "cpu"], dir.Path);
        Assert.True(ok == 0, okErr);
        Assert.True(File.Exists(dir["cpu/model.safetensors"]));

        var (bad, _, badErr) = Run("dotnet", [CliBuildFixture.Dll, "merge", dir["r.yaml"], "--out", dir["tpu"], "--device", "tpu"], dir.Path);
        Assert.Equal(2, bad);
        Assert.Equal("error: device: unknown device 'tpu' (expected cpu, cuda, cuda:N or auto)", badErr.Trim());
        Assert.False(Directory.Exists(dir["tpu"]));

        // This machine's build is TorchSharp-cpu: asking for CUDA must say so, not fall back silently.
        var (gpu, _, gpuErr) = Run("dotnet", [CliBuildFixture.Dll, "merge", dir["r.yaml"], "--out", dir["gpu"], "--device", "cuda"], dir.Path);
        Assert.NotEqual(0, gpu);
        Assert.Contains("CUDA is not available", gpuErr);
        Assert.False(Directory.Exists(dir["gpu"]));
    }
}
