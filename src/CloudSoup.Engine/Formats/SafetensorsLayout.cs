// Plans and serialises safetensors output: which tensors go into which shard, the header bytes of each
// shard, and the HF index (model.safetensors.index.json). Because every output tensor's dtype and shape
// are known before merging starts, headers are computed up front and shards are written front to back.
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CloudSoup.Engine.Formats;

public sealed record OutputTensor(string Name, DType DType, long[] Shape)
{
    public long ByteLength => Shape.Aggregate(1L, (a, b) => a * b) * DTypes.SizeOf(DType);
}

public sealed class ShardPlan
{
    public required string FileName { get; init; }
    public required IReadOnlyList<OutputTensor> Tensors { get; init; }
    public required byte[] Header { get; init; }   // length prefix + JSON (8-byte aligned)
    public long DataLength => Tensors.Sum(t => t.ByteLength);
    public long TotalLength => Header.Length + DataLength;
}

public static class SafetensorsLayout
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    /// <summary>
    /// Splits tensors (in the given order) into shards of at most <paramref name="maxShardBytes"/> data
    /// bytes; a tensor larger than the limit gets a shard of its own. One shard is named model.safetensors,
    /// several follow the HF convention model-0000k-of-0000N.safetensors.
    /// </summary>
    public static IReadOnlyList<ShardPlan> Plan(IReadOnlyList<OutputTensor> tensors, long maxShardBytes,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var groups = new List<List<OutputTensor>>();
        var current = new List<OutputTensor>();
        long size = 0;
        foreach (var t in tensors)
        {
            if (current.Count > 0 && size + t.ByteLength > maxShardBytes)
            {
                groups.Add(current);
                current = new List<OutputTensor>();
                size = 0;
            }
            current.Add(t);
            size += t.ByteLength;
        }
        if (current.Count > 0 || groups.Count == 0) groups.Add(current);
        int n = groups.Count;
        return groups.Select((g, i) => new ShardPlan
        {
            FileName = n == 1 ? SingleFileName : $"model-{i + 1:D5}-of-{n:D5}.safetensors",
            Tensors = g,
            Header = BuildHeader(g, metadata),
        }).ToList();
    }

    public static byte[] BuildHeader(IReadOnlyList<OutputTensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var root = new JsonObject();
        var meta = new JsonObject { ["format"] = "pt" };
        if (metadata != null) foreach (var (k, v) in metadata) meta[k] = v;
        root["__metadata__"] = meta;
        long offset = 0;
        foreach (var t in tensors)
        {
            root[t.Name] = new JsonObject
            {
                ["dtype"] = t.DType.ToString(),
                ["shape"] = new JsonArray(t.Shape.Select(s => (JsonNode)s).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + t.ByteLength),
            };
            offset += t.ByteLength;
        }
        var json = Encoding.UTF8.GetBytes(root.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;   // keep the data buffer 8-byte aligned
        var bytes = new byte[8 + padded];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), (ulong)padded);
        json.CopyTo(bytes, 8);
        bytes.AsSpan(8 + json.Length).Fill((byte)' ');
        return bytes;
    }

    public static byte[] BuildIndex(IReadOnlyList<ShardPlan> shards)
    {
        var weightMap = new JsonObject();
        foreach (var s in shards)
            foreach (var t in s.Tensors) weightMap[t.Name] = s.FileName;
        var root = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = shards.Sum(s => s.DataLength), ["producer"] = "cloudsoup" },
            ["weight_map"] = weightMap,
        };
        return Encoding.UTF8.GetBytes(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
