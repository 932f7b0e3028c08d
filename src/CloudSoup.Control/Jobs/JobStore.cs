// Job records in the jobs table. Every change is a read-modify-write guarded by the row's ETag (If-Match),
// retried when another writer got there first, so two workers, the API and intake can touch one job safely.
using Azure;
using Azure.Data.Tables;

namespace CloudSoup.Control.Jobs;

public enum ClaimOutcome { Claimed, AlreadyFinished, HeldByOther, NotFound }

public sealed class JobStore(TableClient table)
{
    private const int MaxConflictRetries = 20;

    /// <summary>Adds the job unless a job with its id exists; returns the stored job and whether this call created it.</summary>
    public async Task<(JobRecord Job, bool Created)> CreateIfAbsentAsync(JobRecord job, CancellationToken ct)
    {
        try
        {
            var response = await table.AddEntityAsync(job, ct).ConfigureAwait(false);
            job.ETag = response.Headers.ETag ?? default;
            return (job, true);
        }
        catch (RequestFailedException e) when (e.Status == 409)
        {
            var existing = await GetAsync(job.Id, ct).ConfigureAwait(false);
            return existing is null ? await CreateIfAbsentAsync(job, ct).ConfigureAwait(false) : (existing, false);
        }
    }

    public async Task<JobRecord?> GetAsync(string id, CancellationToken ct)
    {
        if (!JobIds.IsValid(id)) return null;
        var response = await table.GetEntityIfExistsAsync<JobRecord>(JobRecord.Partition, id, cancellationToken: ct).ConfigureAwait(false);
        return response.HasValue ? response.Value : null;
    }

    /// <summary>
    /// The newest jobs first. The table is ordered by id, so this reads the partition and sorts (every view shows its
    /// outputs, so whole records). Reading ids and times first, then only the shown records, was no faster at 2,000 jobs
    /// on Azurite and 1.7× faster at 8,000 (bench/README.md, "The reconciler's pass").
    /// </summary>
    public async Task<IReadOnlyList<JobRecord>> ListAsync(int max, CancellationToken ct)
    {
        var all = await ListAllAsync(ct).ConfigureAwait(false);
        return all.OrderByDescending(j => j.Created).ThenBy(j => j.RowKey, StringComparer.Ordinal).Take(max).ToList();
    }

    /// <summary>Every job, in no particular order (one query, paged by the SDK).</summary>
    public Task<IReadOnlyList<JobRecord>> ListAllAsync(CancellationToken ct) =>
        QueryAsync(TableClient.CreateQueryFilter($"PartitionKey eq {JobRecord.Partition}"), null, ct);

    /// <summary>
    /// The jobs still queued or running (the reconciler's scan): the table filters them, so a pass reads only the few
    /// unfinished records however many finished jobs the table holds.
    /// </summary>
    public Task<IReadOnlyList<JobRecord>> ListUnfinishedAsync(CancellationToken ct) =>
        QueryAsync(TableClient.CreateQueryFilter(
            $"PartitionKey eq {JobRecord.Partition} and (Status eq {JobStatus.Queued} or Status eq {JobStatus.Running})"), null, ct);

    /// <summary>
    /// Every job with only the named <paramref name="columns"/> read (the rest keep their defaults): a scan that needs
    /// a few fields of each record reads a few dozen bytes a job instead of its outputs and notes.
    /// </summary>
    public Task<IReadOnlyList<JobRecord>> ListAllAsync(IEnumerable<string> columns, CancellationToken ct) =>
        QueryAsync(TableClient.CreateQueryFilter($"PartitionKey eq {JobRecord.Partition}"), columns, ct);

    private async Task<IReadOnlyList<JobRecord>> QueryAsync(string filter, IEnumerable<string>? columns, CancellationToken ct)
    {
        var all = new List<JobRecord>();
        await foreach (var job in table.QueryAsync<JobRecord>(filter, select: columns, cancellationToken: ct).ConfigureAwait(false))
            all.Add(job);
        return all;
    }

    /// <summary>
    /// Applies <paramref name="change"/> to the current record and writes it with If-Match; on a conflict it
    /// re-reads and tries again. Returns the written record, or null when the job does not exist or
    /// <paramref name="change"/> declined (returned false).
    /// </summary>
    public async Task<JobRecord?> UpdateAsync(string id, Func<JobRecord, bool> change, CancellationToken ct)
    {
        for (int attempt = 0; ; attempt++)
        {
            var job = await GetAsync(id, ct).ConfigureAwait(false);
            if (job is null || !change(job)) return null;
            try
            {
                var response = await table.UpdateEntityAsync(job, job.ETag, TableUpdateMode.Replace, ct).ConfigureAwait(false);
                job.ETag = response.Headers.ETag ?? default;
                return job;
            }
            catch (RequestFailedException e) when (e.Status is 412 or 409 && attempt < MaxConflictRetries)
            {
                // someone else updated the job in between: read it again and re-apply
            }
        }
    }

