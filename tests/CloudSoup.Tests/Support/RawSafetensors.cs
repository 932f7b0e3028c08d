using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CloudSoup.Tests.Support;

/// <summary>
/// A test-side safetensors reader/writer that shares no code with CloudSoup, so merge results can be checked
/// against values computed here in float64. F16 uses System.Half; BF16 is the top 16 bits of an F32 with
/// round-to-nearest-even (what PyTorch does).
/// </summary>
public static class RawSafetensors
{
    public sealed record Tensor(string DType, long[] Shape, double[] Values);

    public static int SizeOf(string dtype) => dtype switch { "F64" => 8, "F32" => 4, "F16" or "BF16" => 2, _ => throw new ArgumentException(dtype) };

    /// <summary>The value <paramref name="v"/> becomes when stored as <paramref name="dtype"/>.</summary>
    public static double Round(double v, string dtype) => dtype switch
    {
        "F64" => v,
        "F32" => (float)v,
        "F16" => (double)(Half)(float)v,
        "BF16" => BFloat16ToDouble(DoubleToBFloat16(v)),
        _ => throw new ArgumentException(dtype),
    };

    private static ushort DoubleToBFloat16(double v)
    {
        uint bits = BitConverter.SingleToUInt32Bits((float)v);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    private static double BFloat16ToDouble(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);

    /// <summary>Random values in [-2, 2), already rounded to <paramref name="dtype"/>.</summary>
    public static Tensor Random(Random rng, string dtype, params long[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        return new Tensor(dtype, shape, Enumerable.Range(0, (int)n).Select(_ => Round(rng.NextDouble() * 4 - 2, dtype)).ToArray());
    }

    public static void Write(string path, IReadOnlyList<(string Name, Tensor T)> tensors)
    {
        var header = new JsonObject();
        long offset = 0;
        foreach (var (name, t) in tensors)
        {
            long len = t.Values.Length * SizeOf(t.DType);
            header[name] = new JsonObject
            {
                ["dtype"] = t.DType,
                ["shape"] = new JsonArray(t.Shape.Select(s => (JsonNode)s).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + len),
            };
            offset += len;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes((ulong)json.Length));
        f.Write(json);
        foreach (var (_, t) in tensors)
            foreach (var v in t.Values)
                f.Write(t.DType switch
                {
                    "F64" => BitConverter.GetBytes(v),
                    "F32" => BitConverter.GetBytes((float)v),
                    "F16" => BitConverter.GetBytes((Half)(float)v),
                    _ => BitConverter.GetBytes(DoubleToBFloat16(v)),
                });
    }

    public static Dictionary<string, Tensor> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long n = BitConverter.ToInt64(bytes, 0);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var result = new Dictionary<string, Tensor>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__") continue;
            string dtype = p.Value.GetProperty("dtype").GetString()!;
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            long begin = p.Value.GetProperty("data_offsets")[0].GetInt64() + 8 + n;
            long end = p.Value.GetProperty("data_offsets")[1].GetInt64() + 8 + n;
            int size = SizeOf(dtype);
            var values = new double[(end - begin) / size];
            for (int i = 0; i < values.Length; i++)
            {
                int at = (int)begin + i * size;
                values[i] = dtype switch
                {
                    "F64" => BitConverter.ToDouble(bytes, at),
                    "F32" => BitConverter.ToSingle(bytes, at),
                    "F16" => (double)BitConverter.ToHalf(bytes, at),
                    _ => BFloat16ToDouble(BitConverter.ToUInt16(bytes, at)),
                };
            }
            result[p.Name] = new Tensor(dtype, shape, values);
        }
        return result;
    }
}
