// The fused kernels' bit masks (Merging/KeepBits.cs): written from ints on bytes, from bytes at any bit (rows that start
// mid-byte, one after another), and read back one or eight at a time from any bit.
using CloudSoup.Engine.Merging;

namespace CloudSoup.Tests.Merging;

public class KeepBitsTests
{
    [Fact]
    public unsafe void Rows_written_one_after_another_from_any_bit_read_back_as_written()
    {
        var random = new Random(17);
        foreach (int width in new[] { 1, 3, 8, 31, 32, 33, 64, 97, 1_031 })
        {
            const int rows = 9;
            var want = new byte[rows * width];
            for (int e = 0; e < want.Length; e++) want[e] = (byte)random.Next(2);
            var bits = new byte[KeepBits.Bytes(want.Length)];
            Array.Fill(bits, (byte)0xA5);   // pooled memory is dirty
            fixed (byte* w = want, into = bits)
            {
                for (int r = 0; r < rows; r++) KeepBits.FromBytes(w + r * width, width, into, (long)r * width);
                for (int e = 0; e < want.Length; e++)
                    Assert.True(KeepBits.At(into, e) == want[e], $"width {width}: entry {e}");
                for (int e = 0; e + 8 <= want.Length; e++)
                {
                    var eight = KeepBits.Eight(into, e);
                    for (int k = 0; k < 8; k++) Assert.True(eight[k] == want[e + k], $"width {width}: eight from {e}, lane {k}");
                }
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(621)]
    [InlineData(624)]
    public unsafe void Ints_become_the_bits_from_entry_zero_and_the_rest_of_the_last_byte_is_zero(int count)
    {
        var random = new Random(count);
        var keep = Enumerable.Range(0, count).Select(_ => random.Next(2)).ToArray();
        var bits = new byte[KeepBits.Bytes(count)];
        Array.Fill(bits, (byte)0xFF);
        fixed (int* k = keep) fixed (byte* into = bits)
        {
            KeepBits.FromInts(k, count, into);
            for (int e = 0; e < count; e++) Assert.Equal(keep[e], KeepBits.At(into, e));
            for (int e = count; e < (count + 7) / 8 * 8; e++) Assert.Equal(0, KeepBits.At(into, e));
        }
    }
}
