using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Control.Intake;
using CloudSoup.Control.Storage;
using CloudSoup.Worker.Hosting;
using CloudSoup.Worker.Queue;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSoup.Tests.Service;

/// <summary>
/// Issue 15: an accepted job whose queue message is lost still runs, once; attempt folders no record names are
/// swept. Against Azurite, with the real reconciler, worker and (for the first test) the dev host composition.
/// </summary>
[Collection(AzuriteCollection.Name)]
public class JobReconcilerTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;

    /// <summary>Requeue after 4 s: longer than the tests' 3 s visibility timeout, as Validate requires.</summary>
    private CloudSoupOptions Options(TimeSpan? reconcileInterval = null)
    {
        var o = azurite.NewOptions();
        o.RequeueAfter = TimeSpan.FromSeconds(4);
        o.ReconcileInterval = reconcileInterval ?? TimeSpan.Zero;
        return o;
    }

    private static async Task<string> TwoModelsRecipeAsync(StorageClients storage, string experiment)
    {
        var ckpt = storage.Container(storage.Options.CheckpointsContainer);
        await ckpt.UploadModelAsync($"{experiment}/a.safetensors", TestBlobs.RandomModel(61));
        await ckpt.UploadModelAsync($"{experiment}/b.safetensors", TestBlobs.RandomModel(62));
        return $"merge_method: linear\nmodels: [{{model: {storage.Options.CheckpointsContainer}/{experiment}/a.safetensors}}, {{model: {storage.Options.CheckpointsContainer}/{experiment}/b.safetensors}}]\n";
    }

    /// <summary>Submits, then takes the message off the queue for good: the job is accepted and its message lost.</summary>
    private static async Task<string> SubmitAndLoseTheMessageAsync(StorageClients storage, JobStore jobs, string recipe)
    {
        var submitted = await new MergeSubmitter(storage, jobs, NullLogger<MergeSubmitter>.Instance).SubmitAsync(recipe, "test", None);
        Assert.True(submitted.Enqueued);
        var message = (await storage.JobsQueue.ReceiveMessageAsync()).Value;
        await storage.JobsQueue.DeleteMessageAsync(message.MessageId, message.PopReceipt);
        return submitted.Job.Id;
    }

    private static async Task<int> MessagesAsync(StorageClients storage) => (await storage.JobsQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount;

    [Fact]
    public async Task A_job_whose_message_was_lost_is_sent_again_by_the_host_s_reconciler_and_completes_once()
    {
        var options = Options(reconcileInterval: TimeSpan.FromMilliseconds(500));
        var storage = new StorageClients(options);
        await storage.EnsureCreatedAsync(None);
        var jobs = new JobStore(storage.JobsTable);
        string id = await SubmitAndLoseTheMessageAsync(storage, jobs, await TwoModelsRecipeAsync(storage, "lost"));

        // The dev host's composition: API, reconciler (ReconcileInterval) and the queue worker in one process.
        await using var host = await CloudSoupHost.StartAsync(options, new CloudSoupHostOptions
        {
            RunWatcher = false, MinimumLogLevel = LogLevel.Warning, ExtraServices = s => s.AddCloudSoupWorkerHostedService(options),
        }, None);
        var job = await jobs.WaitForJobAsync(id, j => JobStatus.IsFinished(j.Status), "the lost job to be sent again and run");

        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.Equal(1, job.Requeues);
        Assert.Equal(1, job.Attempts);
        Assert.Contains("reconciler", job.LastError);
        var folder = Assert.Single(await new AttemptFolders(storage.Container(options.MergedContainer)).ListAsync(id, None));
        Assert.Equal(job.CommittedAttempt, folder.Attempt);
        await TestBlobs.EventuallyAsync(async () => await MessagesAsync(storage) == 0 ? new object() : null, "the message to be deleted");
    }

    [Fact]
    public async Task Concurrent_reconcilers_send_one_message_and_a_job_sent_twice_still_runs_once()
    {
        var options = Options();
        var storage = new StorageClients(options);
        await storage.EnsureCreatedAsync(None);
        var jobs = new JobStore(storage.JobsTable);
        string id = await SubmitAndLoseTheMessageAsync(storage, jobs, await TwoModelsRecipeAsync(storage, "twice"));
        var reconcilers = Enumerable.Range(0, 3).Select(_ => new JobReconciler(storage, jobs, NullLogger<JobReconciler>.Instance)).ToList();

        Assert.Empty((await reconcilers[0].RunOnceAsync(None)).Requeued);             // not stale yet: nothing sent
        await TestBlobs.EventuallyAsync(async () => (await jobs.GetAsync(id, None))!.Timestamp is { } t && DateTimeOffset.UtcNow - t > options.RequeueAfter ? new object() : null,
            "the job to look stale");
        var passes = await Task.WhenAll(reconcilers.Select(r => r.RunOnceAsync(None)));
        Assert.Equal(1, passes.Sum(p => p.Requeued.Count));                              // one of them won the ETag race
        Assert.Equal(1, await MessagesAsync(storage));
        Assert.Empty((await reconcilers[1].RunOnceAsync(None)).Requeued);              // just sent: not stale again
        Assert.Equal(1, (await jobs.GetAsync(id, None))!.Requeues);

        // A second message for the same job (what a requeue does when the first message was only stuck in a backlog),
        // and two workers racing for both: the claim lets one run it, the other message is deleted unrun.
        var queued = (await jobs.GetAsync(id, None))!;
        await storage.JobsQueue.SendMessageAsync(JobMessage.For(id, queued.RecipePath).ToJson());
        var workers = Enumerable.Range(0, 2).Select(_ => new JobProcessor(storage, jobs, NullLogger<JobProcessor>.Instance)).ToList();
        await Task.WhenAll(workers.Select(w => Task.Run(async () =>
        {
            await TestBlobs.EventuallyAsync(async () =>
            {
                if (!await w.ProcessNextAsync(None)) await Task.Delay(100);
                return await MessagesAsync(storage) == 0 && (await jobs.GetAsync(id, None))!.Status == JobStatus.Succeeded ? new object() : null;
            }, "both messages to be handled");
        })));

        var job = (await jobs.GetAsync(id, None))!;
        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.Equal(1, job.Attempts);                                                   // run once
        var folder = Assert.Single(await new AttemptFolders(storage.Container(options.MergedContainer)).ListAsync(id, None));
        Assert.Equal(job.CommittedAttempt, folder.Attempt);
    }

    [Fact]
    public async Task A_running_job_whose_worker_and_message_are_both_gone_is_sent_again()
    {
        var options = Options();
        var storage = new StorageClients(options);
        await storage.EnsureCreatedAsync(None);
        var jobs = new JobStore(storage.JobsTable);
        string id = await SubmitAndLoseTheMessageAsync(storage, jobs, await TwoModelsRecipeAsync(storage, "gone"));
        // A worker claimed it and vanished with its message (its lease found the message deleted, say).
        var (_, claimed) = await jobs.TryClaimAsync(id, "vanished-worker", DateTimeOffset.UtcNow.AddSeconds(1), None);
        await storage.Container(options.MergedContainer).UploadTextAsync($"{JobAttempts.Folder(id, claimed!.Attempt!)}/model-00001-of-00002.safetensors", "half a result");
        var reconciler = new JobReconciler(storage, jobs, NullLogger<JobReconciler>.Instance);

        var pass = await TestBlobs.EventuallyAsync(async () => await reconciler.RunOnceAsync(None) is { Requeued.Count: > 0 } r ? r : null, "the reconciler to send it again");
        Assert.Equal([id], pass.Requeued);
        var requeued = (await jobs.GetAsync(id, None))!;
        Assert.Equal(JobStatus.Queued, requeued.Status);
        Assert.Null(requeued.ClaimedBy);
        Assert.Contains("worker stopped", requeued.LastError);

        var worker = new JobProcessor(storage, jobs, NullLogger<JobProcessor>.Instance);
        Assert.True(await worker.ProcessNextAsync(None));
        var job = (await jobs.GetAsync(id, None))!;
        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.Equal(2, job.Attempts);
        var folder = Assert.Single(await new AttemptFolders(storage.Container(options.MergedContainer)).ListAsync(id, None));
        Assert.Equal(job.CommittedAttempt, folder.Attempt);                             // the vanished attempt's half result is gone
    }

    [Fact]
    public async Task The_sweep_deletes_only_folders_that_can_never_be_a_result_and_is_idempotent()
    {
        var options = Options();
        options.SweepInterval = TimeSpan.Zero;                                         // every pass sweeps
        var storage = new StorageClients(options);
        await storage.EnsureCreatedAsync(None);
        var jobs = new JobStore(storage.JobsTable);
        var merged = storage.Container(options.MergedContainer);
        async Task<string> NewJobAsync()
        {
            string id = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())[..JobIds.Length];
            await jobs.CreateIfAbsentAsync(new JobRecord { RowKey = id, Created = DateTimeOffset.UtcNow, RecipePath = "jobs/x/recipe.yaml" }, None);
            return id;
        }
        async Task<string> FolderAsync(string id, string attempt)
        {
            await merged.UploadTextAsync($"{id}/{attempt}/model.safetensors", "bytes");
            await merged.UploadTextAsync($"{id}/{attempt}/report.json", "{}");
            return $"{id}/{attempt}/";
        }

        // Succeeded: the committed attempt stays, a killed earlier attempt goes; a file of the old layout is not an attempt.
        string done = await NewJobAsync();
        var (_, first) = await jobs.TryClaimAsync(done, "w1", DateTimeOffset.UtcNow.AddMinutes(-5), None);
        string killed = await FolderAsync(done, first!.Attempt!);
        var (_, second) = await jobs.TryClaimAsync(done, "w2", DateTimeOffset.UtcNow.AddMinutes(5), None);
        string result = await FolderAsync(done, second!.Attempt!);
        Assert.NotNull(await jobs.MarkSucceededAsync(done, "w2", second.Attempt!, [$"{options.MergedContainer}/{result}model.safetensors"], None));
        await merged.UploadTextAsync($"{done}/model.safetensors", "old layout");
        // Failed: everything goes.
        string failed = await NewJobAsync();
        var (_, failedClaim) = await jobs.TryClaimAsync(failed, "w3", DateTimeOffset.UtcNow.AddMinutes(5), None);
        string failedFolder = await FolderAsync(failed, failedClaim!.Attempt!);
        await jobs.MarkFailedAsync(failed, "bad input", None);
        // Running: the live attempt stays (it may still publish); a folder of an earlier attempt goes.
        string running = await NewJobAsync();
        string stale = await FolderAsync(running, JobAttempts.NewId(1));
        var (_, live) = await jobs.TryClaimAsync(running, "w4", DateTimeOffset.UtcNow.AddSeconds(30), None);
        string liveFolder = await FolderAsync(running, live!.Attempt!);
        // No record at all: not ours to judge.
        string orphan = await FolderAsync(Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())[..JobIds.Length], JobAttempts.NewId(1));

        var reconciler = new JobReconciler(storage, jobs, NullLogger<JobReconciler>.Instance);
        var pass = await reconciler.RunOnceAsync(None);
        Assert.True(pass.SweepRan);
        Assert.Equal(new[] { killed, failedFolder, stale }.Order(), pass.Swept.Order());
        var left = await merged.ListAsync("");
        foreach (var kept in new[] { result, liveFolder, orphan })
            Assert.Contains(left, n => n.StartsWith(kept, StringComparison.Ordinal));
        Assert.Contains($"{done}/model.safetensors", left);
        Assert.DoesNotContain(left, n => n.StartsWith(killed, StringComparison.Ordinal) || n.StartsWith(failedFolder, StringComparison.Ordinal) || n.StartsWith(stale, StringComparison.Ordinal));
        var again = await reconciler.RunOnceAsync(None);
        Assert.True(again.SweepRan);
        Assert.Empty(again.Swept);                                                      // a second pass finds nothing more
        Assert.Equal(left.Order(), (await merged.ListAsync("")).Order());
    }

    [Fact]
    public async Task The_sweep_runs_once_per_sweep_interval_folder_by_folder_across_listing_pages()
    {
        var options = Options();
        options.SweepInterval = TimeSpan.FromHours(1);
        var storage = new StorageClients(options);
        await storage.EnsureCreatedAsync(None);
        var jobs = new JobStore(storage.JobsTable);
        var merged = storage.Container(options.MergedContainer);
        async Task<(string Id, string Folder)> FailedJobWithFolderAsync(int blobs)
        {
            string id = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())[..JobIds.Length];
            await jobs.CreateIfAbsentAsync(new JobRecord { RowKey = id, Created = DateTimeOffset.UtcNow, RecipePath = "jobs/x/recipe.yaml" }, None);
            var (_, claim) = await jobs.TryClaimAsync(id, "w", DateTimeOffset.UtcNow.AddMinutes(5), None);
            for (int i = 0; i < blobs; i++) await merged.UploadTextAsync($"{id}/{claim!.Attempt}/shard-{i}.safetensors", "bytes");
            await jobs.MarkFailedAsync(id, "bad input", None);
            return (id, $"{id}/{claim!.Attempt}/");
        }
        var first = await FailedJobWithFolderAsync(5);
        var second = await FailedJobWithFolderAsync(3);
        await merged.UploadTextAsync($"{first.Id}/notes.txt", "not an attempt");

        // Two blobs a page: each folder's names span pages, and the stream still hands out each folder once, whole.
        var streamed = new List<AttemptFolder>();
        await foreach (var folder in new AttemptFolders(merged).StreamAllAsync(None, pageSize: 2)) streamed.Add(folder);
        Assert.Equal(new[] { first.Folder, second.Folder }.Order(), streamed.Select(f => f.Prefix).Order());
        Assert.Equal(5, streamed.Single(f => f.JobId == first.Id).Blobs.Count);
        Assert.Equal(3, streamed.Single(f => f.JobId == second.Id).Blobs.Count);

        var reconciler = new JobReconciler(storage, jobs, NullLogger<JobReconciler>.Instance);
        var pass = await reconciler.RunOnceAsync(None);                                 // a host's first pass sweeps
        Assert.True(pass.SweepRan);
        Assert.Equal(new[] { first.Folder, second.Folder }.Order(), pass.Swept.Order());
        var later = await FailedJobWithFolderAsync(2);
        var next = await reconciler.RunOnceAsync(None);                                 // within the hour: no listing
        Assert.False(next.SweepRan);
        Assert.Empty(next.Swept);
        Assert.Equal(2, (await merged.ListAsync(later.Folder)).Count);
        var restarted = await new JobReconciler(storage, jobs, NullLogger<JobReconciler>.Instance).RunOnceAsync(None);
        Assert.True(restarted.SweepRan);
        Assert.Equal([later.Folder], restarted.Swept);
        Assert.Equal([$"{first.Id}/notes.txt"], await merged.ListAsync(""));
    }
}
