using System.Text.Json;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Queues;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Storage;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Intake;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Storage;
using CloudSoup.Worker.Storage;
using CloudSoup.Worker.Queue;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;

namespace CloudSoup.Tests.Service;

[Collection(AzuriteCollection.Name)]
public class JobProcessorTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly double[] Weights = [1.0, 2.0, 0.5];

    private sealed record Setup(StorageClients Storage, JobStore Jobs, MergeSubmitter Submitter)
    {
        public string Ckpt => Storage.Options.CheckpointsContainer;
        public string Merged => Storage.Options.MergedContainer;
        public JobProcessor Processor(ICheckpointStore? store = null) =>
            new(Storage, Jobs, NullLogger<JobProcessor>.Instance, evaluator: null, store);
    }

    private async Task<Setup> NewSetupAsync(Action<CloudSoupOptions>? configure = null)
    {
        var storage = await azurite.NewStorageAsync(configure);
        var jobs = new JobStore(storage.JobsTable);
        return new Setup(storage, jobs, new MergeSubmitter(storage, jobs, NullLogger<MergeSubmitter>.Instance));
    }

    /// <summary>Uploads three random models and returns a weighted linear recipe over them, plus the models.</summary>
    private static async Task<(string Recipe, List<Dictionary<string, torch.Tensor>> Models)> ThreeModelsAsync(Setup s, string experiment = "exp", int bigElements = 0)
    {
        var models = new List<Dictionary<string, torch.Tensor>>();
        var lines = new List<string> { "merge_method: linear", "models:" };
        for (int i = 0; i < 3; i++)
        {
            var m = TestBlobs.RandomModel(100 + i);
            if (bigElements > 0) m["big.weight"] = torch.randn(new long[] { bigElements }, generator: new torch.Generator((ulong)(200 + i)));
            models.Add(m);
            await s.Storage.Container(s.Ckpt).UploadModelAsync($"{experiment}/m{i}.safetensors", m);
            lines.Add($"  - model: {s.Ckpt}/{experiment}/m{i}.safetensors");
            lines.Add($"    parameters: {{weight: {Weights[i]}}}");
        }
        return (string.Join('\n', lines), models);
    }

    [Fact]
    public async Task Worker_merges_and_the_merged_tensors_equal_an_independent_computation()
    {
        var s = await NewSetupAsync();
        // One 8.8 MB tensor per model: ranged reads split into parallel chunks, and the output spans two 8 MiB blocks.
        var (recipe, models) = await ThreeModelsAsync(s, bigElements: 2_200_000);
        var submitted = await s.Submitter.SubmitAsync(recipe, "test", None);
        Assert.True(submitted.Enqueued);
        Assert.Equal(JobStatus.Queued, submitted.Job.Status);

        var worker = s.Processor();
        Assert.True(await worker.ProcessNextAsync(None));
        var job = (await s.Jobs.GetAsync(submitted.Job.Id, None))!;
        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.Equal(1, job.Attempts);
        Assert.Equal(1.0, job.Progress);
        Assert.NotNull(job.CommittedAttempt);
        Assert.Equal(job.Attempt, job.CommittedAttempt);
        string folder = JobAttempts.Folder(job.Id, job.CommittedAttempt!);           // the record names the attempt
        Assert.Contains($"{s.Merged}/{folder}/model.safetensors", job.Outputs);
        Assert.Contains($"{s.Merged}/{folder}/report.json", job.Outputs);
        Assert.False(await worker.ProcessNextAsync(None));                     // the message was deleted

        await using var merged = await Checkpoint.OpenAsync(new BlobCheckpointStore(s.Storage.Blobs), $"{s.Merged}/{folder}/model.safetensors", None);
        Assert.Equal(models[0].Keys.Order(), merged.TensorNames.Order());
        foreach (var name in models[0].Keys)
        {
            var inputs = models.Select(m => m[name].data<float>().ToArray()).ToList();
            using var actualTensor = await merged.ReadTensorAsync(name, None);
            var actual = actualTensor.data<float>().ToArray();
            Assert.Equal(inputs[0].Length, actual.Length);
            for (int k = 0; k < actual.Length; k++)
            {
                double expected = (Weights[0] * inputs[0][k] + Weights[1] * inputs[1][k] + Weights[2] * inputs[2][k]) / Weights.Sum();
                Assert.True(Math.Abs(expected - actual[k]) <= 1e-5 * (1 + Math.Abs(expected)), $"{name}[{k}]: expected {expected}, got {actual[k]}");
            }
        }
        var blocks = await s.Storage.Container(s.Merged).GetBlockBlobClient($"{folder}/model.safetensors").GetBlockListAsync(BlockListTypes.Committed);
        Assert.Equal(2, blocks.Value.CommittedBlocks.Count());
        var report = JsonDocument.Parse((await s.Storage.Container(s.Merged).GetBlobClient($"{folder}/report.json").DownloadContentAsync()).Value.Content.ToString());
        Assert.Equal(job.Id, report.RootElement.GetProperty("jobId").GetString());
        Assert.Equal(3, report.RootElement.GetProperty("inputs").GetArrayLength());
    }

    [Fact]
    public async Task A_corrupt_checkpoint_fails_the_job_with_a_reason_and_publishes_nothing()
    {
        var s = await NewSetupAsync();
        var ckpt = s.Storage.Container(s.Ckpt);
        await ckpt.UploadModelAsync("exp/good.safetensors", TestBlobs.RandomModel(1));
        var junk = new byte[300];
        new Random(5).NextBytes(junk);
        await ckpt.GetBlobClient("exp/bad.safetensors").UploadAsync(BinaryData.FromBytes(junk));
        string recipe = $"merge_method: linear\nmodels: [{{model: {s.Ckpt}/exp/good.safetensors}}, {{model: {s.Ckpt}/exp/bad.safetensors}}]";
        var submitted = await s.Submitter.SubmitAsync(recipe, "test", None);

        var worker = s.Processor();
        Assert.True(await worker.ProcessNextAsync(None));
        var job = (await s.Jobs.GetAsync(submitted.Job.Id, None))!;
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Contains($"{s.Ckpt}/exp/bad.safetensors", job.Error);
        Assert.Equal(1, job.Attempts);                                          // bad input is not retried
        Assert.False(await worker.ProcessNextAsync(None));
        Assert.Empty(await s.Storage.Container(s.Merged).ListAsync($"{job.Id}/"));

        // Submitting a failed job again runs it again (here: fails again, with the same reason).
        var again = await s.Submitter.SubmitAsync(recipe, "test", None);
        Assert.True(again.Enqueued);
        Assert.Equal(job.Id, again.Job.Id);
        Assert.Equal(JobStatus.Queued, again.Job.Status);
        Assert.True(await worker.ProcessNextAsync(None));
        Assert.Equal(job.Error, (await s.Jobs.GetAsync(job.Id, None))!.Error);
    }

    [Fact]
    public async Task A_missing_blob_is_refused_at_submit_naming_the_field_and_queues_nothing()
    {
        var s = await NewSetupAsync();
        await s.Storage.Container(s.Ckpt).UploadModelAsync("exp/a.safetensors", TestBlobs.RandomModel(1));
        string recipe = $"merge_method: linear\nmodels: [{{model: {s.Ckpt}/exp/a.safetensors}}, {{model: {s.Ckpt}/exp/ghost.safetensors}}]";
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => s.Submitter.SubmitAsync(recipe, "test", None));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.StartsWith("models[1].model:", e.Message);
        Assert.Contains($"{s.Ckpt}/exp/ghost.safetensors", e.Message);
        Assert.Contains("does not exist", e.Message);
        Assert.Null((await s.Storage.JobsQueue.PeekMessageAsync()).Value);
    }

    [Fact]
    public async Task A_blob_deleted_after_submit_fails_the_job_naming_the_model()
    {
        var s = await NewSetupAsync();
        await s.Storage.Container(s.Ckpt).UploadModelAsync("exp/a.safetensors", TestBlobs.RandomModel(1));
        await s.Storage.Container(s.Ckpt).UploadModelAsync("exp/gone.safetensors", TestBlobs.RandomModel(2));
        string recipe = $"merge_method: linear\nmodels: [{{model: {s.Ckpt}/exp/a.safetensors}}, {{model: {s.Ckpt}/exp/gone.safetensors}}]";
        var submitted = await s.Submitter.SubmitAsync(recipe, "test", None);
        Assert.True(submitted.Enqueued);
        await s.Storage.Container(s.Ckpt).DeleteBlobAsync("exp/gone.safetensors");

        Assert.True(await s.Processor().ProcessNextAsync(None));
        var job = (await s.Jobs.GetAsync(submitted.Job.Id, None))!;
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Contains($"{s.Ckpt}/exp/gone.safetensors", job.Error);
        Assert.Contains("does not exist", job.Error);
        Assert.Empty(await s.Storage.Container(s.Merged).ListAsync($"{job.Id}/"));
    }

    [Fact]
    public async Task A_failure_after_output_was_staged_still_leaves_nothing_visible()
    {
        var s = await NewSetupAsync();
        var (recipe, _) = await ThreeModelsAsync(s);
        var submitted = await s.Submitter.SubmitAsync(recipe, "test", None);
        // 3 models × 2 header reads, then tensor reads: fail the 10th read, mid-way through the tensors.
        var store = new FaultyCheckpointStore(new BlobCheckpointStore(s.Storage.Blobs),
            n => n == 10 ? CloudSoupException.Checkpoint($"{s.Ckpt}/exp/m1.safetensors", "tensor bytes unreadable (injected)") : null);

        Assert.True(await s.Processor(store).ProcessNextAsync(None));
        var job = (await s.Jobs.GetAsync(submitted.Job.Id, None))!;
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Contains("injected", job.Error);
        var merged = s.Storage.Container(s.Merged);
        var staged = await merged.GetBlockBlobClient($"{JobAttempts.Folder(job.Id, job.Attempt!)}/model.safetensors").GetBlockListAsync(BlockListTypes.Uncommitted);
        Assert.NotEmpty(staged.Value.UncommittedBlocks);                       // bytes went up ...
        Assert.Empty(await merged.ListAsync($"{job.Id}/"));                     // ... but nothing is visible
    }

    [Fact]
    public async Task A_job_that_keeps_failing_transiently_lands_in_the_poison_queue_marked_failed()
    {
        var s = await NewSetupAsync(o => o.MaxAttempts = 2);
        var (recipe, _) = await ThreeModelsAsync(s);
        var submitted = await s.Submitter.SubmitAsync(recipe, "test", None);
        var store = new FaultyCheckpointStore(new BlobCheckpointStore(s.Storage.Blobs),
            _ => new CloudSoupException(ErrorKind.Transient, "storage hiccup (injected)"));
        var worker = s.Processor(store);

        var job = await TestBlobs.EventuallyAsync(async () =>
        {
            if (!await worker.ProcessNextAsync(None)) await Task.Delay(100);
            return await s.Jobs.GetAsync(submitted.Job.Id, None) is { Status: JobStatus.Failed } j ? j : null;
        }, "the job to be given up on");

        Assert.Equal(2, job.Attempts);
        Assert.StartsWith("gave up after 2 attempts", job.Error);
        Assert.Contains("storage hiccup (injected)", job.Error);
        var poisoned = (await s.Storage.PoisonQueue.ReceiveMessageAsync()).Value;
        var poison = PoisonMessage.TryParse(poisoned.Body.ToString())!;
        Assert.Equal(job.Id, poison.JobId);
        Assert.Equal(job.Error, poison.Reason);
        Assert.Equal(job.Id, JobMessage.TryParse(poison.Message, out _)!.JobId);
        Assert.False(await worker.ProcessNextAsync(None));                     // gone from merge-jobs
        Assert.Empty(await s.Storage.Container(s.Merged).ListAsync($"{job.Id}/"));
    }

    [Fact]
    public async Task Unreadable_messages_go_to_the_poison_queue_with_the_reason()
    {
        var s = await NewSetupAsync();
        var worker = s.Processor();
        await s.Storage.JobsQueue.SendMessageAsync("this is not a job");
        await s.Storage.JobsQueue.SendMessageAsync("""{"schema": 7, "jobId": "0123456789abcdef0123", "recipe": "jobs/x/recipe.yaml"}""");
        Assert.True(await worker.ProcessNextAsync(None));
        Assert.True(await worker.ProcessNextAsync(None));
        // A producer that forgot Base64 (the classic mismatch): the SDK cannot decode it; it is parked too.
        var raw = new QueueClient(azurite.ConnectionString, s.Storage.Options.JobsQueue);
        await raw.SendMessageAsync("{\"schema\":1} not base64 %%%");
        Assert.False(await worker.ProcessNextAsync(None));
        Assert.False(await worker.ProcessNextAsync(None));

        var reasons = new List<PoisonMessage>();
        foreach (var m in (await s.Storage.PoisonQueue.ReceiveMessagesAsync(10)).Value)
            reasons.Add(PoisonMessage.TryParse(m.Body.ToString())!);
        Assert.Equal(3, reasons.Count);
        Assert.Contains(reasons, p => p.Message == "this is not a job" && p.Reason.Contains("not a job message"));
        Assert.Contains(reasons, p => p.Reason.Contains("unsupported message schema 7"));
        Assert.Contains(reasons, p => p.Reason.Contains("not Base64"));
    }

    [Fact]
    public async Task A_killed_worker_s_message_reappears_and_a_second_worker_completes_the_job()
    {
        var s = await NewSetupAsync();
        var (recipe, _) = await ThreeModelsAsync(s);
        var submitted = await s.Submitter.SubmitAsync(recipe, "test", None);

        var gate = new GatedCheckpointStore(new BlobCheckpointStore(s.Storage.Blobs));
        var first = s.Processor(gate);
        using var kill = new CancellationTokenSource();
        var running = first.ProcessNextAsync(kill.Token);
        await gate.Entered.Task.WaitAsync(TimeSpan.FromSeconds(60));
        var claimed = (await s.Jobs.GetAsync(submitted.Job.Id, None))!;
        Assert.Equal(JobStatus.Running, claimed.Status);
        Assert.Equal(first.WorkerId, claimed.ClaimedBy);
        kill.Cancel();                                                          // the worker dies mid-job
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => running);
        Assert.Empty(await s.Storage.Container(s.Merged).ListAsync($"{submitted.Job.Id}/"));

        var second = s.Processor();
        var job = await TestBlobs.EventuallyAsync(async () =>
        {
            if (!await second.ProcessNextAsync(None)) await Task.Delay(100);
            return await s.Jobs.GetAsync(submitted.Job.Id, None) is { Status: JobStatus.Succeeded } j ? j : null;
        }, "the second worker to finish the job");
        Assert.Equal(2, job.Attempts);
        Assert.Contains($"{s.Merged}/{JobAttempts.Folder(job.Id, job.CommittedAttempt!)}/model.safetensors", job.Outputs);
        Assert.False(await second.ProcessNextAsync(None));
    }

    [Fact]
    public async Task A_long_job_keeps_its_message_hidden_by_renewing_it()
    {
        var s = await NewSetupAsync(o => o.VisibilityTimeout = TimeSpan.FromSeconds(4));
        var (recipe, _) = await ThreeModelsAsync(s);
        var submitted = await s.Submitter.SubmitAsync(recipe, "test", None);
        var gate = new GatedCheckpointStore(new BlobCheckpointStore(s.Storage.Blobs));
        var running = s.Processor(gate).ProcessNextAsync(None);
        await gate.Entered.Task.WaitAsync(TimeSpan.FromSeconds(60));

        // Watch the queue for well over two visibility timeouts: another worker never gets the message.
        var other = s.Processor();
        var until = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < until)
        {
            Assert.False(await other.ProcessNextAsync(None));
            await Task.Delay(250);
        }
        gate.Release.SetResult();
        Assert.True(await running);
        var job = (await s.Jobs.GetAsync(submitted.Job.Id, None))!;
        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.Equal(1, job.Attempts);
    }

    [Fact]
    public async Task A_duplicate_message_for_a_finished_job_is_deleted_without_rerunning()
    {
        var s = await NewSetupAsync();
        var (recipe, _) = await ThreeModelsAsync(s);
        var submitted = await s.Submitter.SubmitAsync(recipe, "test", None);
        var worker = s.Processor();
        Assert.True(await worker.ProcessNextAsync(None));
        var done = (await s.Jobs.GetAsync(submitted.Job.Id, None))!;
        var report = s.Storage.Container(s.Merged).GetBlobClient($"{JobAttempts.Folder(done.Id, done.CommittedAttempt!)}/report.json");
        var reportETag = (await report.GetPropertiesAsync()).Value.ETag;

        await s.Storage.JobsQueue.SendMessageAsync(JobMessage.For(done.Id, done.RecipePath).ToJson());
        Assert.True(await worker.ProcessNextAsync(None));
        Assert.False(await worker.ProcessNextAsync(None));                     // deleted, not left to reappear
        var after = (await s.Jobs.GetAsync(done.Id, None))!;
        Assert.Equal(done.Attempts, after.Attempts);
        Assert.Equal(done.Finished, after.Finished);
        Assert.Equal(reportETag, (await report.GetPropertiesAsync()).Value.ETag);

        // The same submission again is the same job and queues nothing.
        var again = await s.Submitter.SubmitAsync(recipe, "test", None);
        Assert.False(again.Enqueued);
        Assert.Equal(done.Id, again.Job.Id);
        Assert.False(await worker.ProcessNextAsync(None));
    }
}
