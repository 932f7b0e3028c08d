// Every attempt at a job writes its outputs into its own folder, merged/<job-id>/<attempt>/, and the job record,
// updated last and conditionally, names the one attempt that committed (docs/contracts.md, "Blob layout"). A
// worker killed half-way through committing leaves a folder no record names: readers never see it, and the next
// attempt, the give-up path or the reconciler's sweep deletes it.
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace CloudSoup.Control.Jobs;

public static partial class JobAttempts
{
    /// <summary>
    /// A new attempt id: the attempt number for people, and a random suffix, because a failed job submitted again
    /// starts counting at 1 and must still never write into a folder an earlier attempt left behind.
    /// </summary>
    public static string NewId(int attempt) => $"attempt-{attempt}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";

    /// <summary>True for names <see cref="NewId"/> makes; nothing else under merged/&lt;job-id&gt;/ is ever deleted as an attempt.</summary>
    public static bool IsAttemptId(string name) => AttemptPattern().IsMatch(name);

    /// <summary>The folder of one attempt's outputs inside the merged container: "&lt;job-id&gt;/&lt;attempt&gt;".</summary>
    public static string Folder(string jobId, string attempt) => $"{jobId}/{attempt}";

    [GeneratedRegex("^attempt-[0-9]{1,9}-[0-9a-f]{8}$", RegexOptions.CultureInvariant)]
    private static partial Regex AttemptPattern();
}
