using CloudSoup.Control.Errors;
using CloudSoup.Control.Jobs;

namespace CloudSoup.Cli.Download;

/// <summary>The one-line errors `cloudsoup download` stops with, the same whichever source it reads.</summary>
internal static class DownloadErrors
{
    public static CloudSoupException UnknownJob(string id) => CloudSoupException.Missing($"job {SafeText.Name(id)}");

    public static CloudSoupException NotSucceeded(string id, string status, string? error) => new(ErrorKind.MissingInput,
        status == JobStatus.Failed
            ? $"job {id} failed, so it has no files to download: {error}"
            : $"job {id} is {status}; its files can be downloaded once it succeeded (follow it with: cloudsoup status {id} --wait)");
}
