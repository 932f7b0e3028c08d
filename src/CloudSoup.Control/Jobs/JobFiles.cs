// A succeeded job's files as a download names them: the path relative to the folder the job record committed
// (merged/<job-id>/<attempt>/, or merged/<job-id>/ for jobs written before attempt folders). They come only from the
// record's outputs (docs/contracts.md, "Blob layout and job ids"): an attempt folder the record does not name may
// hold an unfinished attempt's files, and nothing there is ever a download.
using CloudSoup.Control.Storage;

namespace CloudSoup.Control.Jobs;

/// <summary>One file of a job's committed result: its name relative to the committed folder, and where it is stored.</summary>
public sealed record CommittedFile(string Name, BlobPath Blob);

public static class JobFiles
{
    /// <summary>Longest file name a download route accepts; the output names the worker writes are far shorter.</summary>
    public const int MaxNameLength = 1024;

    /// <summary>The folder, inside the merged container, that the record committed ("&lt;id&gt;/&lt;attempt&gt;/").</summary>
    public static string CommittedFolder(JobRecord job) =>
        (job.CommittedAttempt is { } attempt ? JobAttempts.Folder(job.Id, attempt) : job.Id) + "/";

    /// <summary>
    /// The files of a succeeded job, in the record's order; empty for any other status. Outputs outside the committed
    /// folder of <paramref name="mergedContainer"/>, or with a name no download could carry safely, are left out.
    /// </summary>
    public static IReadOnlyList<CommittedFile> Committed(JobRecord job, string mergedContainer)
    {
        if (job.Status != JobStatus.Succeeded) return [];
        string folder = CommittedFolder(job);
        var files = new List<CommittedFile>();
        foreach (var output in job.Outputs)
        {
            if (!BlobPath.TryParse(output, out var path) || path.Container != mergedContainer
                || !path.Name.StartsWith(folder, StringComparison.Ordinal)) continue;
            string name = path.Name[folder.Length..];
            if (IsSafeName(name) && files.All(f => f.Name != name)) files.Add(new CommittedFile(name, path));
        }
        return files;
    }

    /// <summary>
    /// A relative file name with nothing a file system or URL could read as a way out of its folder: no empty,
    /// "." or ".." segment, no leading slash, no backslash or control character, and bounded length. The download
    /// route refuses other names with 400 and the CLI refuses to write them.
    /// </summary>
    public static bool IsSafeName(string? name) =>
        !string.IsNullOrEmpty(name) && name.Length <= MaxNameLength
        && !name.Any(c => char.IsControl(c) || c is '\\' or ':')
        && name.Split('/').All(s => s.Length > 0 && s is not "." and not "..");
}
