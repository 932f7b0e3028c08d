using TorchSharp;

namespace CloudSoup.Engine.Formats;

/// <summary>Writes whole state dicts as one safetensors file (demo data, fixtures, small outputs).</summary>
public static class SafetensorsWriter
{
    /// <summary>Writes to <c>path.partial</c> and renames, so a failure never leaves a half-written file at <paramref name="path"/>.</summary>
    public static void WriteFile(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        string tmp = path + ".partial";
        try
        {
            using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write)) Write(f, tensors, metadata);
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }

    public static byte[] ToBytes(IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var m = new MemoryStream();
        Write(m, tensors, metadata);
        return m.ToArray();
    }

    private static void Write(Stream f, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var list = tensors.Select(kv => (kv.Key, Tensor: kv.Value.cpu().contiguous())).ToList();
        var header = SafetensorsLayout.BuildHeader(list.Select(t => new OutputTensor(t.Key, TorchDTypes.FromScalarType(t.Tensor.dtype), t.Tensor.shape)).ToList(), metadata);
        f.Write(header);
        foreach (var (_, t) in list)
            if (t.NumberOfElements > 0) f.Write(t.bytes);
    }
}
