// Sizes and ETags of a job's committed files, read from each blob's properties: the list of files comes from the
// job record (JobFiles.Committed), never from listing the merged container.
using Azure;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Jobs;

namespace CloudSoup.Control.Storage;

public sealed class CommittedFileReader(StorageClients storage)
{
    /// <summary>Properties requests in flight at once; a job has at most a few hundred files.</summary>
    private const int Parallelism = 8;

    /// <summary>Each committed file with its stored properties, in the record's order; null where the blob is gone.</summary>
    public async Task<IReadOnlyList<(CommittedFile File, StoredFile? Stored)>> DescribeAsync(JobRecord job, CancellationToken ct)
    {
        var files = JobFiles.Committed(job, storage.Options.MergedContainer);
        var stored = new StoredFile?[files.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, files.Count), new ParallelOptions { MaxDegreeOfParallelism = Parallelism, CancellationToken = ct },
            async (i, token) => stored[i] = await DescribeAsync(files[i], token).ConfigureAwait(false)).ConfigureAwait(false);
        return files.Select((f, i) => (File: f, Stored: stored[i])).ToList();
    }

    /// <summary>The stored properties of one committed file, or null when its blob does not exist.</summary>
    public async Task<StoredFile?> DescribeAsync(CommittedFile file, CancellationToken ct)
    {
        try
        {
            var p = (await storage.Container(file.Blob.Container).GetBlobClient(file.Blob.Name).GetPropertiesAsync(cancellationToken: ct).ConfigureAwait(false)).Value;
            return new StoredFile(file.Name, file.Blob, p.ContentLength, p.ETag, p.ContentHash is { Length: > 0 } md5 ? md5 : null, p.LastModified);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }
}
