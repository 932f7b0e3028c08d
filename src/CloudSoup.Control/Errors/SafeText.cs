namespace CloudSoup.Control.Errors;

/// <summary>
/// Text that came from an input (a name inside a checkpoint, a message from a sandboxed model) on its way into an error
/// message: kept when it is short and plain, described otherwise, so an error never carries an input's raw bytes.
/// </summary>
public static class SafeText
{
    /// <summary>A name from inside a file, quoted, when it is a plausible identifier; otherwise a description of it.</summary>
    public static string Name(string name, int maxLength = 200) =>
        name.Length > 0 && name.Length <= maxLength && name.All(c => c is >= '!' and <= '~')
            ? $"'{name}'"
            : $"a name of {name.Length} characters that is not printable ASCII or too long to show";

    /// <summary>A line of free text, cut to <paramref name="maxLength"/> characters, with anything but printable ASCII replaced by '?'.</summary>
    public static string Line(string text, int maxLength = 300)
    {
        var chars = text.Take(maxLength).Select(c => c is >= ' ' and <= '~' ? c : '?').ToArray();
        return new string(chars) + (text.Length > maxLength ? "…" : "");
    }
}
