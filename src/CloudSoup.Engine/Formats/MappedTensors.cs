// Tensors over a memory-mapped local file instead of a copy of it. A read() copies every byte from the page cache
// into a freshly allocated tensor (a kernel copy plus a page fault per new 4 KiB page: most of a linear merge's
// time besides the arithmetic, bench/README.md "The engine at the speed of its inputs"); a mapping lets the merge
// read the page cache itself. The mapping is private (copy-on-write, PyTorch's torch.from_file with shared=False,
// https://pytorch.org/docs/stable/generated/torch.from_file.html): a method writing into its input changes its own
// copy, never the file. It is released when the tensor is disposed, so resident memory stays what the merge holds.
using System.Runtime.InteropServices;
using CloudSoup.Control.Tensors;
using TorchSharp;

namespace CloudSoup.Engine.Formats;

internal static class MappedTensors
{
    /// <summary>
    /// Tensor <paramref name="e"/> of the file behind <paramref name="file"/> as a view of a private mapping, or null
    /// when it cannot be mapped (not Linux, an offset that is not a multiple of the element size, an empty tensor, a
    /// failed mapping); the caller then reads it.
    /// </summary>
    public static torch.Tensor? TryMap(FileByteSource file, TensorEntry e)
    {
        if (file.MapPath is not { } path || e.ByteLength == 0) return null;
        int elementSize = DTypes.SizeOf(e.DType);
        if (e.Offset % elementSize != 0) return null;   // the mapping is an array of elements: the start must be one
        try
        {
            using var scope = torch.NewDisposeScope();
            // The file's first Offset + ByteLength bytes as elements of the tensor's dtype (pages are only touched, and
            // resident, when used), then the tensor's own elements.
            long elements = e.ByteLength / elementSize;
            var all = torch.from_file(path, shared: false, size: (e.Offset + e.ByteLength) / elementSize, dtype: TorchDTypes.ToScalarType(e.DType));
            var tensor = all.narrow(0, e.Offset / elementSize, elements).reshape(e.Shape);
            // Detached: the caller owns it, and a dispose scope of whichever thread this runs on must not claim it.
            return tensor.MoveToOuterDisposeScope().DetachFromDisposeScope();
        }
        catch (Exception ex) when (ex is ExternalException or InvalidOperationException or ArgumentException)
        {
            return null;
        }
    }
}
