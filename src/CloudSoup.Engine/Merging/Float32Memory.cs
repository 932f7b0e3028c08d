// The raw float32 memory of CPU tensors, for the C# kernels (FusedTaskVectors, FusedSce, MagnitudeCuts, RowRanks,
// TorchBernoulli): which tensors they may read as one flat array, where that array starts, and the one way they
// split a flat array into blocks for the cores.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;

namespace CloudSoup.Engine.Merging;

/// <summary>What a kernel saw in the output elements it wrote; blocks combine with |.</summary>
[Flags]
internal enum OutputSeen { Finite = 0, NonFinite = 1, Nan = 2 | NonFinite }

internal static unsafe class Float32Memory
{
    /// <summary>Elements per block of the kernels' parallel passes (also the unit of MagnitudeCuts.EqualBefore's counts).</summary>
    public const int Block = 1 << 16;

    /// <summary>A float32, contiguous CPU tensor: its elements are one flat array the kernels may read and write.</summary>
    public static bool IsFlat(torch.Tensor t) => t.dtype == torch.ScalarType.Float32 && t.device_type == DeviceType.CPU && t.is_contiguous();

    /// <summary>Where a tensor's elements start (valid while the tensor lives; the tensor must be <see cref="IsFlat"/> for float reads).</summary>
    public static float* Of(torch.Tensor t) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));

    /// <summary>Whether <see cref="BytesAsFloats"/> runs here: AVX2, and float vectors of its eight lanes.</summary>
    public static bool CanWidenBytes => Avx2.IsSupported && Vector<float>.Count == Vector256<float>.Count;

    /// <summary>The eight bytes at <paramref name="p"/> (a 0/1 mask) as a vector of eight floats; needs <see cref="CanWidenBytes"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector<float> BytesAsFloats(byte* p) => BytesAsVector256(p).AsVector();

    /// <summary>The eight bytes at <paramref name="p"/> (a 0/1 mask) as eight floats; needs AVX2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> BytesAsVector256(byte* p) => Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(p));

    /// <summary>Runs <paramref name="body"/>(start, end) for every block of [0, <paramref name="n"/>), on every core.</summary>
    public static void ForBlocks(long n, Action<long, long> body) =>
        Parallel.For(0L, (n + Block - 1) / Block, block => body(block * Block, Math.Min(n, (block + 1) * Block)));

    /// <summary>
    /// Gives back an output a kernel rented and will not return (it left the work to the tensor path): to
    /// <paramref name="buffers"/> when it came from there, else freed.
    /// </summary>
    public static void Abandon(torch.Tensor output, OutputBuffers? buffers)
    {
        output.DetachFromDisposeScope();
        if (buffers is not null) buffers.Abandon(output);
        else output.Dispose();
    }
}
