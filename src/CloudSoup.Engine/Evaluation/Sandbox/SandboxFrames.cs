// The wire format between the worker and its sandbox process, over the sandbox's stdin and a private copy of its
// stdout (docs/sandbox.md, "Protocol"). Every message is one frame:
//   u32 little-endian header length (1 .. 64 KiB) | the header, UTF-8 JSON object | u64 little-endian payload length | payload
// A tensor travels as one frame whose header is {"tensor": name, "dtype": "F32", "shape": [...]} and whose payload is
// its little-endian bytes; a message with tensors says how many follow ("tensors": N). Both sides treat what they read
// as untrusted: lengths, counts, dtypes and shapes are checked before anything is allocated, and the worker never
// puts bytes it received into an error message.
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudSoup.Engine.Formats;
using TorchSharp;

namespace CloudSoup.Engine.Evaluation.Sandbox;

/// <summary>The other side broke the protocol (or went away); the message describes how, never what it sent.</summary>
public sealed class SandboxProtocolException(string message) : Exception(message);

public static class SandboxFrames
{
    public const int MaxHeaderBytes = 64 << 10;
    /// <summary>Tensors above this are refused, as checkpoints refuse them (Checkpoint.ReadTensorAsync).</summary>
    public const long MaxTensorBytes = int.MaxValue;
    public const int MaxTensorsPerMessage = 1_000_000;
    private const int MaxDimensions = 16;

    public static void Write(Stream stream, JsonObject header, ReadOnlySpan<byte> payload = default)
    {
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        if (json.Length > MaxHeaderBytes) throw new SandboxProtocolException($"a frame header of {json.Length} bytes is over the {MaxHeaderBytes}-byte limit");
        Span<byte> prefix = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(prefix, (uint)json.Length);
        stream.Write(prefix);
        stream.Write(json);
        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)payload.Length);
        stream.Write(length);
        if (payload.Length > 0) stream.Write(payload);
    }

    /// <summary>Reads one frame's header; the payload (of the returned length) is next on the stream. Null at a clean end of stream.</summary>
    public static (JsonObject Header, long PayloadLength)? ReadHeader(Stream stream, long maxPayload)
    {
        Span<byte> prefix = stackalloc byte[4];
        int first = stream.ReadAtLeast(prefix, 4, throwOnEndOfStream: false);
        if (first == 0) return null;
        if (first < 4) throw new SandboxProtocolException("the stream ended inside a frame");
        uint n = BinaryPrimitives.ReadUInt32LittleEndian(prefix);
        if (n == 0 || n > MaxHeaderBytes) throw new SandboxProtocolException($"a frame header length outside 1..{MaxHeaderBytes}");
        var json = new byte[n];
        ReadExactly(stream, json);
        JsonObject header;
        try
        {
            header = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { MaxDepth = 8 }) as JsonObject
                ?? throw new SandboxProtocolException("a frame header that is not a JSON object");
        }
        catch (JsonException)
        {
            throw new SandboxProtocolException("a frame header that is not valid JSON");
        }
        Span<byte> length = stackalloc byte[8];
        ReadExactly(stream, length);
        ulong payload = BinaryPrimitives.ReadUInt64LittleEndian(length);
        if (payload > (ulong)maxPayload) throw new SandboxProtocolException($"a frame payload over the {maxPayload}-byte limit");
        return (header, (long)payload);
    }

    public static (JsonObject Header, byte[] Payload) Read(Stream stream, long maxPayload)
    {
        var (header, length) = ReadHeader(stream, maxPayload) ?? throw new SandboxProtocolException("the stream ended");
        var payload = new byte[length];
        ReadExactly(stream, payload);
        return (header, payload);
    }

    public static void WriteTensor(Stream stream, string name, torch.Tensor tensor)
    {
        using var t = tensor.cpu().contiguous();
        var header = new JsonObject
        {
            ["tensor"] = name,
            ["dtype"] = TorchDTypes.FromScalarType(t.dtype).ToString(),
            ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
        };
        Write(stream, header, t.NumberOfElements > 0 ? t.bytes : default);
    }

    /// <summary>Reads a tensor frame into a new tensor, after checking its dtype, shape and byte count agree.</summary>
    public static (string Name, torch.Tensor Tensor) ReadTensor(Stream stream)
    {
        var (header, length) = ReadHeader(stream, MaxTensorBytes) ?? throw new SandboxProtocolException("the stream ended before a tensor");
        if (header["tensor"] is not JsonValue nv || !nv.TryGetValue<string>(out var name) || name.Length is 0 or > 1024)
            throw new SandboxProtocolException("a tensor frame without a usable name");
        if (header["dtype"] is not JsonValue dv || !dv.TryGetValue<string>(out var dtypeName) || !Enum.TryParse<DType>(dtypeName, out var dtype) || !Enum.IsDefined(dtype))
            throw new SandboxProtocolException("a tensor frame with an unknown dtype");
        if (header["shape"] is not JsonArray shapeNode || shapeNode.Count > MaxDimensions)
            throw new SandboxProtocolException("a tensor frame without a usable shape");
        var shape = new long[shapeNode.Count];
        long elements = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shapeNode[i] is not JsonValue d || !d.TryGetValue<long>(out shape[i]) || shape[i] < 0)
                throw new SandboxProtocolException("a tensor frame with a negative or non-integer dimension");
            try { elements = checked(elements * shape[i]); }
            catch (OverflowException) { throw new SandboxProtocolException("a tensor frame whose shape overflows"); }
        }
        long bytes;
        try { bytes = checked(elements * DTypes.SizeOf(dtype)); }
        catch (OverflowException) { throw new SandboxProtocolException("a tensor frame whose size overflows"); }
        if (bytes != length) throw new SandboxProtocolException("a tensor frame whose payload does not match its dtype and shape");
        var tensor = torch.empty(shape, TorchDTypes.ToScalarType(dtype)).DetachFromDisposeScope();
        try
        {
            if (bytes > 0) ReadExactly(stream, tensor.bytes);
            return (name, tensor);
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    public static void WriteTensors(Stream stream, JsonObject header, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors)
    {
        var list = tensors.ToList();
        header["tensors"] = list.Count;
        Write(stream, header);
        foreach (var (name, t) in list) WriteTensor(stream, name, t);
    }

    /// <summary>Reads the tensors a header announced; names must be distinct.</summary>
    public static Dictionary<string, torch.Tensor> ReadTensors(Stream stream, JsonObject header)
    {
        int count = Int(header, "tensors", 0, MaxTensorsPerMessage);
        var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            for (int i = 0; i < count; i++)
            {
                var (name, t) = ReadTensor(stream);
                if (!result.TryAdd(name, t))
                {
                    t.Dispose();
                    throw new SandboxProtocolException("a message that names one tensor twice");
                }
            }
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    public static int Int(JsonObject header, string key, int min, int max) =>
        header[key] is JsonValue v && v.TryGetValue<int>(out int n) && n >= min && n <= max ? n
            : throw new SandboxProtocolException($"a frame whose '{key}' is not an integer in {min}..{max}");

    public static string? String(JsonObject header, string key, int maxLength = 4096) =>
        header[key] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<string>(out var s) && s.Length <= maxLength => s,
            _ => throw new SandboxProtocolException($"a frame whose '{key}' is not a string of at most {maxLength} characters"),
        };

    private static void ReadExactly(Stream stream, Span<byte> buffer)
    {
        if (stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false) < buffer.Length)
            throw new SandboxProtocolException("the stream ended inside a frame");
    }
}