    /// <summary>Puts a failed job back in the queue state so that resubmitting it runs it again.</summary>
    public Task<JobRecord?> RequeueFailedAsync(string id, CancellationToken ct) =>
        UpdateAsync(id, job =>
        {
            if (job.Status != JobStatus.Failed) return false;
            job.Status = JobStatus.Queued;
            job.Phase = null;
            job.Progress = 0;
            job.Started = job.Finished = null;
            job.Error = job.LastError = null;
            job.Attempts = 0;
            job.ClaimedBy = null;
            job.ClaimedUntil = null;
            job.Attempt = job.CommittedAttempt = null;
            job.Parts = 0;
            job.PartsDone = job.PartsNote = null;
            job.Created = DateTimeOffset.UtcNow;
            job.Enqueued = job.Created;
            return true;
        }, ct);

    /// <summary>
    /// Marks the job running for <paramref name="worker"/> until <paramref name="until"/>, unless it is finished
    /// or another worker's claim has not expired yet. A claim starts a new attempt (<see cref="JobRecord.Attempt"/>),
    /// which writes its outputs into its own folder.
    /// </summary>
    public async Task<(ClaimOutcome Outcome, JobRecord? Job)> TryClaimAsync(string id, string worker, DateTimeOffset until, CancellationToken ct)
    {
        var outcome = ClaimOutcome.NotFound;
        JobRecord? seen = null;
        var claimed = await UpdateAsync(id, job =>
        {
            seen = job;
            if (JobStatus.IsFinished(job.Status)) { outcome = ClaimOutcome.AlreadyFinished; return false; }
            if (job.Status == JobStatus.Running && job.ClaimedBy != worker && job.ClaimedUntil > DateTimeOffset.UtcNow)
            { outcome = ClaimOutcome.HeldByOther; return false; }
            outcome = ClaimOutcome.Claimed;
            job.Status = JobStatus.Running;
            job.Started ??= DateTimeOffset.UtcNow;
            job.Attempts++;
            job.Attempt = JobAttempts.NewId(job.Attempts);
            job.Parts = 0;
            job.PartsDone = job.PartsNote = null;
            job.ClaimedBy = worker;
            job.ClaimedUntil = until;
            job.Phase = JobPhase.Starting;
            job.Progress = 0;
            return true;
        }, ct).ConfigureAwait(false);
        return (outcome, claimed ?? seen);
    }

    /// <summary>
    /// How long after its expiry a claim may still be extended or publish its attempt. The reconciler's sweep waits
    /// twice this long before it treats an attempt's folder as abandoned, so the two never act on the same attempt
    /// (unless clocks disagree by more than this).
    /// </summary>
    public static readonly TimeSpan ClaimGrace = TimeSpan.FromMinutes(1);

    /// <summary>True while <paramref name="job"/>'s claim may still extend itself or publish (see <see cref="ClaimGrace"/>).</summary>
    public static bool ClaimCanPublish(JobRecord job, DateTimeOffset now) => job.ClaimedUntil is { } until && until + ClaimGrace > now;

    /// <summary>
    /// Moves the claim's expiry along with the queue message's visibility. A claim that lapsed longer than
    /// <see cref="ClaimGrace"/> ago is not revived: by then the reconciler may have swept the attempt's folder.
    /// </summary>
    public Task<JobRecord?> ExtendClaimAsync(string id, string worker, DateTimeOffset until, CancellationToken ct) =>
        UpdateAsync(id, job =>
        {
            if (job.Status != JobStatus.Running || job.ClaimedBy != worker || !ClaimCanPublish(job, DateTimeOffset.UtcNow)) return false;
            job.ClaimedUntil = until;
            return true;
        }, ct);

    public Task<JobRecord?> ReportProgressAsync(string id, string worker, string phase, double fraction, CancellationToken ct) =>
        UpdateAsync(id, job =>
        {
            if (job.Status != JobStatus.Running || job.ClaimedBy != worker) return false;
            job.Phase = phase;
            job.Progress = Math.Clamp(fraction, 0, 1);
            return true;
        }, ct);

