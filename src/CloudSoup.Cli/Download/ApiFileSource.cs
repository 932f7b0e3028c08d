using CloudSoup.Cli.Commands;
using CloudSoup.Control.Jobs;

namespace CloudSoup.Cli.Download;

/// <summary>A job's files through a CloudSoup API: the job view lists them, the download route streams them.</summary>
internal sealed class ApiFileSource(ApiClient api) : IJobFileSource
{
    public async Task<IReadOnlyList<RemoteFile>> ListAsync(string jobId, CancellationToken ct)
    {
        var job = await api.GetAsync(jobId, ct).ConfigureAwait(false) ?? throw DownloadErrors.UnknownJob(jobId);
        if (job.Status != JobStatus.Succeeded) throw DownloadErrors.NotSucceeded(job.Id, job.Status, job.Error);
        return (job.Files ?? []).Select(f => new RemoteFile(f.Name, f.Size, f.Md5 is { } md5 ? Convert.FromBase64String(md5) : null, f.ETag, f.Url)).ToList();
    }

    public Task<RemoteRead> OpenAsync(string jobId, RemoteFile file, long offset, CancellationToken ct) =>
        api.OpenFileAsync(file.Location, offset, file.ETag, ct);

    public void Dispose() => api.Dispose();
}
