// The rows of a split job's parts (JobPartRecord) in the jobs table. Like JobStore, every change is a read-modify-write
// guarded by the row's ETag and retried on a conflict; a part's claim works like a job's (JobStore.TryClaimAsync), so a
// duplicate message of a part that another worker is running waits for that claim to lapse.
using Azure;
using Azure.Data.Tables;

namespace CloudSoup.Control.Jobs;

public enum PartClaimOutcome { Claimed, AlreadyDone, HeldByOther, Stale }

public sealed class JobPartStore(TableClient table)
{
    private const int MaxConflictRetries = 20;

    /// <summary>Writes the rows of a new split (one per part), replacing rows an earlier attempt left.</summary>
    public async Task CreateAsync(IReadOnlyList<JobPartRecord> parts, CancellationToken ct)
    {
        foreach (var part in parts)
            await table.UpsertEntityAsync(part, TableUpdateMode.Replace, ct).ConfigureAwait(false);
    }

    public async Task<JobPartRecord?> GetAsync(string jobId, int part, CancellationToken ct)
    {
        var response = await table.GetEntityIfExistsAsync<JobPartRecord>(JobPartRecord.PartitionFor(jobId), JobPartRecord.RowFor(part), cancellationToken: ct).ConfigureAwait(false);
        return response.HasValue ? response.Value : null;
    }

    /// <summary>The parts of <paramref name="jobId"/>'s attempt <paramref name="attempt"/>, in part order (one partition query).</summary>
    public async Task<IReadOnlyList<JobPartRecord>> ListAsync(string jobId, string attempt, CancellationToken ct)
    {
        var parts = new List<JobPartRecord>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {JobPartRecord.PartitionFor(jobId)} and Attempt eq {attempt}");
        await foreach (var p in table.QueryAsync<JobPartRecord>(filter, cancellationToken: ct).ConfigureAwait(false)) parts.Add(p);
        return parts.OrderBy(p => p.Part).ToList();
    }

    /// <summary>Applies <paramref name="change"/> with If-Match, re-reading on a conflict; null when the row is missing or the change declined.</summary>
    public async Task<JobPartRecord?> UpdateAsync(string jobId, int part, Func<JobPartRecord, bool> change, CancellationToken ct)
    {
        for (int attempt = 0; ; attempt++)
        {
            var row = await GetAsync(jobId, part, ct).ConfigureAwait(false);
            if (row is null || !change(row)) return null;
            try
            {
                var response = await table.UpdateEntityAsync(row, row.ETag, TableUpdateMode.Replace, ct).ConfigureAwait(false);
                row.ETag = response.Headers.ETag ?? default;
                return row;
            }
            catch (RequestFailedException e) when (e.Status is 412 or 409 && attempt < MaxConflictRetries)
            {
                // another writer came first: read again
            }
        }
    }

    /// <summary>Claims part <paramref name="part"/> of <paramref name="attempt"/> for <paramref name="worker"/> until <paramref name="until"/>.</summary>
    public async Task<(PartClaimOutcome Outcome, JobPartRecord? Part)> TryClaimAsync(string jobId, string attempt, int part, string worker, DateTimeOffset until, CancellationToken ct)
    {
        var outcome = PartClaimOutcome.Stale;
        JobPartRecord? seen = null;
        var claimed = await UpdateAsync(jobId, part, row =>
        {
            seen = row;
            if (row.Attempt != attempt) { outcome = PartClaimOutcome.Stale; return false; }
            if (row.IsDone) { outcome = PartClaimOutcome.AlreadyDone; return false; }
            if (row.Status == JobStatus.Running && row.ClaimedBy != worker && row.ClaimedUntil > DateTimeOffset.UtcNow) { outcome = PartClaimOutcome.HeldByOther; return false; }
            outcome = PartClaimOutcome.Claimed;
            row.Status = JobStatus.Running;
            row.Started ??= DateTimeOffset.UtcNow;
            row.Attempts++;
            row.ClaimedBy = worker;
            row.ClaimedUntil = until;
            row.Phase = JobPhase.Starting;
            row.Progress = 0;
            return true;
        }, ct).ConfigureAwait(false);
        return (outcome, claimed ?? seen);
    }

