// A TorchScript evaluation model as the job sees it: an IEvalModel whose every call runs in the sandbox process
// (docs/sandbox.md). The module's bytes, the weights under test and the data go in; logits, BatchNorm statistics and
// Fishers come out, checked against what was sent before they are used. Every call has a wall-clock deadline; when
// the process hangs, crashes, runs out of its memory or breaks the protocol, the call throws a ModelFailed error
// saying which, and the model is unusable from then on (the job fails; the worker carries on).
using System.Text.Json.Nodes;
using CloudSoup.Control.Errors;
using TorchSharp;

namespace CloudSoup.Engine.Evaluation.Sandbox;

public sealed class SandboxedModel : IEvalModel
{
    private readonly SandboxProcess _process;
    private readonly SandboxLimits _limits;
    private readonly string _memoryHint, _timeHint;
    private Dictionary<string, long[]> _loaded = new(StringComparer.Ordinal);
    private CloudSoupException? _broken;

    private SandboxedModel(SandboxProcess process, string name, SandboxLimits limits, string? section)
    {
        _process = process;
        Name = name;
        _limits = limits;
        // Where the limit that was hit comes from: the recipe section, or (for the CLI) the configuration.
        (_memoryHint, _timeHint) = section is null ? ("CloudSoup__EvalMemoryLimit", "CloudSoup__EvalTimeLimit") : ($"{section}.limits.memory", $"{section}.limits.seconds");
    }

    public string Name { get; }

    /// <summary>What the sandbox process applied to itself (resource limits, Landlock, seccomp), one line each.</summary>
    public IReadOnlyList<string> Confinement { get; private set; } = [];

    public string BatchNormResetMethod => TorchScriptModel.ResetMethod;

