// One queue delivery, start to finish (README.md "The worker"; docs/azure-notes.md §3):
//   receive (invisible for VisibilityTimeout) → parse → look up the job → skip duplicates of finished jobs →
//   give up after MaxAttempts (deliveries or claims) → claim (a new attempt) → delete what earlier attempts left →
//   run MergeJobRunner with blob input and staged blob output into merged/<job-id>/<attempt>/, renewing the
//   message while it runs → commit → mark succeeded, naming the attempt (the commit point readers see) →
//   delete the message.
// A recipe with a parallelism section may be split (docs/fanout.md): the claim then plans the parts, writes their rows
// and sends one message per part, and PartProcessor handles those messages.
// Bad input (any non-retriable CloudSoupException) fails the job at once; anything else is retried by
// letting the message reappear, and DequeueCount counts the attempts, crashes included. Whenever an attempt ends
// without being the result, its folder is deleted (AttemptSweeper); what a killed worker could not delete, the
// next attempt or the reconciler's sweep does.
using System.Text;
using Azure.Storage.Queues.Models;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Evaluation.Sandbox;
using CloudSoup.Control.Intake;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Storage;
using CloudSoup.Worker.Diagnostics;
using CloudSoup.Worker.Storage;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Worker.Queue;

public sealed class JobProcessor
{
    private readonly StorageClients _storage;
    private readonly JobStore _jobs;
    private readonly ILogger _log;
    private readonly IJobEvaluator? _evaluator;
    private readonly ICheckpointStore _store;
    private readonly AttemptSweeper _sweeper;
    private readonly ICheckpointStore _recipes;
    private readonly InputSources _inputs;
    private readonly EvalModelLoader _models;
    private readonly PartProcessor _partProcessor;

    /// <param name="store">Where model references are read from; the blob store limited to the input sources by default.</param>
    /// <param name="models">Loads evaluation models; the sandbox as configured (CloudSoup__EvalSandbox, ...) by default.</param>
    public JobProcessor(StorageClients storage, JobStore jobs, ILogger<JobProcessor> log, IJobEvaluator? evaluator = null, ICheckpointStore? store = null,
        EvalModelLoader? models = null)
    {
        _storage = storage;
        _jobs = jobs;
        _log = log;
        _evaluator = evaluator;
        _inputs = InputSources.From(storage.Options);
        _store = store ?? new BlobCheckpointStore(storage.Blobs, _inputs);
        _recipes = new BlobCheckpointStore(storage.Blobs);
        _models = models ?? new EvalModelLoader(SandboxSettings.FromOptions(storage.Options));
        _sweeper = new AttemptSweeper(storage, jobs, log);
        Parts = new JobPartStore(storage.JobsTable);
        _partProcessor = new PartProcessor(this, storage, jobs, Parts, log);
        if (TestHold.Armed is { } point)
            log.LogWarning("{Variable}={Point} is set: this worker stops for good at that point (a test hook; never set it in a deployment)", TestHold.Variable, point);
    }

    /// <summary>Identifies this worker's claims in job records.</summary>
    public string WorkerId { get; } = $"{Environment.MachineName}-{Guid.NewGuid().ToString("N")[..8]}";

    private CloudSoupOptions Options => _storage.Options;

    /// <summary>The rows of split jobs' parts.</summary>
    internal JobPartStore Parts { get; }

    /// <summary>The job runner with this worker's store, evaluator, device and evaluation-model loader.</summary>
    internal MergeJobRunner Runner() => new(_store, _evaluator, Options.Device, _models);

    /// <summary>Reads and checks the recipe a message names (bounded read; parsed; input sources and evaluation ceilings checked again).</summary>
    internal async Task<Recipe> ReadRecipeAsync(JobMessage job, CancellationToken ct)
    {
        var recipeBytes = await _recipes.ReadAllAsync(job.Recipe, RecipeLimits.MaxBytes, ct).ConfigureAwait(false);
        var recipe = RecipeParser.Parse(Encoding.UTF8.GetString(recipeBytes));
        _inputs.Check(recipe);   // again here: the recipe may predate a change of CloudSoup__InputSources
        EvalLimitCeilings.From(Options).Check(recipe);
        return recipe;
    }

