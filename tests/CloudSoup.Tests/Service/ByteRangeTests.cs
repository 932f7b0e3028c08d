using CloudSoup.Control.Api;
using CloudSoup.Control.Jobs;

namespace CloudSoup.Tests.Service;

/// <summary>The Range header as the download route reads it (RFC 9110 §14), and the file names it accepts.</summary>
public class ByteRangeTests
{
    [Theory]
    [InlineData("bytes=0-9", 100, ByteRangeKind.Partial, 0, 10)]
    [InlineData("bytes=90-", 100, ByteRangeKind.Partial, 90, 10)]
    [InlineData("bytes=-10", 100, ByteRangeKind.Partial, 90, 10)]
    [InlineData("bytes=-1000", 100, ByteRangeKind.Partial, 0, 100)]
    [InlineData("bytes=50-5000", 100, ByteRangeKind.Partial, 50, 50)]
    [InlineData("BYTES = 1-1", 100, ByteRangeKind.Whole, 0, 100)]          // not the grammar: ignored
    [InlineData("Bytes=1-1", 100, ByteRangeKind.Partial, 1, 1)]            // the unit is case-insensitive
    [InlineData("bytes=100-", 100, ByteRangeKind.Unsatisfiable, 0, 0)]
    [InlineData("bytes=-0", 100, ByteRangeKind.Unsatisfiable, 0, 0)]
    [InlineData("bytes=0-", 0, ByteRangeKind.Unsatisfiable, 0, 0)]         // nothing to give from an empty file
    [InlineData(null, 100, ByteRangeKind.Whole, 0, 100)]
    [InlineData("bytes=0-1,4-5", 100, ByteRangeKind.Whole, 0, 100)]
    [InlineData("bytes=5-1", 100, ByteRangeKind.Whole, 0, 100)]
    [InlineData("bytes=-", 100, ByteRangeKind.Whole, 0, 100)]
    [InlineData("bytes=+1-2", 100, ByteRangeKind.Whole, 0, 100)]
    [InlineData("bytes=99999999999999999999-", 100, ByteRangeKind.Whole, 0, 100)]   // beyond a long: not a number we read
    [InlineData("lines=0-1", 100, ByteRangeKind.Whole, 0, 100)]
    public void Parse(string? header, long size, ByteRangeKind kind, long start, long length) =>
        Assert.Equal(new ByteRange(kind, start, length), ByteRange.Parse(header, size));

    [Fact]
    public void Content_range_values()
    {
        Assert.Equal("bytes 90-99/100", ByteRange.Parse("bytes=-10", 100).ContentRange(100));
        Assert.Equal("bytes */100", ByteRange.Unsatisfied(100));
    }

    [Theory]
    [InlineData("model.safetensors", true)]
    [InlineData("tokenizer/tokenizer.json", true)]
    [InlineData("model-00001-of-00002.safetensors", true)]
    [InlineData("..", false)]
    [InlineData("a/../b", false)]
    [InlineData("./a", false)]
    [InlineData("/a", false)]
    [InlineData("a/", false)]
    [InlineData("a\\b", false)]
    [InlineData("c:a", false)]
    [InlineData("a\u0000b", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void Safe_names(string? name, bool safe) => Assert.Equal(safe, JobFiles.IsSafeName(name));
}
