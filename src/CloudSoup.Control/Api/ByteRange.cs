// The Range request header for one range of bytes (RFC 9110, section 14: https://www.rfc-editor.org/rfc/rfc9110#section-14).
// Served: "bytes=a-b", "bytes=a-" and "bytes=-n". A server may ignore a Range header (section 14.2), so a header that
// does not parse, names another unit or asks for several ranges is answered with the whole file (200); a valid range
// that starts past the end is unsatisfiable (416 with "Content-Range: bytes */size").
using System.Globalization;

namespace CloudSoup.Control.Api;

/// <summary>What a Range header asks of a file of a given size.</summary>
public readonly record struct ByteRange(ByteRangeKind Kind, long Start, long Length)
{
    /// <summary>Longer headers are not interpreted (the whole file is served): one range never needs more.</summary>
    public const int MaxHeaderLength = 100;

    public static ByteRange Whole(long size) => new(ByteRangeKind.Whole, 0, size);

    public long End => Start + Length - 1;

    /// <summary>The Content-Range value of a partial answer: "bytes start-end/size".</summary>
    public string ContentRange(long size) => string.Create(CultureInfo.InvariantCulture, $"bytes {Start}-{End}/{size}");

    public static string Unsatisfied(long size) => string.Create(CultureInfo.InvariantCulture, $"bytes */{size}");

    public static ByteRange Parse(string? header, long size)
    {
        if (string.IsNullOrEmpty(header) || header.Length > MaxHeaderLength) return Whole(size);
        string value = header.Trim();
        const string unit = "bytes=";
        if (!value.StartsWith(unit, StringComparison.OrdinalIgnoreCase)) return Whole(size);
        string spec = value[unit.Length..].Trim();
        int dash = spec.IndexOf('-');
        if (dash < 0 || spec.Contains(',')) return Whole(size);
        string first = spec[..dash].Trim(), last = spec[(dash + 1)..].Trim();
        if (first.Length == 0)
        {
            // Suffix range: the last n bytes (all of them when n exceeds the size); n = 0 asks for nothing.
            if (!TryNumber(last, out long n)) return Whole(size);
            if (n == 0 || size == 0) return new ByteRange(ByteRangeKind.Unsatisfiable, 0, 0);
            long take = Math.Min(n, size);
            return new ByteRange(ByteRangeKind.Partial, size - take, take);
        }
        if (!TryNumber(first, out long start)) return Whole(size);
        long end = size - 1;
        if (last.Length > 0)
        {
            if (!TryNumber(last, out long lastPos) || lastPos < start) return Whole(size);
            end = Math.Min(lastPos, size - 1);
        }
        if (start >= size) return new ByteRange(ByteRangeKind.Unsatisfiable, 0, 0);
        return new ByteRange(ByteRangeKind.Partial, start, end - start + 1);
    }

    private static bool TryNumber(string s, out long value)
    {
        value = 0;
        return s.Length is > 0 and <= 19 && s.All(char.IsAsciiDigit) && long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }
}
