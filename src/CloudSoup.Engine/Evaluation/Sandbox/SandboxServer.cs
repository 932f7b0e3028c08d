// The sandbox process's side (src/CloudSoup.Sandbox runs this; docs/sandbox.md): confine itself, then serve one
// TorchScript model over the frame protocol (SandboxFrames) until its input ends. It holds the only copy of the model
// and runs every call that executes it: loading, forward passes, BatchNorm re-estimation and per-example gradients
// for Fishers. Whatever the model does, the worst outcome is that this process fails, hangs or dies: the worker
// turns that into a failed job.
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Evaluation.Sandbox.Confinement;
using TorchSharp;

namespace CloudSoup.Engine.Evaluation.Sandbox;

public static class SandboxServer
{
    /// <summary>Exit code when the process could not set itself up (bad arguments, confinement refused).</summary>
    public const int SetupFailed = 3;

    /// <summary>
    /// Arguments: --memory BYTES --confine strict|limits-only [--threads N]; the working directory is the scratch folder.
    /// With --self-check [--probe-file PATH] [--probe-port N] it tries what a hostile model would instead (SandboxSelfCheck).
    /// </summary>
    public static int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "--self-check")
        {
            string? file = null;
            int port = 0;
            var rest = new List<string>();
            for (int i = 1; i < args.Length; i++)
            {
                if (args[i] == "--probe-file" && i + 1 < args.Length) file = args[++i];
                else if (args[i] == "--probe-port" && i + 1 < args.Length && int.TryParse(args[i + 1], out port)) i++;
                else rest.Add(args[i]);
            }
            if (rest.Count == 0) rest.AddRange(["--memory", (1UL << 30).ToString(System.Globalization.CultureInfo.InvariantCulture), "--confine", "strict"]);
            if (!TryParseArguments(rest.ToArray(), out ulong checkMemory, out var checkMode, out _))
            {
                Console.Error.WriteLine("usage: cloudsoup-sandbox --self-check [--memory BYTES --confine strict|limits-only] [--probe-file PATH] [--probe-port N]");
                return SetupFailed;
            }
            return SandboxSelfCheck.Run(checkMode, checkMemory, file, port);
        }

        // The protocol gets a private copy of stdout, and fd 1 becomes stderr: a model that prints (TorchScript's
        // print() writes to stdout) cannot corrupt the protocol.
        Stream output, input = Console.OpenStandardInput();
        if (OperatingSystem.IsLinux())
        {
            int protocolFd = LinuxCalls.dup(1);
            if (protocolFd < 0 || LinuxCalls.dup2(2, 1) < 0) return SetupFailed;
            output = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(protocolFd, ownsHandle: true), FileAccess.Write, bufferSize: 0);
        }
        else output = Console.OpenStandardOutput();
        using var buffered = new BufferedStream(output, 1 << 16);

        if (!TryParseArguments(args, out ulong memory, out var mode, out int threads))
        {
            Reply(buffered, Failure("setup", "usage: cloudsoup-sandbox --memory BYTES --confine strict|limits-only [--threads N]"));
            return SetupFailed;
        }
        IReadOnlyList<string> confinement;
        try
        {
            torch.InitializeDeviceType(DeviceType.CPU);   // loads libtorch before the file system closes
            if (threads > 0) torch.set_num_threads(threads);
            using (torch.ones(1).add(1)) { }              // and lets it set up its thread pool and allocator
            confinement = ChildConfinement.Apply(mode, memory, Directory.GetCurrentDirectory());
        }
        catch (Exception e)
        {
            Reply(buffered, Failure("setup", e.Message));
            return SetupFailed;
        }
        Reply(buffered, new JsonObject { ["ok"] = true, ["confinement"] = new JsonArray(confinement.Select(c => (JsonNode)c!).ToArray()) });

        TorchScriptModel? model = null;
        try
        {
            while (SandboxFrames.ReadHeader(input, SandboxFrames.MaxTensorBytes) is var (request, payloadLength))
            {
                JsonObject reply;
                try
                {
                    reply = Handle(request, payloadLength, input, buffered, ref model);
                }
                catch (SandboxProtocolException)
                {
                    throw;
                }
                catch (Exception e)
                {
                    reply = Describe(e);
                }
                Reply(buffered, reply);
            }
            return 0;
        }
        catch (SandboxProtocolException e)
        {
            Console.Error.WriteLine($"cloudsoup-sandbox: {e.Message}");
            return 2;
        }
        finally
        {
            model?.Dispose();
        }
    }

    private static JsonObject Handle(JsonObject request, long payloadLength, Stream input, Stream output, ref TorchScriptModel? model)
    {
        string op = SandboxFrames.String(request, "op", 32) ?? throw new SandboxProtocolException("a request without an op");
        if (op == "load")
        {
            var bytes = new byte[payloadLength];
            input.ReadExactly(bytes);
            model?.Dispose();
            model = TorchScriptModel.Load(bytes, SandboxFrames.String(request, "name") ?? "the evaluation model");
            return Ok();
        }
        if (payloadLength != 0) throw new SandboxProtocolException($"an unexpected payload with '{op}'");
        var tensors = SandboxFrames.ReadTensors(input, request);
        try
        {
            if (model is null) throw new SandboxProtocolException($"'{op}' before 'load'");
            using var scope = torch.NewDisposeScope();
            switch (op)
            {
                case "weights":
                    model.LoadWeights(tensors, SandboxFrames.String(request, "source") ?? "weights");
                    return Ok();
                case "forward":
                {
                    using var _ = torch.no_grad();
                    var logits = model.Forward(Single(tensors, "inputs"));
                    SandboxFrames.WriteTensors(output, Ok(), [new("logits", logits)]);
                    return Streamed;
                }
                case "reset_bn":
                {
                    var inputs = Single(tensors, "inputs");
                    using var data = new EvalData(inputs.alias(), torch.zeros(inputs.shape[0], torch.ScalarType.Int64), "the reset batch");
                    var fresh = model.ResetBatchNorm(data, (int)inputs.shape[0], (int)inputs.shape[0]);
                    var reply = Ok();
                    reply["method"] = model.BatchNormResetMethod;
                    if (fresh is null) return reply;
                    SandboxFrames.WriteTensors(output, reply, fresh);
                    return Streamed;
                }
                case "fisher":
                {
                    var labelsName = SandboxFrames.String(request, "labels", 16) ?? "sampled";
                    var options = new FisherOptions(Enum.Parse<FisherLabels>(labelsName, ignoreCase: true),
                        SandboxFrames.Int(request, "samples", 1, int.MaxValue), request["seed"]?.GetValue<long>() ?? 0);
                    using var data = new EvalData(Single(tensors, "inputs").alias(), tensors["labels"].alias(), SandboxFrames.String(request, "data") ?? "the evaluation data");
                    var progress = new ProgressRelay<JobProgress>(p => Reply(output, new JsonObject { ["progress"] = p.Fraction, ["detail"] = p.Detail }));
                    var fisher = model.ParameterFisher(data, options, progress, CancellationToken.None);
                    SandboxFrames.WriteTensors(output, Ok(), fisher);
                    foreach (var t in fisher.Values) t.Dispose();
                    return Streamed;
                }
                default:
                    throw new SandboxProtocolException($"an unknown op '{op}'");
            }
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>Marks a reply already written with its tensors.</summary>
    private static readonly JsonObject Streamed = new() { ["streamed"] = true };

    private static torch.Tensor Single(Dictionary<string, torch.Tensor> tensors, string name) =>
        tensors.TryGetValue(name, out var t) ? t : throw new SandboxProtocolException($"a request without the tensor '{name}'");

    private static JsonObject Ok() => new() { ["ok"] = true };

    private static JsonObject Failure(string error, string message, ErrorKind? kind = null)
    {
        var o = new JsonObject { ["ok"] = false, ["error"] = error, ["message"] = message };
        if (kind is { } k) o["kind"] = k.ToString();
        return o;
    }

    /// <summary>What went wrong, in the categories the worker reports: memory, the model's own error, or bad input.</summary>
    private static JsonObject Describe(Exception e) => e switch
    {
        CloudSoupException c => Failure("input", c.Message, c.Kind),
        OutOfMemoryException or InsufficientExecutionStackException => Failure("memory", e.Message),
        ExternalException x when IsAllocationFailure(x.Message) => Failure("memory", LastLine(x.Message)),
        ExternalException x => Failure("model", LastLine(x.Message)),
        _ => Failure("model", $"{e.GetType().Name}: {LastLine(e.Message)}"),
    };

    internal static bool IsAllocationFailure(string message) =>
        message.Contains("can't allocate memory", StringComparison.OrdinalIgnoreCase)
        || message.Contains("Cannot allocate memory", StringComparison.OrdinalIgnoreCase)
        || message.Contains("std::bad_alloc", StringComparison.Ordinal)
        || message.Contains("out of memory", StringComparison.OrdinalIgnoreCase);

    /// <summary>libtorch puts the TorchScript traceback first and the error itself last.</summary>
    private static string LastLine(string message) =>
        message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault(l => !l.StartsWith("Exception raised from", StringComparison.Ordinal)) ?? "";

    private static void Reply(Stream output, JsonObject reply)
    {
        if (ReferenceEquals(reply, Streamed)) { output.Flush(); return; }
        SandboxFrames.Write(output, reply);
        output.Flush();
    }

    private static bool TryParseArguments(string[] args, out ulong memory, out SandboxConfinement mode, out int threads)
    {
        memory = 0;
        mode = SandboxConfinement.Strict;
        threads = 0;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--memory" when ulong.TryParse(args[i + 1], out memory): break;
                case "--confine" when SandboxSettings.TryParseConfinement(args[i + 1], out mode): break;
                case "--threads" when int.TryParse(args[i + 1], out threads): break;
                default: return false;
            }
        }
        return args.Length % 2 == 0 && memory > 0;
    }
}
