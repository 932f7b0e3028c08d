// L1Norms (Merging/L1Norms.cs), the one order every path sums the L1 rescale's norms in, against that order written
// out element by element: Row alone and RowPair with a byte or a bit mask, for widths below, at and past a vector.
using CloudSoup.Engine.Merging;

namespace CloudSoup.Tests.Merging;

public class L1NormsTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(13)]
    [InlineData(1_031)]
    public unsafe void A_rows_sums_are_the_lanes_of_column_mod_8_then_the_rest_in_order(int width)
    {
        var random = new Random(width);
        // Magnitudes from 2^-40 to 1: more bits than a double holds, so the order of the additions shows in the sums.
        var v = Enumerable.Range(0, width).Select(_ => (float)((random.NextDouble() - 0.5) * Math.Pow(2, random.Next(-40, 1)))).ToArray();
        var keep = Enumerable.Range(0, width).Select(_ => (byte)random.Next(2)).ToArray();
        var bits = new byte[KeepBits.Bytes(width + 3)];
        for (int j = 0; j < width; j++) bits[(j + 3) / 8] |= (byte)(keep[j] << ((j + 3) % 8));   // from bit 3: a row that starts mid-byte
        double all = Lanes(v.Select(MathF.Abs)), kept = Lanes(v.Select((x, j) => MathF.Abs(x * keep[j])));
        fixed (float* pv = v)
        fixed (byte* pk = keep, pb = bits)
        {
            Assert.Equal(all, L1Norms.Row(new L1Norms.Magnitudes(pv), width));
            Assert.Equal((all, kept), L1Norms.RowPair(new L1Norms.Magnitudes(pv), new L1Norms.ByteMask(pk), width));
            Assert.Equal((all, kept), L1Norms.RowPair(new L1Norms.Magnitudes(pv), new L1Norms.BitMask(pb, 3), width));
        }
    }

    /// <summary>L1Norms' order, element by element: lanes of column mod 8 over whole eights, then the rest in order.</summary>
    internal static double Lanes(IEnumerable<float> values)
    {
        var v = values.ToArray();
        var lanes = new double[8];
        int whole = v.Length - v.Length % 8, j = 0;
        for (; j < whole; j++) lanes[j % 8] += v[j];
        double tail = 0;
        for (; j < v.Length; j++) tail += v[j];
        return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7] + tail;
    }
}
