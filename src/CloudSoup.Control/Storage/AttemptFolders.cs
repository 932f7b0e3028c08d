// The attempt folders in the merged container (merged/<job-id>/<attempt>/…, JobAttempts): listing and deleting
// them (which ones may go is AttemptSweeper's decision). Deleting is idempotent (a blob already gone is fine), so
// the worker's clean-up and the reconciler's sweep may run over the same folder, in any order, repeatedly.
// Only committed blobs are listed and deleted: staged blocks that were never committed are invisible already, and
// the service discards them about a week after they were staged (Put Block,
// https://learn.microsoft.com/rest/api/storageservices/put-block).
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
    /// Every attempt folder in the container, from one flat listing (a few requests per 5,000 blobs) rather than one
    /// listing per job. Names that are not &lt;job-id&gt;/&lt;attempt-id&gt;/… are not attempts and are left out.
    /// </summary>
    public async Task<IReadOnlyList<AttemptFolder>> ListAllAsync(CancellationToken ct) => Group(await ListNamesAsync(null, ct).ConfigureAwait(false));

    /// <summary>The attempt folders of one job.</summary>
    public async Task<IReadOnlyList<AttemptFolder>> ListAsync(string jobId, CancellationToken ct) =>
        Group(await ListNamesAsync(jobId + "/", ct).ConfigureAwait(false));

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

    private async Task<List<string>> ListNamesAsync(string? prefix, CancellationToken ct)
    {
        var names = new List<string>();
        try
        {
            await foreach (var item in merged.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, ct).ConfigureAwait(false))
                names.Add(item.Name);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            // no merged container yet: no folders
        }
        return names;
    }

    private static List<AttemptFolder> Group(IEnumerable<string> names) =>
        names.Select(n => (Name: n, Parts: n.Split('/', 3)))
            .Where(x => x.Parts.Length == 3 && JobIds.IsValid(x.Parts[0]) && JobAttempts.IsAttemptId(x.Parts[1]))
            .GroupBy(x => (x.Parts[0], x.Parts[1]))
            .Select(g => new AttemptFolder(g.Key.Item1, g.Key.Item2, g.Select(x => x.Name).ToList()))
            .ToList();
}
