using System.Globalization;

namespace CloudSoup.Engine.Reports;

/// <summary>Byte counts for people: decimal units (1 kB = 1000 bytes, as ByteSize parses "k"), three significant digits, the exact count kept in report.json and in the HTML title.</summary>
public static class ByteCount
{
    private static readonly string[] Units = ["kB", "MB", "GB", "TB", "PB", "EB"];

    public static string Human(long bytes)
    {
        if (bytes < 1000) return bytes.ToString(CultureInfo.InvariantCulture) + " B";
        double v = bytes / 1000.0;
        int unit = 0;
        // Round to what is shown before choosing the unit, so 999,999 bytes reads "1.00 MB", not "1000 kB".
        while (unit < Units.Length - 1 && Shown(v) >= 1000) { v /= 1000; unit++; }
        string format = v >= 99.95 ? "0" : v >= 9.995 ? "0.0" : "0.00";
        return v.ToString(format, CultureInfo.InvariantCulture) + " " + Units[unit];
    }

    private static double Shown(double v) => Math.Round(v, v >= 99.95 ? 0 : v >= 9.995 ? 1 : 2);

    /// <summary>The exact count, thousands separated, as a tooltip.</summary>
    public static string Exact(long bytes) => bytes.ToString("N0", CultureInfo.InvariantCulture) + " bytes";

    /// <summary>&lt;span title="407,080 bytes"&gt;407 kB&lt;/span&gt;</summary>
    public static string Html(long bytes) => $"<span class=\"bytes\" title=\"{Exact(bytes)}\">{Human(bytes)}</span>";
}
