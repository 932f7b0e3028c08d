// One delivery of a part message of a split job (docs/fanout.md), with the guarantees a whole job has (JobProcessor):
//   drop it when its attempt is no longer the job's → give up after MaxAttempts (the job fails with the part's last
//   error, the message is parked, the attempt's folder deleted) → claim the part's row → run the part, renewing the
//   message (and with it the part's claim and the job's) → commit its shards into merged/<job-id>/<attempt>/ (unnamed
//   by the record, so invisible) → store its outcome at jobs/<job-id>/<attempt>/part-NNN.json → mark the row done →
//   set the part's bit in the job record's mask (ETag-conditional) → if the mask is now complete, claim the finishing
//   and write the shard index, the report and the commit point (MergeJobRunner.FinishPartsAsync,
//   JobStore.MarkSucceededAsync) → delete the message.
// Permutation alignment, weight scope alignment and methods that decide over the whole model first (ties topk_scope:
// model, agreement granularity: model) have their read pass run once when the job is split (the first stage,
// FirstStage) and stored at jobs/<job-id>/<attempt>/stage1.json; every part merges with it.
// A soup's parts commit no shards: each evaluates its run of ingredients and hands the scores over in its outcome; the
// finishing then runs the rest of the job (search from those scores, merge, evaluation, report) into the attempt's
// folder (MergeJobRunner.SoupParts.cs), under the same finishing claim.
// Bad input in a part fails the whole job with the part's reason; the attempt's folder is then swept, so nothing of
// the job stays. A part delivered again after its bit was set (its worker died before finishing the job) goes
// straight to the finishing claim, which only one worker at a time can hold.
using System.Diagnostics;
using Azure.Storage.Queues.Models;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Jobs;
using CloudSoup.Worker.Storage;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Worker.Queue;

internal sealed class PartProcessor(JobProcessor processor, StorageClients storage, JobStore jobs, JobPartStore parts, ILogger log)
{
    private CloudSoupOptions Options => storage.Options;
    private string WorkerId => processor.WorkerId;

    /// <summary>The blob (in the jobs container) where a part leaves its outcome for the part that finishes the job.</summary>
    public static string OutcomePath(string jobId, string attempt, int part) => $"{jobId}/{attempt}/part-{part:D3}.json";

    /// <summary>The blob (in the jobs container) holding a split job's first stage (FirstStage: permutations, scopes, a whole-model decision), when it has one.</summary>
    public static string Stage1Path(string jobId, string attempt) => $"{jobId}/{attempt}/stage1.json";

