// TorchScript evaluation models run in the sandbox process (docs/sandbox.md). Every case here starts real sandbox
// processes on the hostile modules of Fixtures/sandbox (made by its make_fixtures.py with PyTorch 1.13): whatever a
// module does, it ends as a ModelFailed error naming the reason, and this process (the "worker") carries on.
using System.Net;
using System.Net.Sockets;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Evaluation.Sandbox;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Storage;
using TorchSharp;

namespace CloudSoup.Tests.Evaluation;

public class SandboxTests
{
    private static readonly string Scripts = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchscript");
    private static readonly string Hostile = Path.Combine(AppContext.BaseDirectory, "Fixtures", "sandbox");
    /// <summary>The fixed paths the hostile modules reach for (make_fixtures.py).</summary>
    private const string ProbeFolder = "/tmp/cloudsoup-sandbox-test";

    private static async Task<(Dictionary<string, torch.Tensor> Weights, EvalData Data)> MlpInputsAsync()
    {
        var store = new LocalCheckpointStore(Scripts);
        await using var file = await Checkpoint.OpenAsync(store, "mlp.weights.safetensors", CancellationToken.None);
        return (await JobEvaluator.ReadAllAsync(file, CancellationToken.None), await EvalData.LoadAsync(store, "data8.safetensors", CancellationToken.None));
    }

    /// <summary>Loads a hostile module, gives it the MLP's weights and runs one evaluation; returns the error it ends with.</summary>
    private static async Task<CloudSoupException> EvaluationFailsAsync(string module, EvaluationLimits? limits = null)
    {
        var (weights, data) = await MlpInputsAsync();
        using var _ = data;
        var e = await Assert.ThrowsAsync<CloudSoupException>(async () =>
        {
            using var model = await EvalModelLoader.Default.LoadAsync(new LocalCheckpointStore(Hostile), module, limits, "evaluation", CancellationToken.None);
            model.LoadWeights(weights, "mlp.weights.safetensors");
            Evaluator.Evaluate(model, data);
        });
        Assert.Equal(ErrorKind.ModelFailed, e.Kind);
        Assert.False(e.IsRetriable);
        return e;
    }

    [Fact]
    public async Task A_module_that_opens_a_file_for_writing_outside_its_scratch_folder_fails_and_the_file_is_unchanged()
    {
        Directory.CreateDirectory(ProbeFolder);
        string victim = Path.Combine(ProbeFolder, "victim.bin");
        File.WriteAllText(victim, "AAAAAAAAAAAAAAAA");
        var e = await EvaluationFailsAsync("write_file.pt");
        Assert.Contains("failed while running a batch", e.Message);
        Assert.Contains("Permission denied", e.Message);
        Assert.Equal("AAAAAAAAAAAAAAAA", File.ReadAllText(victim));
    }

    [Fact]
    public async Task A_module_that_reads_a_file_outside_its_scratch_folder_fails_and_returns_nothing_of_it()
    {
        Directory.CreateDirectory(ProbeFolder);
        File.WriteAllText(Path.Combine(ProbeFolder, "secret.bin"), "SECRETSECRETSECR");
        var e = await EvaluationFailsAsync("read_file.pt");
        Assert.Contains("Permission denied", e.Message);
        Assert.DoesNotContain("SECRET", e.Message);
    }

    [Fact]
    public async Task A_module_that_never_returns_is_stopped_at_its_time_limit()
    {
        var e = await EvaluationFailsAsync("loop.pt", new EvaluationLimits(null, 20));
        Assert.Equal("the evaluation model loop.pt did not finish running a batch in 20 s (the limit per call, evaluation.limits.seconds)", e.Message);
    }

    [Fact]
    public async Task A_module_over_its_memory_limit_fails_naming_the_limit()
    {
        var e = await EvaluationFailsAsync("memory.pt", new EvaluationLimits(1_000_000_000, null));   // it wants 6 GB
        Assert.Equal("the evaluation model memory.pt exceeded its 1 GB memory limit while running a batch (evaluation.limits.memory)", e.Message);
    }

    [Fact]
    public async Task A_module_asking_for_16_TiB_fails_once_as_over_its_memory_limit()
    {
        var e = await EvaluationFailsAsync("huge.pt");
        Assert.Equal("the evaluation model huge.pt exceeded its 4 GB memory limit while running a batch (evaluation.limits.memory)", e.Message);
    }

