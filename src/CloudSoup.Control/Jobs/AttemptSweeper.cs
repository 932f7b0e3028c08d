// Deletes the attempt folders (merged/<job-id>/<attempt>/, JobAttempts) that can never become a job's result:
// every folder but the one the record names as committed, the one a claim that may still publish is writing, and the
// one of a split attempt whose record lets it go on (JobRecord.SplitCanContinue: its lost parts are sent again).
// Used by the worker after each attempt (for its job) and by the reconciler (for every job, at most every
// CloudSoupOptions.SweepInterval: the workers' own sweeps leave it only what a killed or failing worker left).
//
// Why it never deletes what becomes the result: folders are listed BEFORE the records are read. An attempt starts
// with its claim (a record write) and only then writes blobs, so any folder in the listing belongs to a claim the
// record read afterwards already shows: the current one is kept while it may still publish, and every earlier one
// can no longer publish (JobStore.MarkSucceededAsync requires the record to still name it). A claim publishes at
// most JobStore.ClaimGrace after it expired; the sweep waits twice that.
using Azure;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Storage;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Control.Jobs;

public sealed class AttemptSweeper(StorageClients storage, JobStore jobs, ILogger log)
{
    private readonly AttemptFolders _folders = new(storage.Container(storage.Options.MergedContainer));

    /// <summary>Sweeps one job's folders; returns the folders deleted.</summary>
    public async Task<IReadOnlyList<string>> SweepJobAsync(string jobId, CancellationToken ct)
    {
        var folders = await _folders.ListAsync(jobId, ct).ConfigureAwait(false);
        if (folders.Count == 0) return [];
        var job = await jobs.GetAsync(jobId, ct).ConfigureAwait(false);
        return job is null ? [] : await DeleteAbandonedAsync(folders, job, ct).ConfigureAwait(false);
    }

    /// <summary>The columns of a job record <see cref="IsAbandoned"/> reads (the sweep's scan reads only these).</summary>
    public static readonly IReadOnlyList<string> RecordColumns =
    [
        nameof(JobRecord.RowKey), nameof(JobRecord.Status), nameof(JobRecord.Attempt), nameof(JobRecord.CommittedAttempt),
        nameof(JobRecord.ClaimedBy), nameof(JobRecord.ClaimedUntil), nameof(JobRecord.Parts), nameof(JobRecord.PartsDone),
    ];

    /// <summary>
    /// Sweeps every job's folders: one scan of the jobs table (a few columns a job), then one flat listing of the merged
    /// container, folder by folder. The scan is read before the listing, so it only picks the candidates: a folder the
    /// scan already keeps is kept (a record that changed since can only have made it abandoned, and the next sweep
    /// takes it), and only a folder the scan would delete, or whose job it did not see, has its record read again,
    /// after the folder was listed, which decides (see the top of this file). A pass holds the scan and one folder's
    /// names, and reads a record again only for the few folders that go.
    /// </summary>
    public async Task<IReadOnlyList<string>> SweepAllAsync(CancellationToken ct)
    {
        var seen = (await jobs.ListAllAsync(RecordColumns, ct).ConfigureAwait(false)).ToDictionary(j => j.Id);
        var deleted = new List<string>();
        await foreach (var folder in _folders.StreamAllAsync(ct).ConfigureAwait(false))
        {
            if (seen.TryGetValue(folder.JobId, out var before) && !IsAbandoned(folder.Attempt, before, DateTimeOffset.UtcNow)) continue;
            if (await jobs.GetAsync(folder.JobId, ct).ConfigureAwait(false) is not { } job) continue;
            deleted.AddRange(await DeleteAbandonedAsync([folder], job, ct).ConfigureAwait(false));
        }
        return deleted;
    }

    /// <summary>
    /// True when <paramref name="job"/> does not name <paramref name="attempt"/> as its result and no claim that may
    /// still publish is writing it.
    /// </summary>
    public static bool IsAbandoned(string attempt, JobRecord job, DateTimeOffset now)
    {
        if (attempt == job.CommittedAttempt) return false;
        bool live = job.Status == JobStatus.Running && attempt == job.Attempt
                    && job.ClaimedUntil is { } until && until + 2 * JobStore.ClaimGrace > now;
        // A split attempt goes on while its record says so, however long ago its parts last renewed: the reconciler
        // sends its lost parts again (PartResender) and the done parts' shards in this folder are part of its result.
        bool splitGoesOn = attempt == job.Attempt && job.SplitCanContinue;
        return !live && !splitGoesOn;
    }

    /// <summary>
    /// Deletes the folders of <paramref name="job"/> that <see cref="IsAbandoned"/>, judged by its record read after
    /// they were listed. Its callers leave a folder without a record alone: not ours to judge (another deployment's
    /// table, a record deleted by hand).
    /// </summary>
    private async Task<IReadOnlyList<string>> DeleteAbandonedAsync(IReadOnlyList<AttemptFolder> folders, JobRecord job, CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow;
        var deleted = new List<string>();
        foreach (var folder in folders)
        {
            if (!IsAbandoned(folder.Attempt, job, now)) continue;
            try
            {
                await _folders.DeleteAsync(folder, ct).ConfigureAwait(false);
                deleted.Add(folder.Prefix);
                log.LogInformation("deleted attempt folder {Container}/{Folder} ({Blobs} blobs): job {JobId} is {Status}{Committed}",
                    storage.Options.MergedContainer, folder.Prefix, folder.Blobs.Count, job.Id, job.Status,
                    job.CommittedAttempt is { } c ? $", its result is {c}" : "");
            }
            catch (RequestFailedException e)
            {
                log.LogWarning("could not delete {Folder}: {Status} {Code}; the reconciler's next sweep tries again", folder.Prefix, e.Status, e.ErrorCode);
            }
        }
        return deleted;
    }
}