    public Task<JobPartRecord?> ExtendClaimAsync(string jobId, int part, string worker, DateTimeOffset until, CancellationToken ct) =>
        UpdateAsync(jobId, part, row =>
        {
            if (row.Status != JobStatus.Running || row.ClaimedBy != worker) return false;
            row.ClaimedUntil = until;
            return true;
        }, ct);

    public Task<JobPartRecord?> ReportProgressAsync(string jobId, int part, string worker, string phase, double fraction, CancellationToken ct) =>
        UpdateAsync(jobId, part, row =>
        {
            if (row.Status != JobStatus.Running || row.ClaimedBy != worker) return false;
            row.Phase = phase;
            row.Progress = Math.Clamp(fraction, 0, 1);
            return true;
        }, ct);

    /// <summary>The part's shards are committed: records who did it, its bytes and time. Only while <paramref name="worker"/> holds it.</summary>
    public Task<JobPartRecord?> MarkSucceededAsync(string jobId, int part, string worker, long bytesRead, long bytesWritten, double seconds, CancellationToken ct) =>
        UpdateAsync(jobId, part, row =>
        {
            if (row.Status != JobStatus.Running || row.ClaimedBy != worker) return false;
            row.Status = JobStatus.Succeeded;
            row.Phase = JobPhase.Done;
            row.Progress = 1;
            row.Finished = DateTimeOffset.UtcNow;
            row.Worker = worker;
            row.BytesRead = bytesRead;
            row.BytesWritten = bytesWritten;
            row.Seconds = seconds;
            row.ClaimedBy = null;
            row.ClaimedUntil = null;
            return true;
        }, ct);

    /// <summary>A failed attempt at the part that will be retried (its message reappears): back to queued with the reason.</summary>
    public Task<JobPartRecord?> RecordRetryAsync(string jobId, int part, string worker, string error, CancellationToken ct) =>
        UpdateAsync(jobId, part, row =>
        {
            if (row.IsDone || (row.ClaimedBy != null && row.ClaimedBy != worker)) return false;
            row.Status = JobStatus.Queued;
            row.Phase = JobPhase.Retrying;
            row.LastError = error;
            row.ClaimedBy = null;
            row.ClaimedUntil = null;
            return true;
        }, ct);

    /// <summary>
    /// The reconciler's step for a part whose message was lost (PartResender): back to queued, the reason kept, written
    /// with If-Match on the ETag the reconciler read, so of several reconcilers looking at the same lapsed part only one
    /// sends it again; false when the row changed since (a worker renewed or finished it, or another reconciler came
    /// first). A done row keeps its status: its message only has to set the part's bit (or finish the job).
    /// </summary>
    public async Task<bool> TryMarkResentAsync(JobPartRecord seen, string reason, CancellationToken ct)
    {
        if (!seen.IsDone)
        {
            seen.Status = JobStatus.Queued;
            seen.Phase = JobPhase.Retrying;
            seen.ClaimedBy = null;
            seen.ClaimedUntil = null;
        }
        seen.LastError = reason;
        seen.Resends++;
        try
        {
            var response = await table.UpdateEntityAsync(seen, seen.ETag, TableUpdateMode.Replace, ct).ConfigureAwait(false);
            seen.ETag = response.Headers.ETag ?? default;
            return true;
        }
        catch (RequestFailedException e) when (e.Status is 412 or 404)
        {
            return false;
        }
    }

    /// <summary>The part failed for good (bad input, or it gave up): the job fails with this reason.</summary>
    public Task<JobPartRecord?> MarkFailedAsync(string jobId, int part, string error, CancellationToken ct) =>
        UpdateAsync(jobId, part, row =>
        {
            if (row.IsDone) return false;
            row.Status = JobStatus.Failed;
            row.LastError = error;
            row.Finished = DateTimeOffset.UtcNow;
            row.ClaimedBy = null;
            row.ClaimedUntil = null;
            return true;
        }, ct);
}