    [Fact]
    public async Task A_hostile_data_pkl_that_kills_the_loader_fails_with_the_signal_and_this_process_goes_on()
    {
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => EvalModelLoader.Default.LoadAsync(new LocalCheckpointStore(Hostile), "crash_pickle.pt", null, "evaluation", CancellationToken.None));
        Assert.Equal(ErrorKind.ModelFailed, e.Kind);
        Assert.Matches(@"^the evaluation model crash_pickle\.pt crashed \(signal \d+, SIG[A-Z]+\) while loading$", e.Message);
        // Still here, and a good module evaluates right after.
        var (weights, data) = await MlpInputsAsync();
        using var _ = data;
        using var model = await EvalModelLoader.Default.LoadAsync(new LocalCheckpointStore(Scripts), "mlp.pt", null, "evaluation", CancellationToken.None);
        model.LoadWeights(weights, "fixture");
        Assert.Equal(24, Evaluator.Evaluate(model, data).Examples);
    }

    [Fact]
    public async Task A_module_that_is_not_torchscript_is_a_clear_error_from_the_sandbox()
    {
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => EvalModelLoader.Default.LoadAsync(new LocalCheckpointStore(Scripts), "data8.safetensors", null, "evaluation", CancellationToken.None));
        Assert.Equal(ErrorKind.InvalidCheckpoint, e.Kind);
        Assert.Contains("not a loadable TorchScript module", e.Message);
    }

    [Fact]
    public async Task The_sandbox_reports_its_confinement_and_the_torchscript_fisher_matches_the_builtin_one()
    {
        var (weights, data) = await MlpInputsAsync();
        using var _ = data;
        using var script = (SandboxedModel)await EvalModelLoader.Default.LoadAsync(new LocalCheckpointStore(Scripts), "mlp.pt", null, "evaluation", CancellationToken.None);
        Assert.Contains(script.Confinement, l => l.StartsWith("landlock", StringComparison.Ordinal));
        Assert.Contains(script.Confinement, l => l.StartsWith("seccomp", StringComparison.Ordinal));
        Assert.Contains(script.Confinement, l => l.StartsWith("rlimits", StringComparison.Ordinal));
        script.LoadWeights(weights, "fixture");
        using var builtin = BuiltinModel.Create("builtin:mlp");
        builtin.LoadWeights(weights, "fixture");
        var options = new FisherOptions(FisherLabels.Exact, 10);
        var fromSandbox = FisherEstimator.Estimate(script, weights, data, options, null, CancellationToken.None);
        var inProcess = FisherEstimator.Estimate(builtin, weights, data, options, null, CancellationToken.None);
        Assert.Equal(inProcess.Keys.Order(), fromSandbox.Keys.Order());
        foreach (var (name, t) in inProcess) Assert.True(t.allclose(fromSandbox[name], rtol: 1e-4, atol: 1e-7), name);
    }

    /// <summary>
    /// The self-check (SandboxSelfCheck) started the way jobs start the sandbox: with a secret in this process's
    /// environment, a file to reach for and a TCP server on loopback to connect to. Everything must be blocked and the
    /// secret absent from the sandbox's environment.
    /// </summary>
    [Fact]
    public void The_sandbox_blocks_other_files_the_network_programs_and_the_workers_environment()
    {
        Directory.CreateDirectory(ProbeFolder);
        string secretFile = Path.Combine(ProbeFolder, "self-check.bin");
        File.WriteAllText(secretFile, "secret");
        Environment.SetEnvironmentVariable("CLOUDSOUP_SANDBOX_TEST_SECRET", "AccountKey=abc");
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        // Started by SandboxProcess, as jobs start it (same host, environment and confinement), in self-check mode.
        using var sandbox = SandboxProcess.Start(SandboxSettings.Default, new SandboxLimits(1L << 30, TimeSpan.FromMinutes(1)),
            ["--self-check", "--probe-file", secretFile, "--probe-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        string output = new StreamReader(sandbox.Output).ReadToEnd();
        Assert.True(sandbox.Ending(TimeSpan.FromMinutes(1)) == "exited with code 0", output);
        Assert.DoesNotContain("ALLOWED", output);
        Assert.Contains("ok: the scratch folder is writable", output);
        Assert.Contains($"blocked: reading {secretFile}", output);
        Assert.Contains($"blocked: connecting to 127.0.0.1:{port}", output);
        Assert.Contains("blocked: reading the parent's environment", output);
        Assert.DoesNotContain("CLOUDSOUP_SANDBOX_TEST_SECRET", output);
        Assert.Equal("secret", File.ReadAllText(secretFile));
        Assert.False(listener.Pending());
    }
}