    /// <summary>Handles at most one message. Returns false when the queue had nothing to hand out.</summary>
    public async Task<bool> ProcessNextAsync(CancellationToken ct)
    {
        var queue = _storage.JobsQueue;
        QueueMessage? message = (await queue.ReceiveMessageAsync(Options.VisibilityTimeout, ct).ConfigureAwait(false)).Value;
        if (message is null) return false;

        var job = JobMessage.TryParse(message.Body.ToString(), out var unreadable);
        if (job is null)
        {
            await PoisonAsync(message, null, unreadable!, ct).ConfigureAwait(false);
            return true;
        }
        if (job.Recipe != $"{Options.JobsContainer}/{job.JobId}/{MergeSubmitter.RecipeFileName}")
        {
            // Only the submitter writes messages, and it stores the recipe there; anything else is not ours to read.
            await PoisonAsync(message, job.JobId, $"the message's recipe is not {Options.JobsContainer}/{job.JobId}/{MergeSubmitter.RecipeFileName}", ct).ConfigureAwait(false);
            return true;
        }
        var record = await _jobs.GetAsync(job.JobId, ct).ConfigureAwait(false);
        if (record is null)
        {
            await PoisonAsync(message, job.JobId, $"job {job.JobId} does not exist", ct).ConfigureAwait(false);
            return true;
        }
        if (JobStatus.IsFinished(record.Status))
        {
            _log.LogInformation("job {JobId} is already {Status}; deleting duplicate message {MessageId}", job.JobId, record.Status, message.MessageId);
            await queue.DeleteMessageAsync(message.MessageId, message.PopReceipt, ct).ConfigureAwait(false);
            return true;
        }
        if (job.Part != null)
        {
            await _partProcessor.ProcessAsync(message, job, record, ct).ConfigureAwait(false);
            return true;
        }
        if (HeldByAnother(record))
        {
            await LeaveForClaimHolderAsync(message, record, ct).ConfigureAwait(false);
            return true;
        }
        // Deliveries count crashes before a claim; claims count attempts across messages (the reconciler's new
        // message starts its own delivery count).
        if (message.DequeueCount > Options.MaxAttempts || record.Attempts >= Options.MaxAttempts)
        {
            string reason = $"gave up after {Options.MaxAttempts} attempts: {record.LastError ?? "the worker stopped before finishing (crashed, killed or timed out)"}";
            await _jobs.MarkFailedAsync(job.JobId, reason, ct).ConfigureAwait(false);
            await SweepAsync(job.JobId).ConfigureAwait(false);       // what the killed attempts left: nothing of a failed job stays
            await PoisonAsync(message, job.JobId, reason, ct).ConfigureAwait(false);
            return true;
        }

        var (outcome, claimed) = await _jobs.TryClaimAsync(job.JobId, WorkerId, message.NextVisibleOn ?? DateTimeOffset.UtcNow + Options.VisibilityTimeout, ct).ConfigureAwait(false);
        switch (outcome)
        {
            case ClaimOutcome.AlreadyFinished:
                await queue.DeleteMessageAsync(message.MessageId, message.PopReceipt, ct).ConfigureAwait(false);
                return true;
            case ClaimOutcome.HeldByOther:
                await LeaveForClaimHolderAsync(message, claimed!, ct).ConfigureAwait(false);
                return true;
            case ClaimOutcome.NotFound:
                await PoisonAsync(message, job.JobId, $"job {job.JobId} does not exist", ct).ConfigureAwait(false);
                return true;
        }
        await RunAsync(message, job, claimed!.Attempt!, ct).ConfigureAwait(false);
        return true;
    }

    private bool HeldByAnother(JobRecord record) =>
        record.Status == JobStatus.Running && record.ClaimedBy != WorkerId && record.ClaimedUntil > DateTimeOffset.UtcNow;

    /// <summary>
    /// Another worker is running this job (this is a duplicate delivery): leave the message, and let it
    /// reappear when that claim would expire, in case its holder dies.
    /// </summary>
    private Task LeaveForClaimHolderAsync(QueueMessage message, JobRecord record, CancellationToken ct)
    {
        _log.LogInformation("job {JobId} is being run by {Worker}; message {MessageId} comes back when that claim would expire", record.Id, record.ClaimedBy, message.MessageId);
        return LeaveUntilAsync(message, record.ClaimedUntil, ct);
    }