    /// <summary>How long the sandbox may take to start and confine itself (our code only, before any model is read).</summary>
    private static readonly TimeSpan StartupTime = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Starts a sandbox process and loads <paramref name="module"/> into it. <paramref name="section"/> names the recipe
    /// section (evaluation, fisher) whose limits apply, or null when they come from configuration.
    /// </summary>
    public static SandboxedModel Start(byte[] module, string name, SandboxSettings settings, SandboxLimits limits, string? section)
    {
        SandboxProcess process;
        try { process = SandboxProcess.Start(settings, limits); }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or IOException)
        {
            throw new CloudSoupException(ErrorKind.ModelFailed, $"the evaluation sandbox cannot run on this worker: {e.Message}");
        }
        var model = new SandboxedModel(process, name, limits, section);
        try
        {
            model.Call("starting", _ => { }, hello =>
            {
                model.Confinement = hello["confinement"] is JsonArray lines ? lines.Select(l => SafeText.Line(l?.ToString() ?? "")).ToList() : [];
                return 0;
            }, setup: true);
            model.Call("loading", s => SandboxFrames.Write(s, new JsonObject { ["op"] = "load", ["name"] = name }, module), _ => 0);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public void LoadWeights(IReadOnlyDictionary<string, torch.Tensor> weights, string source)
    {
        Call($"loading the weights of {source}", s => SandboxFrames.WriteTensors(s, new JsonObject { ["op"] = "weights", ["source"] = source }, weights), _ => 0);
        _loaded = weights.ToDictionary(kv => kv.Key, kv => kv.Value.shape, StringComparer.Ordinal);
    }

    public torch.Tensor Forward(torch.Tensor inputs)
    {
        using var cpu = inputs.cpu();
        var reply = Call("running a batch", s => SandboxFrames.WriteTensors(s, new JsonObject { ["op"] = "forward" }, [new("inputs", cpu)]), ReadReplyTensors);
        if (reply.Count != 1 || !reply.TryGetValue("logits", out var logits) || !logits.is_floating_point())
        {
            foreach (var t in reply.Values) t.Dispose();
            throw Fail("returned something other than one float tensor of logits");
        }
        return logits;
    }

    public IReadOnlyDictionary<string, torch.Tensor>? ResetBatchNorm(EvalData data, int maxExamples, int batchSize)
    {
        using var batch = data.Inputs.narrow(0, 0, Math.Min(maxExamples, data.Count)).cpu();
        var fresh = Call("re-estimating BatchNorm statistics", s => SandboxFrames.WriteTensors(s, new JsonObject { ["op"] = "reset_bn" }, [new("inputs", batch)]), ReadReplyTensors);
        if (fresh.Count == 0) return null;
        CheckAgainstLoaded(fresh, "BatchNorm statistics");
        return fresh;
    }

    public Dictionary<string, torch.Tensor> ParameterFisher(EvalData data, FisherOptions options, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        int n = (int)Math.Min(options.Samples, data.Count);
        using var inputs = data.Inputs.narrow(0, 0, n).cpu();
        using var labels = data.Labels.narrow(0, 0, n).cpu();
        var request = new JsonObject
        {
            ["op"] = "fisher", ["labels"] = options.Labels.ToString().ToLowerInvariant(), ["samples"] = options.Samples, ["seed"] = options.Seed, ["data"] = data.Source,
        };
        var fisher = Call("computing a Fisher", s => SandboxFrames.WriteTensors(s, request, [new("inputs", inputs), new("labels", labels)]), ReadReplyTensors, progress: progress, ct: ct);
        CheckAgainstLoaded(fisher, "Fisher");
        return fisher;
    }

    private Dictionary<string, torch.Tensor> ReadReplyTensors(JsonObject header) => SandboxFrames.ReadTensors(_process.Output, header);

    /// <summary>Whatever comes back must be tensors the job sent in, with the same shapes.</summary>
    private void CheckAgainstLoaded(Dictionary<string, torch.Tensor> returned, string what)
    {
        foreach (var (name, t) in returned)
            if (!_loaded.TryGetValue(name, out var shape) || !shape.SequenceEqual(t.shape) || !t.is_floating_point())
            {
                foreach (var x in returned.Values) x.Dispose();
                throw Fail($"returned {what} that do not match the weights it was given ({SafeText.Name(name)})");
            }
    }

    /// <summary>
    /// One request and its reply under the per-call deadline. Progress frames ({"progress": f}) may come before the
    /// reply. Any failure leaves the model unusable; later calls throw the same error.
    /// </summary>
    private T Call<T>(string what, Action<Stream> send, Func<JsonObject, T> onOk, IProgress<JobProgress>? progress = null, CancellationToken ct = default, bool setup = false)
    {
        if (_broken != null) throw _broken;
        using var deadline = new Timer(_ => _process.Kill(forTime: true), null, setup ? StartupTime : _limits.TimePerCall, Timeout.InfiniteTimeSpan);
        using var cancel = ct.Register(() => _process.Kill(forTime: false));
        try
        {
            send(_process.Input);
            _process.Input.Flush();
            while (true)
            {
                var (header, payload) = SandboxFrames.ReadHeader(_process.Output, 0) ?? throw new EndOfStreamException();
                if (header["progress"] is JsonValue p && p.TryGetValue<double>(out double fraction))
                {
                    progress?.Report(new JobProgress(JobPhase.Fisher, Math.Clamp(fraction, 0, 1), SafeText.Line(SandboxFrames.String(header, "detail", 200) ?? "", 100)));
                    continue;
                }
                if (header["ok"] is JsonValue ok && ok.TryGetValue<bool>(out bool success) && success) return onOk(header);
                throw _broken = Failure(header, what, setup);
            }
        }
        catch (CloudSoupException e)
        {
            _broken ??= e;
            throw;
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or SandboxProtocolException or ObjectDisposedException or InvalidOperationException)
        {
            ct.ThrowIfCancellationRequested();
            throw _broken = Ended(what, setup);
        }
    }

    /// <summary>The process stopped answering: say whether it ran out of time, crashed, or broke the protocol.</summary>
    private CloudSoupException Ended(string what, bool setup)
    {
        if (_process.KilledForTime && setup)
            return new CloudSoupException(ErrorKind.ModelFailed, $"the evaluation sandbox cannot run on this worker: it did not start within {StartupTime.TotalSeconds:0} s");
        if (_process.KilledForTime)
            return new CloudSoupException(ErrorKind.ModelFailed,
                $"the evaluation model {Name} did not finish {what} in {_limits.TimePerCall.TotalSeconds:0} s (the limit per call, {_timeHint})");
        string ending = _process.Ending(TimeSpan.FromSeconds(10));
        if (setup)
            return new CloudSoupException(ErrorKind.ModelFailed, $"the evaluation sandbox cannot run on this worker: its process {ending} ({_process.StderrTail()})");
        return new CloudSoupException(ErrorKind.ModelFailed, $"the evaluation model {Name} {ending} while {what}");
    }

    private CloudSoupException Failure(JsonObject reply, string what, bool setup)
    {
        string error = SandboxFrames.String(reply, "error", 32) ?? "model";
        string message = SafeText.Line(SandboxFrames.String(reply, "message", 64 << 10) ?? "no reason given");
        if (setup || error == "setup")
            return new CloudSoupException(ErrorKind.ModelFailed, $"the evaluation sandbox cannot run on this worker: {message}");
        if (error == "memory")
            return new CloudSoupException(ErrorKind.ModelFailed,
                $"the evaluation model {Name} exceeded its {SandboxSettings.Size(_limits.MemoryBytes)} memory limit while {what} ({_memoryHint})");
        if (error == "input" && Enum.TryParse<ErrorKind>(SandboxFrames.String(reply, "kind", 32), out var kind) && Enum.IsDefined(kind))
            // The sandbox's own checks (weights that do not fit the module, ...); never a retriable kind from there.
            return new CloudSoupException(kind is ErrorKind.Transient or ErrorKind.InputChanged ? ErrorKind.ModelFailed : kind, message);
        return new CloudSoupException(ErrorKind.ModelFailed, $"the evaluation model {Name} failed while {what}: {message}");
    }

    private CloudSoupException Fail(string what) => _broken = new CloudSoupException(ErrorKind.ModelFailed, $"the evaluation model {Name} {what}");

    public void Dispose() => _process.Dispose();
}
