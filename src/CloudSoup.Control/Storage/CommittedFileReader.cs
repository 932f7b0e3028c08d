// Sizes and ETags of a job's committed files. Which files there are comes from the job record (JobFiles.Committed),
// never from listing the merged container; their properties come from one listing of the committed folder (a job
// view used to cost a properties request per file: 30 shards, 30 requests on every status poll).
using Azure;
using Azure.Storage.Blobs.Models;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Jobs;

namespace CloudSoup.Control.Storage;

public sealed class CommittedFileReader(StorageClients storage)
{
    /// <summary>
    /// Each committed file with its stored properties, in the record's order; null where the blob is gone. Every file
    /// the record commits lies in its committed folder (JobFiles.Committed), so one listing of that prefix answers
    /// for all of them; only the record's names are looked up in it, and anything else in the folder is ignored.
    /// </summary>
    public async Task<IReadOnlyList<(CommittedFile File, StoredFile? Stored)>> DescribeAsync(JobRecord job, CancellationToken ct)
    {
        var files = JobFiles.Committed(job, storage.Options.MergedContainer);
        if (files.Count == 0) return [];
        var wanted = files.Select(f => f.Blob.Name).ToHashSet(StringComparer.Ordinal);
        var listed = new Dictionary<string, BlobItemProperties>(StringComparer.Ordinal);
        var merged = storage.Container(storage.Options.MergedContainer);
        await foreach (var item in merged.GetBlobsAsync(BlobTraits.None, BlobStates.None, JobFiles.CommittedFolder(job), ct).ConfigureAwait(false))
            if (wanted.Contains(item.Name)) listed[item.Name] = item.Properties;
        return files.Select(f => (File: f, Stored: listed.TryGetValue(f.Blob.Name, out var p)
            ? new StoredFile(f.Name, f.Blob, p.ContentLength ?? 0, p.ETag ?? default, p.ContentHash is { Length: > 0 } md5 ? md5 : null, p.LastModified ?? default)
            : null)).ToList();
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
