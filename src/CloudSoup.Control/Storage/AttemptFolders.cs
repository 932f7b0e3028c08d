// The attempt folders in the merged container (merged/<job-id>/<attempt>/…, JobAttempts): listing and deleting
// them (which ones may go is AttemptSweeper's decision). Deleting is idempotent (a blob already gone is fine), so
// the worker's clean-up and the reconciler's sweep may run over the same folder, in any order, repeatedly.
// Only committed blobs are listed and deleted: staged blocks that were never committed are invisible already, and
// the service discards them about a week after they were staged (Put Block,
// https://learn.microsoft.com/rest/api/storageservices/put-block).
using System.Runtime.CompilerServices;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using CloudSoup.Control.Jobs;

namespace CloudSoup.Control.Storage;

/// <summary>One attempt's folder and the committed blobs in it (names relative to the container).</summary>
public sealed record AttemptFolder(string JobId, string Attempt, IReadOnlyList<string> Blobs)
{
    public string Prefix => JobAttempts.Folder(JobId, Attempt) + "/";
}

public sealed class AttemptFolders(BlobContainerClient merged)
{
    /// <summary>
    /// Every attempt folder in the container, one at a time as one flat listing (a request per 5,000 blobs, not one
    /// listing per job) reaches its end: the service lists names in lexicographic order
    /// (https://learn.microsoft.com/rest/api/storageservices/list-blobs), so the names under one folder's prefix come
    /// together, and only one folder's names are held at a time however large the container. Names that are not
    /// &lt;job-id&gt;/&lt;attempt-id&gt;/… are not attempts and are left out.
    /// </summary>
    public IAsyncEnumerable<AttemptFolder> StreamAllAsync(CancellationToken ct, int? pageSize = null) => StreamAsync(null, pageSize, ct);

    /// <summary>The attempt folders of one job.</summary>
    public async Task<IReadOnlyList<AttemptFolder>> ListAsync(string jobId, CancellationToken ct)
    {
        var folders = new List<AttemptFolder>();
        await foreach (var folder in StreamAsync(jobId + "/", null, ct).ConfigureAwait(false)) folders.Add(folder);
        return folders;
    }

    /// <summary>Deletes the blobs of <paramref name="folder"/> that were listed; one already gone is not an error.</summary>
    public async Task DeleteAsync(AttemptFolder folder, CancellationToken ct)
    {
        foreach (var name in folder.Blobs)
        {
            try
            {
                await merged.GetBlobClient(name).DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: ct).ConfigureAwait(false);
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                // the container itself is gone: nothing left to delete
            }
        }
    }

    /// <summary>The attempt folders under <paramref name="prefix"/> (all when null), each as its listing reaches its end.</summary>
    private async IAsyncEnumerable<AttemptFolder> StreamAsync(string? prefix, int? pageSize, [EnumeratorCancellation] CancellationToken ct)
    {
        (string JobId, string Attempt)? current = null;
        var blobs = new List<string>();
        await using var pages = merged.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, ct).AsPages(pageSizeHint: pageSize).GetAsyncEnumerator(ct);
        while (true)
        {
            bool more;
            try
            {
                more = await pages.MoveNextAsync().ConfigureAwait(false);
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                yield break;   // no merged container yet: no folders
            }
            foreach (var name in more ? pages.Current.Values.Select(b => b.Name) : [])
            {
                if (FolderOf(name) is not { } folder) continue;
                if (current is { } open && folder != open)
                {
                    yield return new AttemptFolder(open.JobId, open.Attempt, blobs);
                    blobs = [];
                }
                current = folder;
                blobs.Add(name);
            }
            if (more) continue;
            if (current is { } last) yield return new AttemptFolder(last.JobId, last.Attempt, blobs);
            yield break;
        }
    }

    /// <summary>The attempt folder a blob name lies in, or null for a name that is not &lt;job-id&gt;/&lt;attempt-id&gt;/….</summary>
    private static (string JobId, string Attempt)? FolderOf(string name) =>
        name.Split('/', 3) is [var job, var attempt, _] && JobIds.IsValid(job) && JobAttempts.IsAttemptId(attempt) ? (job, attempt) : null;
}
