// An evaluation model loaded from TorchScript (any architecture PyTorch can script or trace). Its
// parameters and buffers are overwritten in place, by name, with the checkpoint under test.
using CloudSoup.Core.Errors;
using CloudSoup.Core.Storage;
using TorchSharp;

namespace CloudSoup.Core.Evaluation;

public sealed class TorchScriptModel : IEvalModel
{
    private const long MaxModuleBytes = 2L << 30;
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

    public static async Task<TorchScriptModel> LoadAsync(ICheckpointStore store, string reference, CancellationToken ct)
    {
        var bytes = await store.ReadAllAsync(reference, MaxModuleBytes, ct).ConfigureAwait(false);
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

    public void Dispose() => _module.Dispose();

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();
}
