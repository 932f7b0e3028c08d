// Unmanaged scratch memory that lives as long as one merge of one tensor (e.g. the byte keep-masks of the fused
// task-vector kernel): freed together on Dispose, whatever path the merge leaves by.
using System.Runtime.InteropServices;

namespace CloudSoup.Engine.Merging;

internal sealed unsafe class NativeBuffers : IDisposable
{
    private readonly List<nint> _buffers = [];

    /// <summary>An uninitialized buffer of <paramref name="bytes"/> bytes, freed with this object.</summary>
    public nint Allocate(long bytes)
    {
        var p = (nint)NativeMemory.Alloc((nuint)Math.Max(1, bytes));
        _buffers.Add(p);
        return p;
    }

    public void Dispose()
    {
        foreach (var p in _buffers) NativeMemory.Free((void*)p);
        _buffers.Clear();
    }
}