    /// <summary>
    /// The commit point of a job: names <paramref name="attempt"/>, whose outputs are all committed by now, as the
    /// job's result. Written only while that attempt still holds a live claim (ETag-guarded, so no other writer slips
    /// in between the check and the write); returns null otherwise, and the caller then deletes the attempt's folder.
    /// </summary>
    public Task<JobRecord?> MarkSucceededAsync(string id, string worker, string attempt, IReadOnlyList<string> outputs, CancellationToken ct) =>
        UpdateAsync(id, job =>
        {
            if (job.Status != JobStatus.Running || job.ClaimedBy != worker || job.Attempt != attempt || !ClaimCanPublish(job, DateTimeOffset.UtcNow)) return false;
            job.Status = JobStatus.Succeeded;
            job.CommittedAttempt = attempt;
            job.Phase = JobPhase.Done;
            job.Progress = 1;
            job.Finished = DateTimeOffset.UtcNow;
            job.Error = null;
            job.Outputs = outputs;
            job.ClaimedBy = null;
            job.ClaimedUntil = null;
            return true;
        }, ct);

    /// <summary>
    /// The <see cref="JobRecord.ClaimedBy"/> of a split job while its parts run: no one worker holds the job, its
    /// parts hold their own claims (JobPartStore), and <see cref="JobRecord.ClaimedUntil"/> follows the newest part
    /// renewal (<see cref="ExtendSplitAsync"/>), so the sweep keeps the attempt's folder and the reconciler leaves the
    /// job alone while any part is alive.
    /// </summary>
    public const string SplitClaim = "(parts)";

    /// <summary>
    /// Hands the job from <paramref name="worker"/>'s planning claim to its <paramref name="parts"/> parts, in the same
    /// attempt: only while that claim is live. Returns null when it is not (the caller then drops its plan).
    /// </summary>
    public Task<JobRecord?> StartPartsAsync(string id, string worker, string attempt, int parts, string? note, DateTimeOffset until, CancellationToken ct) =>
        UpdateAsync(id, job =>
        {
            if (job.Status != JobStatus.Running || job.ClaimedBy != worker || job.Attempt != attempt || !ClaimCanPublish(job, DateTimeOffset.UtcNow)) return false;
            job.Parts = parts;
            job.PartsDone = new string('0', parts);
            job.PartsNote = note;
            job.ClaimedBy = SplitClaim;
            job.ClaimedUntil = until;
            job.Phase = JobPhase.Merging;
            job.Progress = 0;
            return true;
        }, ct);

    /// <summary>Moves a split job's claim along with a part's renewal (never backwards; skipped when it is already later than <paramref name="until"/> − <paramref name="slack"/>).</summary>
    public Task<JobRecord?> ExtendSplitAsync(string id, string attempt, string worker, DateTimeOffset until, TimeSpan slack, CancellationToken ct) =>
        UpdateAsync(id, job =>
        {
            if (job.Status != JobStatus.Running || job.Attempt != attempt || (job.ClaimedBy != SplitClaim && job.ClaimedBy != worker)
                || !ClaimCanPublish(job, DateTimeOffset.UtcNow)) return false;
            if (job.ClaimedBy == SplitClaim && job.ClaimedUntil >= until - slack) return false;
            job.ClaimedUntil = until;
            return true;
        }, ct);

    /// <summary>
    /// Records that <paramref name="part"/> of <paramref name="attempt"/> committed its shards (ETag-conditional, like
    /// every change here). Returns whether the job still runs that attempt (false: the part's work is not wanted; the
    /// caller sweeps) and whether every part is done now. The update that completes the mask is exactly one, whoever
    /// races; a part delivered again after it set its bit sees the mask as it is.
    /// </summary>
    public async Task<(bool Current, bool AllDone)> MarkPartDoneAsync(string id, string attempt, int part, CancellationToken ct)
    {
        bool current = false, allDone = false;
        await UpdateAsync(id, job =>
        {
            current = job.Status == JobStatus.Running && job.Attempt == attempt && job.Parts > part && job.PartsDone?.Length == job.Parts;
            if (!current) return false;
            var mask = job.PartsDone!.ToCharArray();
            bool changed = mask[part] != '1';
            mask[part] = '1';
            job.PartsDone = new string(mask);
            job.Progress = (double)mask.Count(c => c == '1') / mask.Length;
            allDone = job.AllPartsDone;
            return changed;
        }, ct).ConfigureAwait(false);
        return (current, allDone);
    }

    /// <summary>
    /// Claims the finishing of a split job whose parts are all done (the shard index, the report, the commit) for
    /// <paramref name="worker"/>: while no other worker holds a live finishing claim. The finishing claim is an ordinary
    /// claim, so <see cref="ExtendClaimAsync"/> renews it and <see cref="MarkSucceededAsync"/> publishes through it.
    /// </summary>
    public async Task<(ClaimOutcome Outcome, JobRecord? Job)> TryClaimFinishAsync(string id, string worker, string attempt, DateTimeOffset until, CancellationToken ct)
    {
        var outcome = ClaimOutcome.NotFound;
        JobRecord? seen = null;
        var claimed = await UpdateAsync(id, job =>
        {
            seen = job;
            if (job.Status != JobStatus.Running || job.Attempt != attempt || !job.AllPartsDone) { outcome = ClaimOutcome.AlreadyFinished; return false; }
            if (job.ClaimedBy != SplitClaim && job.ClaimedBy != worker && job.ClaimedUntil > DateTimeOffset.UtcNow) { outcome = ClaimOutcome.HeldByOther; return false; }
            outcome = ClaimOutcome.Claimed;
            job.ClaimedBy = worker;
            job.ClaimedUntil = until;
            job.Phase = JobPhase.Reporting;
            return true;
        }, ct).ConfigureAwait(false);
        return (outcome, claimed ?? seen);
    }

