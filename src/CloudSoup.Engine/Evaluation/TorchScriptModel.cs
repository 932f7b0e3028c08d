// An evaluation model loaded from TorchScript (any architecture PyTorch can script or trace). Its
// parameters and buffers are overwritten in place, by name, with the checkpoint under test.
// A TorchScript module is code: this class runs only inside the sandbox process (Sandbox/SandboxServer.cs,
// docs/sandbox.md); jobs and commands reach it through SandboxedModel.
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Jobs;
using TorchSharp;

namespace CloudSoup.Engine.Evaluation;

public sealed class TorchScriptModel : IEvalModel
{
    private readonly torch.jit.ScriptModule<torch.Tensor, torch.Tensor> _module;
    private readonly Dictionary<string, torch.Tensor> _state;

    private TorchScriptModel(string name, torch.jit.ScriptModule<torch.Tensor, torch.Tensor> module)
    {
        Name = name;
        _module = module;
        _module.eval();
        _state = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        foreach (var (n, p) in module.named_parameters()) _state[n] = p;
        foreach (var (n, b) in module.named_buffers()) _state[n] = b;
    }

    public string Name { get; }

    public static TorchScriptModel Load(byte[] bytes, string reference)
    {
        torch.InitializeDeviceType(DeviceType.CPU);
        try
        {
            return new TorchScriptModel(reference, torch.jit.load<torch.Tensor, torch.Tensor>(bytes, DeviceType.CPU));
        }
        catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or InvalidOperationException or ArgumentException)
        {
            throw new CloudSoupException(ErrorKind.InvalidCheckpoint, $"{reference}: not a loadable TorchScript module ({FirstLine(e.Message)})");
        }
    }

    public void LoadWeights(IReadOnlyDictionary<string, torch.Tensor> weights, string source)
    {
        // Integer buffers such as BatchNorm's num_batches_tracked may be absent from a checkpoint.
        Evaluator.CheckSameNames(Name, _state.Where(kv => kv.Value.is_floating_point() || weights.ContainsKey(kv.Key)).Select(kv => kv.Key), weights, source);
        using var _ = torch.no_grad();
        foreach (var (name, target) in _state)
            if (weights.TryGetValue(name, out var w)) Evaluator.CopyInto(Name, target, w, name, source);
    }

    public torch.Tensor Forward(torch.Tensor inputs) => _module.call(inputs);

    public IReadOnlyDictionary<string, torch.Tensor> Parameters =>
        _module.named_parameters().ToDictionary(p => p.name, p => (torch.Tensor)p.parameter, StringComparer.Ordinal);

    public Dictionary<string, torch.Tensor> ParameterFisher(EvalData data, FisherOptions options, IProgress<JobProgress>? progress, CancellationToken ct) =>
        FisherEstimator.OverParameters(this, Parameters, data, options, progress, ct);

    /// <summary>Train-mode passes over one fixed batch: the EMA (momentum m) closes (1 − m)^passes of the gap per pass.</summary>
    public const int BatchNormPasses = 200;

    public static readonly string ResetMethod = $"running-average convergence: {BatchNormPasses} train-mode passes over one batch of the data";

    public string BatchNormResetMethod => ResetMethod;

    /// <summary>
    /// TorchScript fixes BatchNorm's momentum inside the module, so the statistics cannot be accumulated exactly
    /// from outside. Instead: reset them (mean 0, var 1), then run the module in train mode, without gradients,
    /// over one fixed batch (the first maxExamples examples) many times. In train mode each BatchNorm normalises
    /// with the batch's own statistics, so its input does not depend on the running values, and the running
    /// values converge geometrically to that batch's statistics ((1 − 0.1)^200 ≈ 7e-10 of the gap remains at
    /// PyTorch's default momentum). Layers are reset at once: a later layer's input depends only on earlier
    /// layers' batch statistics in train mode, which are the same every pass. Dropout, if any, is active during
    /// these passes.
    /// </summary>
    public IReadOnlyDictionary<string, torch.Tensor>? ResetBatchNorm(EvalData data, int maxExamples, int batchSize)
    {
        var means = _state.Keys.Where(k => k.EndsWith(".running_mean", StringComparison.Ordinal)).ToList();
        if (means.Count == 0) return null;
        using var _ = torch.no_grad();
        foreach (var m in means)
        {
            string prefix = m[..^".running_mean".Length];
            _state[m].zero_();
            if (_state.TryGetValue(prefix + ".running_var", out var v)) v.fill_(1);
            if (_state.TryGetValue(prefix + ".num_batches_tracked", out var nb)) nb.zero_();
        }
        var batch = data.Inputs.narrow(0, 0, Math.Min(maxExamples, data.Count));
        _module.train();
        try
        {
            for (int pass = 0; pass < BatchNormPasses; pass++)
                using (var scope = torch.NewDisposeScope()) _module.call(batch);
        }
        finally
        {
            _module.eval();
        }
        var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        foreach (var m in means)
        {
            string prefix = m[..^".running_mean".Length];
            result[m] = _state[m].clone();
            if (_state.TryGetValue(prefix + ".running_var", out var v)) result[prefix + ".running_var"] = v.clone();
        }
        return result;
    }

    public void Dispose() => _module.Dispose();

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();
}
