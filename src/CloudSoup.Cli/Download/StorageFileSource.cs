using Azure;
using Azure.Storage.Blobs.Models;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Storage;

namespace CloudSoup.Cli.Download;

/// <summary>
/// A job's files straight from the storage account (no API running): the job record names them, exactly as the API
/// finds them (JobFiles.Committed), and each is read with a ranged blob download.
/// </summary>
internal sealed class StorageFileSource(StorageClients storage) : IJobFileSource
{
    private readonly JobStore _jobs = new(storage.JobsTable);

    public async Task<IReadOnlyList<RemoteFile>> ListAsync(string jobId, CancellationToken ct)
    {
        var job = (JobIds.IsValid(jobId) ? await _jobs.GetAsync(jobId, ct).ConfigureAwait(false) : null) ?? throw DownloadErrors.UnknownJob(jobId);
        if (job.Status != JobStatus.Succeeded) throw DownloadErrors.NotSucceeded(job.Id, job.Status, job.Error);
        return (await new CommittedFileReader(storage).DescribeAsync(job, ct).ConfigureAwait(false))
            .Select(f => new RemoteFile(f.File.Name, f.Stored?.Size, f.Stored?.Md5, f.Stored?.ETag.ToString(), f.File.Blob.ToString()))
            .ToList();
    }

    public async Task<RemoteRead> OpenAsync(string jobId, RemoteFile file, long offset, CancellationToken ct)
    {
        var path = BlobPath.Parse(file.Location);
        var options = new BlobDownloadOptions
        {
            Range = offset > 0 ? new HttpRange(offset) : default,
            Conditions = file.ETag is { } etag ? new BlobRequestConditions { IfMatch = new ETag(etag) } : null,
        };
        try
        {
            var download = await storage.Container(path.Container).GetBlobClient(path.Name).DownloadStreamingAsync(options, ct).ConfigureAwait(false);
            return new RemoteRead(download.Value.Content, offset, download.Value);
        }
        catch (RequestFailedException e) when (e.Status == 412)
        {
            throw new CloudSoupException(ErrorKind.InputChanged, $"{file.Location} changed while it was being downloaded; run the command again");
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw CloudSoupException.Missing($"{file.Location}, listed by job {jobId},");
        }
    }

    public void Dispose() { }
}
