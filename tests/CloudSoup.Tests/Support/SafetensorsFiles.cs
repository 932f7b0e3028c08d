using CloudSoup.Engine.Formats;
using TorchSharp;

namespace CloudSoup.Tests.Support;

/// <summary>Writes safetensors test files from TorchSharp tensors, byte for byte per the format spec.</summary>
public static class SafetensorsFiles
{
    public static void Write(string path, IReadOnlyDictionary<string, torch.Tensor> tensors)
    {
        var order = tensors.Keys.ToList();
        var outs = order.Select(n => new OutputTensor(n, TorchDTypes.FromScalarType(tensors[n].dtype), tensors[n].shape)).ToList();
        var header = SafetensorsLayout.BuildHeader(outs, null);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var f = File.Create(path);
        f.Write(header);
        foreach (var n in order) f.Write(tensors[n].contiguous().bytes);
    }

    public static Dictionary<string, torch.Tensor> Read(string path)
    {
        var store = new CloudSoup.Engine.Storage.LocalCheckpointStore(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var _ = new Disposer();
        var ckpt = Checkpoint.OpenAsync(store, Path.GetFullPath(path), CancellationToken.None).GetAwaiter().GetResult();
        try
        {
            return ckpt.TensorNames.ToDictionary(n => n, n => ckpt.ReadTensorAsync(n, CancellationToken.None).GetAwaiter().GetResult());
        }
        finally { ckpt.DisposeAsync().AsTask().GetAwaiter().GetResult(); }
    }

    private sealed class Disposer : IDisposable { public void Dispose() { } }
}

public sealed class TempDir : IDisposable
{
    public TempDir() { Path = Directory.CreateTempSubdirectory("cloudsoup-test-").FullName; }
    public string Path { get; }
    public string this[string relative] => System.IO.Path.Combine(Path, relative);
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}
