using CloudSoup.Control.Methods;
using TorchSharp;

namespace CloudSoup.Engine.Merging;

/// <summary>Deterministic per-tensor seeds, so a merge reproduces on any number of workers.</summary>
public static class Seeds
{
    public static long For(long recipeSeed, string tensorName, string? modelId = null)
    {
        // FNV-1a 64 over the seed and the names: stable across processes and platforms.
        ulong h = 14695981039346656037UL;
        void Mix(ReadOnlySpan<byte> bytes) { foreach (var b in bytes) { h ^= b; h *= 1099511628211UL; } }
        Mix(BitConverter.GetBytes(recipeSeed));
        Mix(System.Text.Encoding.UTF8.GetBytes(tensorName));
        if (modelId != null) { Mix([0]); Mix(System.Text.Encoding.UTF8.GetBytes(modelId)); }
        return (long)(h & 0x7FFF_FFFF_FFFF_FFFFUL);
    }
}