    private async Task<FirstStage?> ReadStage1Async(string jobId, string attempt, CancellationToken ct)
    {
        try
        {
            return FirstStage.FromJson(await ReadBoundedAsync(Stage1Path(jobId, attempt), FirstStage.MaxJsonBytes, ct).ConfigureAwait(false));
        }
        catch (Azure.RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Reads a hand-over file beside the job, sized before it is read: our own files, but nothing is read or parsed unbounded.</summary>
    private async Task<byte[]> ReadBoundedAsync(string path, int maxBytes, CancellationToken ct)
    {
        var download = (await storage.Container(Options.JobsContainer).GetBlobClient(path).DownloadStreamingAsync(cancellationToken: ct).ConfigureAwait(false)).Value;
        await using var content = download.Content;
        long length = download.Details.ContentLength;
        if (length > maxBytes)
            throw new InvalidDataException($"{path} is {length} bytes, more than the {maxBytes} it may hold");
        var bytes = new byte[length];
        await content.ReadExactlyAsync(bytes, ct).ConfigureAwait(false);
        return bytes;
    }

    public async Task ProcessAsync(QueueMessage message, JobMessage job, JobRecord record, CancellationToken ct)
    {
        string id = job.JobId, attempt = job.Attempt!;
        int part = job.Part!.Value;
        if (record.Status != JobStatus.Running || record.Attempt != attempt || part >= record.Parts)
        {
            log.LogInformation("job {JobId}: part {Part} of {Attempt} is not wanted any more (the job is {Status}, attempt {Current}); deleting message {MessageId}",
                id, part, attempt, record.Status, record.Attempt, message.MessageId);
            await DeleteAsync(message, ct).ConfigureAwait(false);
            return;
        }
        var row = await parts.GetAsync(id, part, ct).ConfigureAwait(false);
        if (row is null || row.Attempt != attempt)
        {
            await DeleteAsync(message, ct).ConfigureAwait(false);
            return;
        }
        string label = $"part {part + 1} of {record.Parts}";
        var now = DateTimeOffset.UtcNow;
        if (!row.IsDone && row.Status == JobStatus.Running && row.ClaimedBy != WorkerId && row.ClaimedUntil > now)
        {
            // A duplicate of a part another worker is running: back when that claim would lapse, in case its holder dies.
            log.LogInformation("job {JobId}: {Part} is being run by {Worker}; message {MessageId} comes back when that claim would expire", id, label, row.ClaimedBy, message.MessageId);
            await processor.LeaveUntilAsync(message, row.ClaimedUntil, ct).ConfigureAwait(false);
            return;
        }
        if (row.IsDone && record.AllPartsDone && record.ClaimedBy is { } finisher && finisher != JobStore.SplitClaim && finisher != WorkerId && record.ClaimedUntil > now)
        {
            // Another worker is finishing the job. This may be that worker's own message come back a moment early (clocks),
            // so it is left, not deleted: back when the finishing claim would lapse, it finds the job done or finishes it.
            log.LogInformation("job {JobId}: {Worker} is finishing it; message {MessageId} comes back when that claim would expire", id, finisher, message.MessageId);
            await processor.LeaveUntilAsync(message, record.ClaimedUntil, ct).ConfigureAwait(false);
            return;
        }
        // Deliveries count crashes before a claim, claims count attempts across messages (as for a whole job).
        if (message.DequeueCount > Options.MaxAttempts || (!row.IsDone && row.Attempts >= Options.MaxAttempts))
        {
            string reason = $"{label} gave up after {Options.MaxAttempts} attempts: {row.LastError ?? record.LastError ?? "the worker stopped before finishing (crashed, killed or timed out)"}";
            await FailJobAsync(id, part, reason).ConfigureAwait(false);
            await processor.PoisonAsync(message, id, reason, ct).ConfigureAwait(false);
            return;
        }
        bool run = !row.IsDone;
        if (run)
        {
            var (outcome, claimed) = await parts.TryClaimAsync(id, attempt, part, WorkerId, message.NextVisibleOn ?? DateTimeOffset.UtcNow + Options.VisibilityTimeout, ct).ConfigureAwait(false);
            switch (outcome)
            {
                case PartClaimOutcome.Stale:
                    await DeleteAsync(message, ct).ConfigureAwait(false);
                    return;
                case PartClaimOutcome.HeldByOther:
                    log.LogInformation("job {JobId}: {Part} is being run by {Worker}; message {MessageId} comes back when that claim would expire", id, label, claimed!.ClaimedBy, message.MessageId);
                    await processor.LeaveUntilAsync(message, claimed!.ClaimedUntil, ct).ConfigureAwait(false);
                    return;
                case PartClaimOutcome.AlreadyDone:
                    run = false;
                    break;
                default:
                    row = claimed!;
                    // The job's claim follows its parts from the first moment, so a short part that never renews still counts.
                    await jobs.ExtendSplitAsync(id, attempt, WorkerId, row.ClaimedUntil!.Value, Options.VisibilityTimeout / 3, ct).ConfigureAwait(false);
                    break;
            }
        }

        using var abandoned = new CancellationTokenSource();
        await using var lease = MessageLease.Start(storage.JobsQueue, message, Options.VisibilityTimeout, async until =>
        {
            // A part of a job that failed meanwhile (another part's bad input) or moved on to a new attempt stops within
            // one renewal instead of merging its shards to the end for nothing, and extends no claim.
            if (await jobs.GetAsync(id, CancellationToken.None).ConfigureAwait(false) is not { Status: JobStatus.Running } now || now.Attempt != attempt)
            {
                abandoned.Cancel();
                return;
            }
            await parts.ExtendClaimAsync(id, part, WorkerId, until, CancellationToken.None).ConfigureAwait(false);
            // The job's claim follows its parts (and then its finisher), so the sweep and the reconciler leave it alone.
            await jobs.ExtendSplitAsync(id, attempt, WorkerId, until, Options.VisibilityTimeout / 3, CancellationToken.None).ConfigureAwait(false);
        }, log);
        using var work = CancellationTokenSource.CreateLinkedTokenSource(ct, lease.Lost, abandoned.Token);
        try
        {
            var recipe = await processor.ReadRecipeAsync(job, work.Token).ConfigureAwait(false);
            if (run && !await RunPartAsync(job, recipe, row, label, lease, work.Token).ConfigureAwait(false)) return;
            var (current, allDone) = await jobs.MarkPartDoneAsync(id, attempt, part, CancellationToken.None).ConfigureAwait(false);
            if (!current)
            {
                // The job failed (another part's bad input) or moved on to a new attempt while this part ran.
                log.LogInformation("job {JobId}: {Part} finished, but {Attempt} is no longer the job's attempt; its files go", id, label, attempt);
                await processor.SweepAsync(id).ConfigureAwait(false);
                await lease.CompleteAsync().ConfigureAwait(false);
                return;
            }
            if (allDone)
            {
                await Diagnostics.TestHold.AtAsync(Diagnostics.TestHold.AllPartsDonePoint).ConfigureAwait(false);
                if (await FinishAsync(job, recipe, lease, work.Token).ConfigureAwait(false) is { } heldUntil)
                {
                    // Another worker holds the finishing: leave this message until that claim would lapse (as above).
                    var wait = heldUntil - DateTimeOffset.UtcNow + TimeSpan.FromSeconds(1);
                    await lease.ReleaseAsync(TimeSpan.FromSeconds(Math.Clamp(wait.TotalSeconds, 1, Options.VisibilityTimeout.TotalSeconds))).ConfigureAwait(false);
                    return;
                }
            }
            await lease.CompleteAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (work.IsCancellationRequested)
        {
            if (ct.IsCancellationRequested)
            {
                log.LogWarning("job {JobId}: {Part} interrupted; its message reappears by {Until}", id, label, lease.VisibleUntil);
                throw;
            }
            if (abandoned.IsCancellationRequested)
            {
                log.LogInformation("job {JobId}: {Part} stopped: {Attempt} is no longer the job's running attempt; its files go", id, label, attempt);
                await processor.SweepAsync(id).ConfigureAwait(false);
                await lease.CompleteAsync().ConfigureAwait(false);
                return;
            }
            log.LogWarning("job {JobId}: {Part} stopped: the message lease was lost to another receiver", id, label);
        }
        catch (CloudSoupException e) when (!e.IsRetriable)
        {
            log.LogWarning("job {JobId}: {Part} failed: {Error}", id, label, e.Message);
            await FailJobAsync(id, part, $"{label}: {e.Message}").ConfigureAwait(false);
            await lease.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            string reason = e is CloudSoupException ? e.Message : $"unexpected {e.GetType().Name}: {e.Message.Split('\n')[0]}";
            log.LogWarning(e is CloudSoupException ? null : e, "job {JobId}: {Part} failed, will retry: {Error}", id, label, reason);
            await parts.RecordRetryAsync(id, part, WorkerId, reason, CancellationToken.None).ConfigureAwait(false);
            await jobs.ReleaseFinishAsync(id, WorkerId, attempt, $"{label}: {reason}", CancellationToken.None).ConfigureAwait(false);
            await lease.ReleaseAsync(Options.RetryDelay).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Merges and commits the part's shards, stores its outcome and marks its row done. Returns false when the row
    /// would not be marked (this worker's claim on the part lapsed and another took it over): the message is released.
    /// </summary>
    private async Task<bool> RunPartAsync(JobMessage job, Recipe recipe, JobPartRecord row, string label, MessageLease lease, CancellationToken ct)
    {
        string id = job.JobId, attempt = job.Attempt!;
        int part = row.Part;
        log.LogInformation("job {JobId}: {Part} ({Work}) of {Attempt} (try {Tries}) on {Worker}", id, label, row.Work, attempt, row.Attempts, WorkerId);
        var progress = new JobProgressReporter(p => parts.ReportProgressAsync(id, part, WorkerId, p.Phase, p.Fraction, CancellationToken.None), id, Options.ProgressInterval, log);
        var watch = Stopwatch.StartNew();
        PartOutcome outcome;
        await using (var sink = new BlobOutputSink(storage.Container(Options.MergedContainer), JobAttempts.Folder(id, attempt)))
        {
            try
            {
                var stage1 = await ReadStage1Async(id, attempt, ct).ConfigureAwait(false);
                outcome = await processor.Runner().RunPartAsync(recipe, sink, new JobPart(part, row.FirstShard, row.ShardCount, row.InputBytes, row.FirstIngredient, row.IngredientCount), stage1, progress, ct, id).ConfigureAwait(false);
            }
            finally
            {
                await progress.FlushAsync().ConfigureAwait(false);
            }
        }
        outcome.Worker = WorkerId;
        outcome.Seconds = watch.Elapsed.TotalSeconds;
        outcome.Attempts = row.Attempts;
        await storage.Container(Options.JobsContainer).GetBlobClient(OutcomePath(id, attempt, part))
            .UploadAsync(BinaryData.FromBytes(outcome.ToJsonBytes()), overwrite: true, CancellationToken.None).ConfigureAwait(false);
        await Diagnostics.TestHold.AtAsync(Diagnostics.TestHold.PartCommittedPoint).ConfigureAwait(false);
        if (await parts.MarkSucceededAsync(id, part, WorkerId, outcome.BytesRead, outcome.BytesWritten, outcome.Seconds, CancellationToken.None).ConfigureAwait(false) is null)
        {
            log.LogWarning("job {JobId}: {Part} finished but its claim went to another worker; leaving the part to it", id, label);
            await lease.ReleaseAsync(Options.RetryDelay).ConfigureAwait(false);
            return false;
        }
        return true;
    }

    /// <summary>
    /// Every part is done: claims the finishing (only one worker at a time) and writes the index, the report and the
    /// commit point. Returns null when this message is done with (finished here, or the job ended), or, when another
    /// live worker holds the finishing, until when it holds it.
    /// </summary>
    private async Task<DateTimeOffset?> FinishAsync(JobMessage job, Recipe recipe, MessageLease lease, CancellationToken ct)
    {
        string id = job.JobId, attempt = job.Attempt!;
        var (claim, record) = await jobs.TryClaimFinishAsync(id, WorkerId, attempt, lease.VisibleUntil, CancellationToken.None).ConfigureAwait(false);
        if (claim != ClaimOutcome.Claimed)
        {
            log.LogInformation("job {JobId}: every part is done; the finishing is {Outcome} ({Worker})", id, claim, record?.ClaimedBy);
            return claim == ClaimOutcome.HeldByOther ? record?.ClaimedUntil ?? DateTimeOffset.UtcNow : null;
        }
        var rows = await parts.ListAsync(id, attempt, CancellationToken.None).ConfigureAwait(false);
        var outcomes = new List<PartOutcome>(rows.Count);
        var container = storage.Container(Options.JobsContainer);
        foreach (var row in rows)
            outcomes.Add(PartOutcome.FromJson(await ReadBoundedAsync(OutcomePath(id, attempt, row.Part), PartOutcome.MaxJsonBytes, ct).ConfigureAwait(false)));
        var progress = new JobProgressReporter(jobs, id, WorkerId, Options.ProgressInterval, log);
        Engine.Reports.MergeReport report;
        await using (var sink = new BlobOutputSink(storage.Container(Options.MergedContainer), JobAttempts.Folder(id, attempt)))
            report = await processor.Runner().FinishPartsAsync(recipe, sink, outcomes, record!.PartsNote, await ReadStage1Async(id, attempt, ct).ConfigureAwait(false), progress, ct, id).ConfigureAwait(false);
        await progress.FlushAsync().ConfigureAwait(false);
        // The commit point, as for a whole job: the record names the attempt only while this finishing claim is live.
        // Refused, another worker took the finishing over and commits the same files; the folder is live, so it stays.
        if (await jobs.MarkSucceededAsync(id, WorkerId, attempt, report.Outputs, CancellationToken.None).ConfigureAwait(false) is null)
        {
            log.LogWarning("job {JobId}: finished {Attempt} but the finishing claim went to another worker", id, attempt);
            return null;
        }
        await Diagnostics.TestHold.AtAsync(Diagnostics.TestHold.PublishedPoint).ConfigureAwait(false);
        log.LogInformation("job {JobId} succeeded in {Parts} parts: {Outputs}", id, rows.Count, string.Join(", ", report.Outputs));
        await DeleteHandOversAsync(id, attempt, rows.Count).ConfigureAwait(false);
        return null;
    }

    /// <summary>
    /// Deletes what the parts handed over beside the job (their outcomes, the first stage's decision) once the report
    /// holds it; best effort: what stays behind is small and read by nothing.
    /// </summary>
    private async Task DeleteHandOversAsync(string id, string attempt, int count)
    {
        var container = storage.Container(Options.JobsContainer);
        try
        {
            await container.GetBlobClient(Stage1Path(id, attempt)).DeleteIfExistsAsync().ConfigureAwait(false);
            for (int p = 0; p < count; p++) await container.GetBlobClient(OutcomePath(id, attempt, p)).DeleteIfExistsAsync().ConfigureAwait(false);
        }
        catch (Azure.RequestFailedException e)
        {
            log.LogInformation("job {JobId}: could not delete the parts' hand-over files ({Status})", id, e.Status);
        }
    }

    /// <summary>Fails the job with a part's reason and deletes the attempt's folder: nothing of a failed job stays.</summary>
    private async Task FailJobAsync(string id, int part, string reason)
    {
        await parts.MarkFailedAsync(id, part, reason, CancellationToken.None).ConfigureAwait(false);
        await jobs.MarkFailedAsync(id, reason, CancellationToken.None).ConfigureAwait(false);
        await processor.SweepAsync(id).ConfigureAwait(false);
    }

    private Task DeleteAsync(QueueMessage message, CancellationToken ct) =>
        storage.JobsQueue.DeleteMessageAsync(message.MessageId, message.PopReceipt, ct);
}
