// Puts right what a lost queue message or a killed worker leaves behind, so that every accepted job ends, and
// ends once. One pass:
//   1. requeue: a job still queued RequeueAfter after its record last changed, or still "running" RequeueAfter
//      after its claim expired, has no live message (a message is received, or reappears, well within that time:
//      CloudSoupOptions.Validate keeps RequeueAfter above VisibilityTimeout + RetryDelay). Its record is updated
//      with If-Match on the ETag read here, and only the reconciler whose update wins sends the new message, so
//      concurrent reconcilers send one. Should a message still be alive after all (a long backlog), the job gets a
//      second message; the worker's claim runs it once and deletes the other (docs/azure-notes.md §3).
//      A split job whose record lets its attempt go on (JobRecord.SplitCanContinue) is not sent again whole: its lost
//      part messages are sent again one by one (PartResender), and the parts already done stay done. Only when the
//      record or the part rows say the attempt cannot go on does its lapsed claim start a new attempt.
//   2. sweep: attempt folders under merged/ that no record names and no claim that may still publish is writing
//      (AttemptSweeper; docs/contracts.md, "Blob layout"), e.g. what a worker killed while committing left. The
//      sweep lists the whole container, so it runs on a pass at most every SweepInterval (the first pass sweeps);
//      the requeue reads only the unfinished jobs' records (the table filters them), so the passes between sweeps
//      read as much with ten jobs done as with a million.
// Runs in the control plane (the Functions timer, the standalone and dev hosts): in Azure the worker scales to
// zero when the queue is empty, which is exactly when a lost message needs someone else to notice.
using Azure;
using CloudSoup.Control.Configuration;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Control.Jobs;

/// <summary>
/// What one pass did: the jobs it sent a new message, the attempt folders it deleted (when it swept, <paramref name="SweepRan"/>)
/// and the parts of split jobs it sent again.
/// </summary>
public sealed record ReconcileResult(IReadOnlyList<string> Requeued, IReadOnlyList<string> Swept, IReadOnlyList<ResentPart> Resent, bool SweepRan);

public sealed class JobReconciler(StorageClients storage, JobStore jobs, ILogger<JobReconciler> log)
{
    private readonly AttemptSweeper _sweeper = new(storage, jobs, log);
    private readonly PartResender _parts = new(storage, jobs, new JobPartStore(storage.JobsTable), log);

    private CloudSoupOptions Options => storage.Options;

    private DateTimeOffset? _lastSweep;

    public async Task<ReconcileResult> RunOnceAsync(CancellationToken ct)
    {
        IReadOnlyList<string> swept = [];
        bool sweep = _lastSweep is not { } last || DateTimeOffset.UtcNow - last >= Options.SweepInterval;
        if (sweep)
        {
            swept = await _sweeper.SweepAllAsync(ct).ConfigureAwait(false);
            _lastSweep = DateTimeOffset.UtcNow;
        }
        var now = DateTimeOffset.UtcNow;
        var requeued = new List<string>();
        var resent = new List<ResentPart>();
        VisibleMessages? waiting = null;
        foreach (var job in await jobs.ListUnfinishedAsync(ct).ConfigureAwait(false))
        {
            if (job.SplitCanContinue)
            {
                waiting ??= await VisibleMessagesAsync(ct).ConfigureAwait(false);
                if (await _parts.ResendLostAsync(job, now, waiting.Parts, ct).ConfigureAwait(false) is { } sent)
                {
                    resent.AddRange(sent);
                    continue;   // the attempt goes on: its claim lapsing means only that no part runs right now
                }
            }
            if (StaleReason(job, now) is not { } reason) continue;
            waiting ??= await VisibleMessagesAsync(ct).ConfigureAwait(false);
            if (waiting.Jobs.Contains(job.Id)) continue;   // its message is right there, only no worker has taken it yet
            if (await TryRequeueAsync(job, reason, ct).ConfigureAwait(false)) requeued.Add(job.Id);
        }
        return new ReconcileResult(requeued, swept, resent, sweep);
    }

    /// <summary>The jobs (any message of theirs) and the parts of the messages at the front of the queue.</summary>
    private sealed record VisibleMessages(HashSet<string> Jobs, HashSet<(string JobId, string Attempt, int Part)> Parts);

    /// <summary>
    /// The messages at the front of the queue (Peek Messages shows at most 32, and no hidden ones): with no worker
    /// running, a job's or a part's message is usually among them, and sending another would only pile up
    /// duplicates. Beyond that the reconciler cannot see, and a duplicate is harmless.
    /// </summary>
    private async Task<VisibleMessages> VisibleMessagesAsync(CancellationToken ct)
    {
        var visible = new VisibleMessages(new HashSet<string>(StringComparer.Ordinal), []);
        try
        {
            foreach (var m in (await storage.JobsQueue.PeekMessagesAsync(32, ct).ConfigureAwait(false)).Value)
            {
                if (JobMessage.TryParse(m.Body.ToString(), out _) is not { } message) continue;
                visible.Jobs.Add(message.JobId);
                if (message is { Part: int part, Attempt: { } attempt }) visible.Parts.Add((message.JobId, attempt, part));
            }
        }
        catch (RequestFailedException e)
        {
            log.LogDebug("could not peek {Queue}: {Status}", Options.JobsQueue, e.Status);
        }
        return visible;
    }

    /// <summary>Why <paramref name="job"/> looks as if it has no live message, or null when it does not.</summary>
    private string? StaleReason(JobRecord job, DateTimeOffset now)
    {
        if (job.Status == JobStatus.Queued && job.Timestamp is { } changed && now - changed > Options.RequeueAfter)
            return $"its queue message was lost (queued since {changed:u} without a worker taking it); sent again by the reconciler";
        if (job.Status == JobStatus.Running && job.ClaimedUntil is { } until && now - until > Options.RequeueAfter)
            return $"its worker stopped and its queue message was lost (claim expired {until:u}); sent again by the reconciler";
        return null;
    }

    private async Task<bool> TryRequeueAsync(JobRecord job, string reason, CancellationToken ct)
    {
        if (!await jobs.TryMarkRequeuedAsync(job, reason, ct).ConfigureAwait(false)) return false;   // changed meanwhile: not stale, or another reconciler took it
        try
        {
            await storage.JobsQueue.SendMessageAsync(JobMessage.For(job.Id, job.RecipePath).ToJson(), timeToLive: TimeSpan.FromSeconds(-1), cancellationToken: ct).ConfigureAwait(false);
        }
        catch (RequestFailedException e)
        {
            // The record now says "sent just now"; the next pass after RequeueAfter tries again.
            log.LogWarning("job {JobId}: could not send its new message ({Status} {Code}); retried after {After}", job.Id, e.Status, e.ErrorCode, Options.RequeueAfter);
            return false;
        }
        log.LogWarning("job {JobId}: {Reason}", job.Id, reason);
        return true;
    }
}
