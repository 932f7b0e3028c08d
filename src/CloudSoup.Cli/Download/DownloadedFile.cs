namespace CloudSoup.Cli.Download;

/// <summary>What happened to one file: downloaded (with the bytes resumed from a .partial), or kept as it already was.</summary>
internal sealed record DownloadedFile(string Name, string Path, long Size, long ResumedFrom, bool AlreadyPresent);
