using TorchSharp;

namespace CloudSoup.Core.Formats;

/// <summary>Writes whole state dicts as one safetensors file (demo data, fixtures, small outputs).</summary>
public static class SafetensorsWriter
{
    public static void WriteFile(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.Select(kv => (kv.Key, Tensor: kv.Value.cpu().contiguous())).ToList();
        var header = SafetensorsLayout.BuildHeader(list.Select(t => new OutputTensor(t.Key, DTypes.FromScalarType(t.Tensor.dtype), t.Tensor.shape)).ToList(), metadata);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        string tmp = path + ".partial";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            f.Write(header);
            foreach (var (_, t) in list)
                if (t.NumberOfElements > 0) f.Write(t.bytes);
        }
        File.Move(tmp, path, overwrite: true);
    }
}
