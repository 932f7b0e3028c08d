namespace CloudSoup.Control.Tensors;

/// <summary>Element types of the safetensors format (https://github.com/huggingface/safetensors, "dtype").</summary>
public enum DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL }

public static class DTypes
{
    public static int SizeOf(DType d) => d switch
    {
        DType.F64 or DType.I64 => 8,
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        _ => 1,
    };

    public static bool IsFloat(DType d) => d is DType.F64 or DType.F32 or DType.F16 or DType.BF16;

    /// <summary>Parses the safetensors header spelling ("F32", "BF16", ...).</summary>
    public static bool TryParseHeader(string s, out DType dtype) =>
        Enum.TryParse(s, ignoreCase: false, out dtype) && Enum.IsDefined(dtype);

    /// <summary>Parses a recipe spelling: mergekit's torch names ("float32", "bfloat16") or the header names.</summary>
    public static bool TryParseRecipe(string s, out DType dtype)
    {
        switch (s.Trim().ToLowerInvariant())
        {
            case "float32" or "fp32" or "f32" or "float": dtype = DType.F32; return true;
            case "float16" or "fp16" or "f16" or "half": dtype = DType.F16; return true;
            case "bfloat16" or "bf16": dtype = DType.BF16; return true;
            case "float64" or "fp64" or "f64" or "double": dtype = DType.F64; return true;
            default: dtype = default; return false;
        }
    }

    public static string RecipeName(DType d) => d switch
    {
        DType.F32 => "float32", DType.F16 => "float16", DType.BF16 => "bfloat16", DType.F64 => "float64",
        _ => d.ToString().ToLowerInvariant(),
    };
}
