// Jobs whose evaluation model is hostile, through the real worker (JobProcessor) on Azurite: each fails once with the
// reason (no retries, nothing under merged/), and the same worker then runs a good job. The model itself runs in a
// sandbox process (docs/sandbox.md), so none of this can take the test process down.
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Intake;
using CloudSoup.Control.Jobs;
using CloudSoup.Worker.Queue;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSoup.Tests.Service;

[Collection(AzuriteCollection.Name)]
public class SandboxedJobTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly string Scripts = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torchscript");
    private static readonly string Hostile = Path.Combine(AppContext.BaseDirectory, "Fixtures", "sandbox");

    private sealed record Setup(StorageClients Storage, JobStore Jobs, MergeSubmitter Submitter, JobProcessor Worker)
    {
        public CloudSoupOptions O => Storage.Options;
    }

    private async Task<Setup> NewSetupAsync()
    {
        var storage = await azurite.NewStorageAsync();
        var jobs = new JobStore(storage.JobsTable);
        // Two ingredients that fit the TorchScript MLP (8-6-3), the held-out data, and every module in eval/models/.
        var ckpt = storage.Container(storage.Options.CheckpointsContainer);
        foreach (var name in new[] { "a", "b" })
            await ckpt.GetBlobClient($"exp/{name}.safetensors").UploadAsync(Path.Combine(Scripts, "mlp.weights.safetensors"), overwrite: true);
        var eval = storage.Container(storage.Options.EvalContainer);
        await eval.GetBlobClient("data8.safetensors").UploadAsync(Path.Combine(Scripts, "data8.safetensors"), overwrite: true);
        await eval.GetBlobClient("models/mlp.pt").UploadAsync(Path.Combine(Scripts, "mlp.pt"), overwrite: true);
        foreach (var f in Directory.GetFiles(Hostile, "*.pt"))
            await eval.GetBlobClient($"models/{Path.GetFileName(f)}").UploadAsync(f, overwrite: true);
        return new Setup(storage, jobs, new MergeSubmitter(storage, jobs, NullLogger<MergeSubmitter>.Instance),
            new JobProcessor(storage, jobs, NullLogger<JobProcessor>.Instance, new CloudSoup.Engine.Evaluation.JobEvaluator()));
    }

    private static string Recipe(Setup s, string module, string limits = "") => $"""
        merge_method: linear
        models: [{s.O.CheckpointsContainer}/exp/a.safetensors, {s.O.CheckpointsContainer}/exp/b.safetensors]
        evaluation:
          model: {s.O.EvalContainer}/models/{module}
          data: {s.O.EvalContainer}/data8.safetensors
          {limits}
        """;

    private static async Task<JobRecord> RunAsync(Setup s, string recipe)
    {
        var submitted = await s.Submitter.SubmitAsync(recipe, "test", None);
        Assert.True(await s.Worker.ProcessNextAsync(None));
        return (await s.Jobs.GetAsync(submitted.Job.Id, None))!;
    }

    private static async Task AssertFailedOnceWithNothingPublishedAsync(Setup s, JobRecord job)
    {
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Equal(1, job.Attempts);
        Assert.False(await s.Worker.ProcessNextAsync(None));        // not retried: the message is gone
        Assert.Empty(await s.Storage.Container(s.O.MergedContainer).ListAsync($"{job.Id}/"));
    }

    [Fact]
    public async Task A_model_that_never_returns_fails_its_job_at_the_time_limit_and_the_worker_runs_the_next_job()
    {
        var s = await NewSetupAsync();
        var job = await RunAsync(s, Recipe(s, "loop.pt", "limits: {seconds: 20}"));
        Assert.Equal($"the evaluation model {s.O.EvalContainer}/models/loop.pt did not finish running a batch in 20 s (the limit per call, evaluation.limits.seconds)", job.Error);
        await AssertFailedOnceWithNothingPublishedAsync(s, job);

        var good = await RunAsync(s, Recipe(s, "mlp.pt"));
        Assert.Equal(JobStatus.Succeeded, good.Status);
    }

    [Fact]
    public async Task A_model_whose_data_pkl_kills_the_loader_fails_its_job_once_with_the_signal()
    {
        var s = await NewSetupAsync();
        var job = await RunAsync(s, Recipe(s, "crash_pickle.pt"));
        Assert.Matches(@"^the evaluation model \S+/models/crash_pickle\.pt crashed \(signal \d+, SIG[A-Z]+\) while loading$", job.Error);
        await AssertFailedOnceWithNothingPublishedAsync(s, job);
    }

    [Fact]
    public async Task A_model_that_writes_a_file_on_the_worker_fails_its_job_and_the_file_is_unchanged()
    {
        var s = await NewSetupAsync();
        Directory.CreateDirectory("/tmp/cloudsoup-sandbox-test");
        File.WriteAllText("/tmp/cloudsoup-sandbox-test/victim.bin", "AAAAAAAAAAAAAAAA");
        var job = await RunAsync(s, Recipe(s, "write_file.pt"));
        Assert.Contains("failed while running a batch", job.Error);
        Assert.Contains("Permission denied", job.Error);
        Assert.Equal("AAAAAAAAAAAAAAAA", File.ReadAllText("/tmp/cloudsoup-sandbox-test/victim.bin"));
        await AssertFailedOnceWithNothingPublishedAsync(s, job);
    }

    [Fact]
    public async Task A_model_asking_for_16_TiB_fails_its_job_once_naming_the_memory_limit()
    {
        var s = await NewSetupAsync();
        var job = await RunAsync(s, Recipe(s, "huge.pt", "limits: {memory: 2GB}"));
        Assert.Equal($"the evaluation model {s.O.EvalContainer}/models/huge.pt exceeded its 2 GB memory limit while running a batch (evaluation.limits.memory)", job.Error);
        await AssertFailedOnceWithNothingPublishedAsync(s, job);
    }

    [Fact]
    public async Task A_checkpoint_claiming_2_to_the_62_elements_fails_its_job_once_instead_of_three_retries()
    {
        var s = await NewSetupAsync();
        var ckpt = s.Storage.Container(s.O.CheckpointsContainer);
        await ckpt.GetBlobClient("exp/huge_storage.pt").UploadAsync(Path.Combine(Hostile, "huge_storage.pt"), overwrite: true);
        var job = await RunAsync(s, $"merge_method: linear\nmodels: [{s.O.CheckpointsContainer}/exp/huge_storage.pt, {s.O.CheckpointsContainer}/exp/a.safetensors]");
        Assert.Contains("huge_storage.pt", job.Error);
        Assert.Contains("4611686018427387904 elements of 4 bytes", job.Error);
        await AssertFailedOnceWithNothingPublishedAsync(s, job);
    }

    [Fact]
    public async Task A_recipe_asking_for_more_than_the_services_ceiling_is_refused_at_submission()
    {
        var s = await NewSetupAsync();
        var e = await Assert.ThrowsAsync<CloudSoup.Control.Errors.CloudSoupException>(() => s.Submitter.SubmitAsync(Recipe(s, "mlp.pt", "limits: {memory: 64GB}"), "test", None));
        Assert.Equal("evaluation.limits.memory", e.Field);
        Assert.Contains("ceiling", e.Message);
    }
}
