namespace CloudSoup.Control.Errors;

/// <summary>"Did you mean …?" for a misspelt name: the closest candidate by edit distance, when it is close.</summary>
public static class Suggestions
{
    /// <summary>The candidate nearest to <paramref name="word"/> (case-insensitive Levenshtein), or null when none is within a third of its length (at least 2).</summary>
    public static string? Closest(string word, IEnumerable<string> candidates)
    {
        int limit = Math.Max(2, word.Length / 3);
        return candidates.Select(c => (c, d: Distance(word, c))).Where(x => x.d <= limit).OrderBy(x => x.d).ThenBy(x => x.c, StringComparer.Ordinal)
            .Select(x => x.c).FirstOrDefault();
    }

    public static int Distance(string a, string b)
    {
        var prev = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            var cur = new int[b.Length + 1];
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (char.ToLowerInvariant(a[i - 1]) == char.ToLowerInvariant(b[j - 1]) ? 0 : 1));
            prev = cur;
        }
        return prev[b.Length];
    }
}
