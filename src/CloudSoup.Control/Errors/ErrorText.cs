// Errors are one line for people (README, "Commands"; docs/contracts.md), and hostile input must never reach a log,
// a terminal or a job record as raw bytes. Every CloudSoupException message and field passes through here: control
// and formatting characters (newlines, ANSI escapes, bidirectional overrides, lone surrogates) become visible
// escapes, and over-long text is cut, so a recipe value echoed in an error is always one bounded, printable line.
using System.Globalization;
using System.Text;

namespace CloudSoup.Control.Errors;

public static class ErrorText
{
    /// <summary>The longest error message kept (a job record's error, a problem+json detail, a CLI line).</summary>
    public const int MaxMessageChars = 2000;

    /// <summary>The longest name of one recipe key shown in a field path.</summary>
    public const int MaxKeyChars = 64;

    /// <summary><paramref name="text"/> as one printable line of at most <paramref name="maxChars"/> characters.</summary>
    public static string OneLine(string text, int maxChars = MaxMessageChars)
    {
        if (IsPrintableLine(text) && text.Length <= maxChars) return text;
        var sb = new StringBuilder(Math.Min(text.Length, maxChars) + 8);
        int i = 0;
        for (; i < text.Length && sb.Length < maxChars; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                sb.Append(c).Append(text[++i]);
                continue;
            }
            switch (c)
            {
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (IsUnsafe(c)) sb.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        if (i < text.Length || sb.Length > maxChars)
        {
            sb.Length = Math.Min(sb.Length, maxChars - 1);
            if (sb.Length > 0 && char.IsHighSurrogate(sb[^1])) sb.Length--;
            sb.Append('…');
        }
        return sb.ToString();
    }

    /// <summary>A recipe key as it appears in a field path ("models[0].parameters.weight").</summary>
    public static string Field(string key) => OneLine(key, MaxKeyChars);

    private static bool IsPrintableLine(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            if (c is '\n' or '\r' or '\t' || IsUnsafe(c)) return false;
        }
        return true;
    }

    private static bool IsUnsafe(char c) => char.GetUnicodeCategory(c) is UnicodeCategory.Control or UnicodeCategory.Format
        or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator or UnicodeCategory.Surrogate
        or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;
}
