namespace CloudSoup.Control.Recipes;

/// <summary>Byte sizes as recipes write them (output.shard_size, evaluation.memory_budget).</summary>
public static class ByteSize
{
    /// <summary>Parses a byte size: a plain number, or with a suffix (k/M/G/T as powers of 1000, KiB/MiB/GiB as 1024).</summary>
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        var s = text.Trim().Replace("_", "");
        int i = 0;
        while (i < s.Length && (char.IsDigit(s[i]) || s[i] == '.')) i++;
        if (i == 0 || !double.TryParse(s[..i], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double v)) return false;
        double mult = s[i..].Trim().ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "K" or "KB" => 1e3, "M" or "MB" => 1e6, "G" or "GB" => 1e9, "T" or "TB" => 1e12,
            "KIB" => 1L << 10, "MIB" => 1L << 20, "GIB" => 1L << 30, "TIB" => 1L << 40,
            _ => double.NaN,
        };
        if (double.IsNaN(mult) || v * mult < 1 || v * mult > long.MaxValue) return false;
        bytes = (long)(v * mult);
        return true;
    }
}
