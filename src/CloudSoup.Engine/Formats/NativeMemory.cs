// A Memory<byte> over unmanaged memory (a tensor's storage), so async readers and writers can use it
// without copying it into a managed array. The owner of the memory (the tensor) must outlive this view.
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CloudSoup.Engine.Formats;

internal sealed unsafe class NativeMemory : MemoryManager<byte>
{
    private readonly byte* _pointer;
    private readonly int _length;

    /// <summary>Wraps the memory <paramref name="span"/> points at; the span must be over native (unmoving) memory.</summary>
    public NativeMemory(Span<byte> span)
    {
        _pointer = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(span));
        _length = span.Length;
    }

    public override Span<byte> GetSpan() => new(_pointer, _length);

    public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

    public override void Unpin() { }

    protected override void Dispose(bool disposing) { }
}
