// Job ids are content addresses: SHA-256 over the canonical recipe (RecipeJson) and the version (ETag) of
// every input it reads, hex, first 20 characters (80 bits). The same recipe over the same uploads is the
// same job, however often or by whichever path (API, recipe drop, soup.yaml drop) it arrives.
using System.Security.Cryptography;
using System.Text;
using CloudSoup.Control.Recipes;

namespace CloudSoup.Control.Jobs;

public static class JobIds
{
    public const int Length = 20;

    /// <summary>Version used for an input that does not exist at submit time; the worker then fails the job with a clear reason.</summary>
    public const string MissingVersion = "missing";

    public static string Compute(Recipe recipe, IReadOnlyDictionary<string, string> inputVersions)
    {
        var text = new StringBuilder(RecipeJson.ToJson(recipe).ToJsonString());
        foreach (var (reference, version) in inputVersions.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            text.Append('\n').Append(reference).Append('\t').Append(version);
        return Hex(text.ToString());
    }

    /// <summary>An id for something that never became a job (a dropped recipe that does not parse), so it still shows up in the job list.</summary>
    public static string ForRejected(string source, string version) => Hex($"rejected\n{source}\t{version}");

    public static bool IsValid(string id) => id.Length == Length && id.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');

    private static string Hex(string s) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(s)))[..Length];
}
