// The reconciler's step for a split job (docs/fanout.md, "Lost messages"): a part message that was lost (deleted by
// mistake, expired, its worker gone with it) costs that part, not the attempt. For the job's current attempt it reads
// the part rows (one partition query) and sends a new message for every part whose bit in the record's PartsDone mask
// is not set and whose row has lapsed, with the job-level notion of lapsed (JobReconciler.StaleReason): a claim that
// expired RequeueAfter ago, or a row left queued (or done, its bit not yet set) RequeueAfter after it last changed.
// No live message can be that old: a message is received, or reappears, within VisibilityTimeout + RetryDelay, which
// CloudSoupOptions.Validate keeps below RequeueAfter. When every bit is set but no one finished the job for as long,
// one done part is sent again: its delivery goes straight to the finishing claim.
// Each row is marked with If-Match on the ETag read here (JobPartStore.TryMarkResentAsync), and only the reconciler
// whose update wins sends that part's message, so concurrent reconcilers send one. Duplicates stay harmless exactly as
// for any part message (PartProcessor): a part another worker runs waits for its claim, a done part only re-sets its bit.
// Nothing here touches the commit path: the mask is still set by ETag-conditional updates and the commit still needs a
// finisher's own live claim (JobStore.MarkSucceededAsync).
using Azure;
using CloudSoup.Control.Configuration;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Control.Jobs;

/// <summary>A part message the reconciler sent again.</summary>
public sealed record ResentPart(string JobId, string Attempt, int Part);

public sealed class PartResender(StorageClients storage, JobStore jobs, JobPartStore parts, ILogger log)
{
    private CloudSoupOptions Options => storage.Options;

    /// <summary>
    /// Sends again the lost parts of <paramref name="job"/>'s attempt (a record with <see cref="JobRecord.SplitCanContinue"/>).
    /// Returns the parts sent, or null when the part rows do not let the attempt go on (a row missing or of another
    /// attempt): the reconciler then treats the job as any running job whose claim lapsed. A failed part row fails the
    /// job with that part's reason (its worker stopped between failing the part and failing the job).
    /// </summary>
    public async Task<IReadOnlyList<ResentPart>?> ResendLostAsync(JobRecord job, DateTimeOffset now, ISet<(string JobId, string Attempt, int Part)> visible, CancellationToken ct)
    {
        string attempt = job.Attempt!;
        var rows = await parts.ListAsync(job.Id, attempt, ct).ConfigureAwait(false);
        if (rows.Count != job.Parts || rows.Where((r, i) => r.Part != i).Any()) return null;
        if (rows.FirstOrDefault(r => r.Status == JobStatus.Failed) is { } failed)
        {
            // The part failed for good and its worker stopped before failing the job (PartProcessor fails the row,
            // then the job): finish that step with the part's own reason; the sweep then deletes the attempt's folder.
            string reason = failed.LastError ?? $"part {failed.Part + 1} of {job.Parts} failed";
            if (await jobs.MarkFailedAsync(job.Id, reason, ct, attempt).ConfigureAwait(false) is not null)
                log.LogWarning("job {JobId}: part {Part} of {Parts} had failed but the job had not; failed it: {Reason}", job.Id, failed.Part + 1, job.Parts, reason);
            return [];   // nothing to send: the job failed (here, or meanwhile by someone else)
        }

        var lost = new List<(JobPartRecord Row, string Reason)>();
        if (job.AllPartsDone)
        {
            // Every bit is set but the job did not commit: the finisher and the last part's message are gone.
            if (job.ClaimedUntil is { } until && now - until > Options.RequeueAfter)
                lost.Add((rows[^1], $"every part is done but no worker finished the job (its claim expired {until:u}); part {rows.Count} sent again by the reconciler to finish it"));
        }
        else
        {
            foreach (var row in rows)
                if (job.PartsDone![row.Part] != '1' && LapseReason(row, now) is { } reason) lost.Add((row, reason));
        }

        var sent = new List<ResentPart>();
        foreach (var (row, reason) in lost)
        {
            if (visible.Contains((job.Id, attempt, row.Part))) continue;   // its message is right there, only no worker took it yet
            string label = $"part {row.Part + 1} of {job.Parts}";
            if (!await parts.TryMarkResentAsync(row, reason, ct).ConfigureAwait(false)) continue;   // changed meanwhile: alive, or another reconciler took it
            // Before the message: the part delivered next finds the job's claim its parts' again and follows it.
            if (await jobs.MarkPartsResentAsync(job.Id, attempt, $"{label}: {reason}", DateTimeOffset.UtcNow + Options.VisibilityTimeout, ct).ConfigureAwait(false) is null)
                return sent;   // the job ended or moved to another attempt meanwhile: nothing more to send
            try
            {
                await storage.JobsQueue.SendMessageAsync(JobMessage.ForPart(job.Id, job.RecipePath, row.Part, attempt).ToJson(), timeToLive: TimeSpan.FromSeconds(-1), cancellationToken: ct).ConfigureAwait(false);
            }
            catch (RequestFailedException e)
            {
                // The row now says "sent just now"; the next pass after RequeueAfter tries again.
                log.LogWarning("job {JobId}: could not send {Part} again ({Status} {Code}); retried after {After}", job.Id, label, e.Status, e.ErrorCode, Options.RequeueAfter);
                continue;
            }
            log.LogWarning("job {JobId}: {Part} of {Attempt}: {Reason}", job.Id, label, attempt, reason);
            sent.Add(new ResentPart(job.Id, attempt, row.Part));
        }
        return sent;
    }

    /// <summary>Why part <paramref name="row"/> looks as if it has no live message, or null when it does not (the job-level rule, per part).</summary>
    private string? LapseReason(JobPartRecord row, DateTimeOffset now)
    {
        if (row.Status == JobStatus.Running)
            return row.ClaimedUntil is not { } until || now - until > Options.RequeueAfter
                ? $"its worker stopped and its queue message was lost (claim expired {row.ClaimedUntil:u}); sent again by the reconciler"
                : null;
        if (row.Timestamp is { } changed && now - changed > Options.RequeueAfter)
            return row.IsDone
                ? $"it finished but its bit was not set and its queue message was lost (done since {changed:u}); sent again by the reconciler"
                : $"its queue message was lost (queued since {changed:u} without a worker taking it); sent again by the reconciler";
        return null;
    }
}
