using CloudSoup.Engine.Reports;

namespace CloudSoup.Tests.Reports;

public class ByteCountTests
{
    [Theory]
    [InlineData(0, "0 B")]
    [InlineData(999, "999 B")]
    [InlineData(1000, "1.00 kB")]
    [InlineData(407080, "407 kB")]
    [InlineData(999_499, "999 kB")]
    [InlineData(999_999, "1.00 MB")]
    [InlineData(2_442_480, "2.44 MB")]
    [InlineData(18_600_000, "18.6 MB")]
    [InlineData(123_456_789, "123 MB")]
    [InlineData(5_000_000_000, "5.00 GB")]
    [InlineData(8L << 30, "8.59 GB")]
    [InlineData(long.MaxValue, "9.22 EB")]
    public void Counts_read_in_decimal_units_with_three_digits(long bytes, string expected) => Assert.Equal(expected, ByteCount.Human(bytes));

    [Fact]
    public void Html_keeps_the_exact_count_as_a_tooltip() =>
        Assert.Equal("<span class=\"bytes\" title=\"123,456,789 bytes\">123 MB</span>", ByteCount.Html(123_456_789));
}