    /// <summary>Leaves the message for a claim holder: it reappears when the claim (valid until <paramref name="until"/>) would expire, in case its holder dies.</summary>
    internal async Task LeaveUntilAsync(QueueMessage message, DateTimeOffset? until, CancellationToken ct)
    {
        var wait = (until ?? DateTimeOffset.UtcNow) - DateTimeOffset.UtcNow + TimeSpan.FromSeconds(1);
        wait = TimeSpan.FromSeconds(Math.Clamp(wait.TotalSeconds, 1, Options.VisibilityTimeout.TotalSeconds));
        await _storage.JobsQueue.UpdateMessageAsync(message.MessageId, message.PopReceipt, visibilityTimeout: wait, cancellationToken: ct).ConfigureAwait(false);
    }

    private async Task RunAsync(QueueMessage message, JobMessage job, string attempt, CancellationToken ct)
    {
        string id = job.JobId;
        _log.LogInformation("job {JobId}: {Attempt} (delivery {Delivery}) on {Worker}", id, attempt, message.DequeueCount, WorkerId);
        await using var lease = MessageLease.Start(_storage.JobsQueue, message, Options.VisibilityTimeout,
            until => _jobs.ExtendClaimAsync(id, WorkerId, until, CancellationToken.None), _log);
        using var work = CancellationTokenSource.CreateLinkedTokenSource(ct, lease.Lost);
        var progress = new JobProgressReporter(_jobs, id, WorkerId, Options.ProgressInterval, _log);
        // Earlier attempts (a worker killed mid-commit, a zombie whose claim lapsed) can no longer publish: clear their folders.
        await SweepAsync(id).ConfigureAwait(false);
        try
        {
            var recipe = await ReadRecipeAsync(job, work.Token).ConfigureAwait(false);
            string? partsNote = null;
            if (recipe.Parallelism != null)
            {
                var layout = await Runner().PlanPartsAsync(recipe, Options.Parallelism.PartBytes, progress, work.Token).ConfigureAwait(false);
                if (layout.IsSplit)
                {
                    await progress.FlushAsync().ConfigureAwait(false);
                    await SplitAsync(job, attempt, layout, lease).ConfigureAwait(false);
                    return;
                }
                partsNote = layout.Note;
            }
            await using var sink = new BlobOutputSink(_storage.Container(Options.MergedContainer), JobAttempts.Folder(id, attempt));
            var report = await Runner().RunAsync(recipe, sink, progress, work.Token, id, partsNote).ConfigureAwait(false);
            await progress.FlushAsync().ConfigureAwait(false);
            // The commit point: every output of this attempt is committed; the record now names it, if it still may.
            if (await _jobs.MarkSucceededAsync(id, WorkerId, attempt, report.Outputs, CancellationToken.None).ConfigureAwait(false) is null)
            {
                await NotPublishedAsync(id, attempt, lease).ConfigureAwait(false);
                return;
            }
            await TestHold.AtAsync(TestHold.PublishedPoint).ConfigureAwait(false);
            await lease.CompleteAsync().ConfigureAwait(false);
            _log.LogInformation("job {JobId} succeeded: {Outputs}", id, string.Join(", ", report.Outputs));
        }
        catch (OperationCanceledException) when (work.IsCancellationRequested)
        {
            await progress.FlushAsync().ConfigureAwait(false);
            if (ct.IsCancellationRequested)
            {
                // Shutting down (or killed): publish nothing, keep the message; it reappears after its visibility
                // timeout and the next worker takes the job over once this claim has expired.
                _log.LogWarning("job {JobId} interrupted; its message reappears by {Until}", id, lease.VisibleUntil);
                throw;
            }
            _log.LogWarning("job {JobId} stopped: the message lease was lost to another receiver", id);
            await SweepAsync(id).ConfigureAwait(false);
        }
        catch (CloudSoupException e) when (!e.IsRetriable)
        {
            await progress.FlushAsync().ConfigureAwait(false);
            _log.LogWarning("job {JobId} failed: {Error}", id, e.Message);
            await _jobs.MarkFailedAsync(id, e.Message, CancellationToken.None).ConfigureAwait(false);
            await SweepAsync(id).ConfigureAwait(false);
            await lease.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await progress.FlushAsync().ConfigureAwait(false);
            string reason = e is CloudSoupException ? e.Message : $"unexpected {e.GetType().Name}: {e.Message.Split('\n')[0]}";
            _log.LogWarning(e is CloudSoupException ? null : e, "job {JobId} {Attempt} failed, will retry: {Error}", id, attempt, reason);
            await _jobs.RecordRetryAsync(id, WorkerId, reason, CancellationToken.None).ConfigureAwait(false);
            await SweepAsync(id).ConfigureAwait(false);
            await lease.ReleaseAsync(Options.RetryDelay).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Hands the claimed job to its parts: the first stage beside the job (scope alignment's scopes, a whole-model
    /// decision), one row per part, then the record (ETag-conditional, only while this claim
    /// is live) says how many parts this attempt has, then one message per part; this message is done. A worker killed
    /// in between leaves the job message to reappear, and the next claim starts a new attempt and splits again.
    /// </summary>
    private async Task SplitAsync(JobMessage job, string attempt, PartLayout layout, MessageLease lease)
    {
        string id = job.JobId;
        if (layout.Stage1 is { } stage1)
            await _storage.Container(Options.JobsContainer).GetBlobClient(PartProcessor.Stage1Path(id, attempt))
                .UploadAsync(BinaryData.FromBytes(stage1.ToJsonBytes()), overwrite: true, CancellationToken.None).ConfigureAwait(false);
        await Parts.CreateAsync(layout.Parts.Select(p => JobPartRecord.New(id, attempt, p.Index, p.FirstShard, p.ShardCount, p.InputBytes, p.FirstIngredient, p.IngredientCount)).ToList(), CancellationToken.None).ConfigureAwait(false);
        if (await _jobs.StartPartsAsync(id, WorkerId, attempt, layout.Parts.Count, layout.Note, lease.VisibleUntil, CancellationToken.None).ConfigureAwait(false) is null)
        {
            await NotPublishedAsync(id, attempt, lease).ConfigureAwait(false);
            return;
        }
        foreach (var part in layout.Parts)
            await _storage.JobsQueue.SendMessageAsync(JobMessage.ForPart(id, job.Recipe, part.Index, attempt).ToJson(), timeToLive: TimeSpan.FromSeconds(-1)).ConfigureAwait(false);
        _log.LogInformation("job {JobId}: {Attempt} split into {Parts} parts ({Work}; {Bytes} bytes of input)", id, attempt, layout.Parts.Count,
            layout.Parts[0].EvaluatesIngredients ? $"a soup's {layout.Parts.Sum(p => p.IngredientCount)} ingredients to evaluate" : $"{layout.Shards} shards", layout.InputBytes);
        await lease.CompleteAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// This attempt committed its files but the record would not name it: its claim lapsed past the grace (another
    /// worker or the reconciler took over), or the job ended elsewhere. Its folder goes; the job carries on without it.
    /// </summary>
    private async Task NotPublishedAsync(string id, string attempt, MessageLease lease)
    {
        var now = await _jobs.GetAsync(id, CancellationToken.None).ConfigureAwait(false);
        _log.LogWarning("job {JobId}: {Attempt} finished but may no longer publish (the job is {Status}, claimed by {Worker} for {Current}); discarding its outputs",
            id, attempt, now?.Status, now?.ClaimedBy, now?.Attempt);
        if (now is null || JobStatus.IsFinished(now.Status))
        {
            await SweepAsync(id).ConfigureAwait(false);
            await lease.CompleteAsync().ConfigureAwait(false);
            return;
        }
        await _jobs.RecordRetryAsync(id, WorkerId, $"{attempt} lost its claim before publishing its result", CancellationToken.None).ConfigureAwait(false);
        await SweepAsync(id).ConfigureAwait(false);
        await lease.ReleaseAsync(Options.RetryDelay).ConfigureAwait(false);
    }

    /// <summary>Deletes this job's attempt folders that can never be its result; a failure here only leaves work for the reconciler.</summary>
    internal async Task SweepAsync(string id)
    {
        try
        {
            await _sweeper.SweepJobAsync(id, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Azure.RequestFailedException or HttpRequestException)
        {
            _log.LogWarning("job {JobId}: could not delete abandoned attempt folders ({Error}); the reconciler's sweep will", id, e.Message.Split('\n')[0]);
        }
    }

    internal async Task PoisonAsync(QueueMessage message, string? jobId, string reason, CancellationToken ct)
    {
        _log.LogWarning("message {MessageId} moved to {Poison}: {Reason}", message.MessageId, Options.PoisonQueue, reason);
        var poison = new PoisonMessage(1, reason, jobId, message.Body.ToString(), message.MessageId, message.DequeueCount, DateTimeOffset.UtcNow);
        await _storage.PoisonQueue.SendMessageAsync(poison.ToJson(), timeToLive: TimeSpan.FromSeconds(-1), cancellationToken: ct).ConfigureAwait(false);
        await _storage.JobsQueue.DeleteMessageAsync(message.MessageId, message.PopReceipt, ct).ConfigureAwait(false);
    }
}
