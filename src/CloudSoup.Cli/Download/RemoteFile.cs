namespace CloudSoup.Cli.Download;

/// <summary>
/// One file of a job's result as its source lists it: the name relative to the job's output folder, the size in bytes
/// (null when the job names a blob that is gone), the MD5 when the store keeps one, the ETag, and where to read it.
/// </summary>
internal sealed record RemoteFile(string Name, long? Size, byte[]? Md5, string? ETag, string Location);
