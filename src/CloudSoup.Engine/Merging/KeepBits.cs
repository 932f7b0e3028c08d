// The fused DARE and DELLA kernels' keep-masks, one bit per entry (TaskArithmeticFamily.MaskWindows): entry e of a
// window is bit e mod 8 of byte e / 8, 1 kept, 0 dropped. A byte per entry made N models' masks N bytes per entry, as
// much as a quarter of the output for every model (bench/README.md, "Seventh round"); bits take an eighth of that.
// Buffers carry a few bytes of padding past the last entry, so eight bits from any position are read with one
// unaligned 16-bit load.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CloudSoup.Engine.Merging;

internal static unsafe class KeepBits
{
    /// <summary>The bytes of a mask of <paramref name="entries"/> entries, padding included.</summary>
    public static long Bytes(long entries) => (entries + 7) / 8 + 8;

    /// <summary>Entry <paramref name="e"/>: 1 kept, 0 dropped.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int At(byte* bits, long e) => (bits[e >> 3] >> (int)(e & 7)) & 1;

    /// <summary>Entries e … e + 7 as eight floats, 1 or 0 (any e: the padding covers the second byte at the end).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Eight(byte* bits, long e)
    {
        int eight = (Unsafe.ReadUnaligned<ushort>(bits + (e >> 3)) >> (int)(e & 7)) & 0xFF;
        var set = Vector256.Equals(Vector256.Create(eight) & Vector256.Create(1, 2, 4, 8, 16, 32, 64, 128), Vector256<int>.Zero);
        return Vector256.ConditionalSelect(set.AsSingle(), Vector256<float>.Zero, Vector256<float>.One);
    }

    /// <summary>Eight bits as eight 0/1 bytes, bit i to byte i (needs BMI2, as every caller checks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong AsBytes(int eight) => Bmi2.X64.ParallelBitDeposit((ulong)eight, 0x0101010101010101);

    /// <summary>
    /// Writes <paramref name="count"/> 0/1 ints as the bits from entry 0 of <paramref name="bits"/> (a byte boundary);
    /// the bits past count in the last byte become 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void FromInts(int* keep, int count, byte* bits)
    {
        int j = 0;
        if (Avx2.IsSupported)
            for (; j + 8 <= count; j += 8)
                bits[j >> 3] = (byte)Vector256.ExtractMostSignificantBits(Vector256.Load(keep + j) << 31);
        for (; j < count; j += 8)
        {
            int eight = 0;
            for (int k = 0; k < 8 && j + k < count; k++) eight |= (keep[j + k] & 1) << k;
            bits[j >> 3] = (byte)eight;
        }
    }

    /// <summary>
    /// Writes <paramref name="count"/> 0/1 bytes as the bits from entry <paramref name="e"/> of <paramref name="bits"/>.
    /// The bits before e in its byte are kept (an earlier row's, written by the same thread); the bits past the last
    /// entry in its byte become 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void FromBytes(byte* keep, int count, byte* bits, long e)
    {
        int j = 0;
        if ((e & 7) == 0 && Avx2.IsSupported)
        {
            byte* into = bits + (e >> 3);
            for (; j + 32 <= count; j += 32)   // 32 bytes → 4 bytes of bits
                *(uint*)(into + (j >> 3)) = ~Vector256.ExtractMostSignificantBits(Vector256.Equals(Vector256.Load(keep + j), Vector256<byte>.Zero));
        }
        for (; j < count; j++)
        {
            long at = e + j;
            int shift = (int)(at & 7);
            byte* b = bits + (at >> 3);
            *b = (byte)((*b & ((1 << shift) - 1)) | ((keep[j] & 1) << shift));   // bits above this one are still to come, or 0
        }
    }
}
