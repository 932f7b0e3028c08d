// The safetensors wire format (https://github.com/huggingface/safetensors, README "Format"):
//   8 bytes  little-endian u64 N = header size
//   N bytes  UTF-8 JSON object: { "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//                                 "__metadata__": {"k": "v"} (optional, string values only) }
//   rest     the byte buffer; offsets are relative to its start.
// Everything here is validated before a single tensor byte is read: the header is untrusted input.
using System.Text;
using System.Text.Json;
using CloudSoup.Control.Errors;

namespace CloudSoup.Engine.Formats;

/// <summary>One tensor's place in a safetensors file. <see cref="Offset"/> is absolute within the file.</summary>
public sealed record TensorEntry(string Name, DType DType, long[] Shape, long Offset, long ByteLength)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

public sealed class SafetensorsHeader
{
    /// <summary>Headers above this size are refused (the reference implementation uses the same cap).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private SafetensorsHeader(IReadOnlyList<TensorEntry> tensors, IReadOnlyDictionary<string, string> metadata, long dataStart)
    {
        Tensors = tensors;
        Metadata = metadata;
        DataStart = dataStart;
    }

    /// <summary>Tensors in file order (by offset).</summary>
    public IReadOnlyList<TensorEntry> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public long DataStart { get; }

    /// <summary>Reads and validates the header of <paramref name="source"/>: two small reads, no tensor data.</summary>
    public static async Task<SafetensorsHeader> ReadAsync(IByteSource source, CancellationToken ct)
    {
        if (source.Length < 8)
            throw CloudSoupException.Checkpoint(source.Name, $"not a safetensors file: {source.Length} bytes is too short for the 8-byte header length");
        var lenBytes = new byte[8];
        await source.ReadAsync(0, lenBytes, ct).ConfigureAwait(false);
        ulong n = BitConverter.ToUInt64(lenBytes);
        // The first 8 bytes of whatever blob this is: described, never quoted (as text or as the number they decode to).
        if (n == 0 || n > (ulong)MaxHeaderBytes)
            throw CloudSoupException.Checkpoint(source.Name, $"not a safetensors file: its first 8 bytes are not a header length in 1..{MaxHeaderBytes}");
        if ((long)n > source.Length - 8)
            throw CloudSoupException.Checkpoint(source.Name, $"truncated: the header length is more than the {source.Length - 8} bytes after the length field");
        var json = new byte[(int)n];
        await source.ReadAsync(8, json, ct).ConfigureAwait(false);
        return Parse(source.Name, json, source.Length);
    }

    /// <summary>Parses header JSON for a file of <paramref name="fileLength"/> bytes.</summary>
    public static SafetensorsHeader Parse(string sourceName, ReadOnlySpan<byte> json, long fileLength)
    {
        long dataStart = 8 + json.Length;
        long dataLength = fileLength - dataStart;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            // JsonException's message quotes the offending character; say where instead.
            throw CloudSoupException.Checkpoint(sourceName, $"header is not valid JSON (at byte {8 + (e.BytePositionInLine ?? 0)})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw CloudSoupException.Checkpoint(sourceName, "header is not a JSON object");
            var tensors = new List<TensorEntry>();
            var metadata = new Dictionary<string, string>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name))
                    throw CloudSoupException.Checkpoint(sourceName, $"header names {SafeText.Name(prop.Name)} twice");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw CloudSoupException.Checkpoint(sourceName, "__metadata__ must be an object of strings");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw CloudSoupException.Checkpoint(sourceName, $"__metadata__ value {SafeText.Name(m.Name)} is not a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                tensors.Add(ParseEntry(sourceName, prop.Name, prop.Value, dataStart, dataLength));
            }
            tensors.Sort((a, b) => a.Offset.CompareTo(b.Offset));
            for (int i = 1; i < tensors.Count; i++)
            {
                var prev = tensors[i - 1];
                if (tensors[i].Offset < prev.Offset + prev.ByteLength)
                    throw CloudSoupException.Checkpoint(sourceName, $"tensors {SafeText.Name(prev.Name)} and {SafeText.Name(tensors[i].Name)} overlap in the data buffer");
            }
            return new SafetensorsHeader(tensors, metadata, dataStart);
        }
    }

    private static TensorEntry ParseEntry(string src, string name, JsonElement e, long dataStart, long dataLength)
    {
        string where = $"tensor {SafeText.Name(name)}";
        if (e.ValueKind != JsonValueKind.Object)
            throw CloudSoupException.Checkpoint(src, $"{where}: entry is not an object");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw CloudSoupException.Checkpoint(src, $"{where}: missing dtype");
        if (!DTypes.TryParseHeader(dt.GetString()!, out var dtype))
            throw CloudSoupException.Checkpoint(src, $"{where}: unsupported dtype {SafeText.Name(dt.GetString() ?? "")} (supported: {string.Join(", ", Enum.GetNames<DType>())})");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw CloudSoupException.Checkpoint(src, $"{where}: missing shape");
        var shape = new long[sh.GetArrayLength()];
        if (shape.Length > 16) throw CloudSoupException.Checkpoint(src, $"{where}: {shape.Length} dimensions is more than CloudSoup accepts (16)");
        long numel = 1;
        int k = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0)
                throw CloudSoupException.Checkpoint(src, $"{where}: shape entries must be non-negative integers");
            shape[k++] = v;
            try { numel = checked(numel * v); }
            catch (OverflowException) { throw CloudSoupException.Checkpoint(src, $"{where}: shape {Fmt(shape)} overflows"); }
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw CloudSoupException.Checkpoint(src, $"{where}: data_offsets must be [begin, end]");
        if (!off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw CloudSoupException.Checkpoint(src, $"{where}: data_offsets must be non-negative with begin <= end");
        if (end > dataLength)
            throw CloudSoupException.Checkpoint(src, $"{where}: data_offsets [{begin}, {end}] fall outside the {dataLength}-byte data buffer (file truncated?)");
        long expected;
        try { expected = checked(numel * DTypes.SizeOf(dtype)); }
        catch (OverflowException) { throw CloudSoupException.Checkpoint(src, $"{where}: size overflows"); }
        if (end - begin != expected)
            throw CloudSoupException.Checkpoint(src, $"{where}: {dtype} {Fmt(shape)} needs {expected} bytes but data_offsets span {end - begin}");
        return new TensorEntry(name, dtype, shape, dataStart + begin, expected);
    }

    internal static string Fmt(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
