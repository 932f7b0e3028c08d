namespace CloudSoup.Cli.Download;

/// <summary>Where `cloudsoup download` reads a job's files from: a CloudSoup API, or the storage account directly.</summary>
internal interface IJobFileSource : IDisposable
{
    /// <summary>The files of a succeeded job; an unknown job or one that has not succeeded is a CloudSoupException (exit 2).</summary>
    Task<IReadOnlyList<RemoteFile>> ListAsync(string jobId, CancellationToken ct);

    /// <summary>
    /// The file's bytes from <paramref name="offset"/> on (a ranged read). The answer says where its content really
    /// starts: 0 when the source sent the whole file instead (the file changed, or the range was not honoured).
    /// </summary>
    Task<RemoteRead> OpenAsync(string jobId, RemoteFile file, long offset, CancellationToken ct);
}