    /// <summary>Gives a finishing claim that failed transiently back to the parts' claim, so the part's redelivery finishes the job.</summary>
    public Task<JobRecord?> ReleaseFinishAsync(string id, string worker, string attempt, string error, CancellationToken ct) =>
        UpdateAsync(id, job =>
        {
            if (job.Status != JobStatus.Running || job.Attempt != attempt || job.ClaimedBy != worker || !job.AllPartsDone) return false;
            job.ClaimedBy = SplitClaim;
            job.LastError = error;
            return true;
        }, ct);

    /// <summary>
    /// Marks the job failed with a reason for people; a job that already succeeded stays succeeded. With
    /// <paramref name="attempt"/>, only while the job is still in that attempt.
    /// </summary>
    public Task<JobRecord?> MarkFailedAsync(string id, string error, CancellationToken ct, string? attempt = null) =>
        UpdateAsync(id, job =>
        {
            if (JobStatus.IsFinished(job.Status) || (attempt != null && job.Attempt != attempt)) return false;
            job.Status = JobStatus.Failed;
            job.Finished = DateTimeOffset.UtcNow;
            job.Error = error;
            job.ClaimedBy = null;
            job.ClaimedUntil = null;
            return true;
        }, ct);

    /// <summary>Records a failed attempt that will be retried: the job goes back to queued, with the reason kept.</summary>
    public Task<JobRecord?> RecordRetryAsync(string id, string worker, string error, CancellationToken ct) =>
        UpdateAsync(id, job =>
        {
            if (JobStatus.IsFinished(job.Status) || (job.ClaimedBy != null && job.ClaimedBy != worker)) return false;
            job.Status = JobStatus.Queued;
            job.Phase = JobPhase.Retrying;
            job.LastError = error;
            job.ClaimedBy = null;
            job.ClaimedUntil = null;
            return true;
        }, ct);

    /// <summary>
    /// Records that the reconciler sent parts of split attempt <paramref name="attempt"/> again (PartResender): the job
    /// stays in that attempt, its done parts kept. The parts' claim on the job moves to at least <paramref name="until"/>
    /// (as when the parts were first sent), and a finishing claim that lapsed goes back to the parts, so the part
    /// delivered next may claim the finishing at once. A live finishing claim is left alone. The commit still needs
    /// a finisher's own live claim (<see cref="MarkSucceededAsync"/>).
    /// </summary>
    public Task<JobRecord?> MarkPartsResentAsync(string id, string attempt, string reason, DateTimeOffset until, CancellationToken ct) =>
        UpdateAsync(id, job =>
        {
            if (job.Attempt != attempt || !job.SplitCanContinue) return false;
            var now = DateTimeOffset.UtcNow;
            if (job.ClaimedBy == SplitClaim || !(job.ClaimedUntil > now))
            {
                job.ClaimedBy = SplitClaim;
                if (!(job.ClaimedUntil >= until)) job.ClaimedUntil = until;
            }
            job.LastError = reason;
            job.Requeues++;
            return true;
        }, ct);

    /// <summary>
    /// The reconciler's step for a job whose queue message was lost: back to queued, marked as sent now. Written
    /// with If-Match on the ETag the reconciler read, so of several reconcilers looking at the same stale job only
    /// one re-sends it; returns false when the job changed since (someone else acted on it).
    /// </summary>
    public async Task<bool> TryMarkRequeuedAsync(JobRecord seen, string reason, CancellationToken ct)
    {
        var job = seen.Copy();
        job.Status = JobStatus.Queued;
        job.Phase = JobPhase.Retrying;
        job.LastError = reason;
        job.ClaimedBy = null;
        job.ClaimedUntil = null;
        job.Enqueued = DateTimeOffset.UtcNow;
        job.Requeues++;
        try
        {
            var response = await table.UpdateEntityAsync(job, seen.ETag, TableUpdateMode.Replace, ct).ConfigureAwait(false);
            job.ETag = response.Headers.ETag ?? default;
            return true;
        }
        catch (RequestFailedException e) when (e.Status is 412 or 404)
        {
            return false;
        }
    }
}
