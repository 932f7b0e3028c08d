// A recipe reads only from the configured locations (docs/security.md; Control/Storage/InputSources.cs): checked at
// submission, and again by the worker before it reads anything. Errors about blobs that are not checkpoints describe
// them and never quote their bytes. Real Azurite, real worker.
using System.Runtime.InteropServices;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Intake;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Storage;
using CloudSoup.Worker.Queue;
using CloudSoup.Worker.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSoup.Tests.Service;

[Collection(AzuriteCollection.Name)]
public class InputSourcesTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private async Task<(StorageClients Storage, JobStore Jobs, MergeSubmitter Submitter)> NewSetupAsync(Action<CloudSoupOptions>? configure = null)
    {
        var storage = await azurite.NewStorageAsync(configure);
        var jobs = new JobStore(storage.JobsTable);
        var ckpt = storage.Container(storage.Options.CheckpointsContainer);
        await ckpt.UploadModelAsync("exp/a.safetensors", TestBlobs.RandomModel(1));
        await ckpt.UploadModelAsync("exp/b.safetensors", TestBlobs.RandomModel(2));
        return (storage, jobs, new MergeSubmitter(storage, jobs, NullLogger<MergeSubmitter>.Instance));
    }

    [Theory]
    [InlineData("merged", "models[1].model")]             // another job's output
    [InlineData("jobs", "models[1].model")]               // the stored recipes
    [InlineData("secrets", "models[1].model")]            // a container the service never uses
    public async Task A_model_outside_the_input_containers_is_refused_at_submission_naming_the_field(string container, string field)
    {
        var (s, _, submitter) = await NewSetupAsync();
        string o = s.Options.CheckpointsContainer;
        var e = await Assert.ThrowsAsync<CloudSoupException>(() =>
            submitter.SubmitAsync($"merge_method: linear\nmodels: [{o}/exp/a.safetensors, {container}/x/model.safetensors]", "test", None));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.Equal(field, e.Field);
        Assert.Contains("is not in a location this service reads inputs from", e.Message);
        Assert.Empty(await s.JobsTable.QueryAsync<Azure.Data.Tables.TableEntity>().ToListAsync());   // nothing was created
    }

    [Fact]
    public async Task A_torchscript_model_outside_the_eval_container_is_refused_even_beside_the_checkpoints()
    {
        var (s, _, submitter) = await NewSetupAsync();
        string c = s.Options.CheckpointsContainer;
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => submitter.SubmitAsync(
            $"merge_method: linear\nmodels: [{c}/exp/a.safetensors, {c}/exp/b.safetensors]\nevaluation: {{model: {c}/exp/model.pt, data: {c}/exp/data.safetensors}}", "test", None));
        Assert.Equal("evaluation.model", e.Field);
        Assert.Contains("a TorchScript model is code", e.Message);
        // Evaluation data may sit beside the checkpoints; built-in models come from nowhere.
        await s.Container(c).UploadModelAsync("exp/data.safetensors", TestBlobs.RandomModel(4));
        var ok = await submitter.SubmitAsync(
            $"merge_method: linear\nmodels: [{c}/exp/a.safetensors, {c}/exp/b.safetensors]\nevaluation: {{model: builtin:mlp, data: {c}/exp/data.safetensors}}", "test", None);
        Assert.True(ok.Enqueued);
    }

    [Fact]
    public async Task The_operator_can_name_other_sources_down_to_a_prefix()
    {
        var (s, _, submitter) = await NewSetupAsync(o =>
        {
            o.InputSources = $"{o.CheckpointsContainer}/exp, shared-models";
            o.EvalModelSources = $"{o.EvalContainer}/approved";
        });
        string c = s.Options.CheckpointsContainer, ev = s.Options.EvalContainer;
        var shared = s.Blobs.GetBlobContainerClient("shared-models");
        await shared.CreateIfNotExistsAsync();
        await shared.UploadModelAsync("base/model.safetensors", TestBlobs.RandomModel(5));
        await s.Container(ev).UploadTextAsync("approved/m.pt", "a module");
        await s.Container(c).UploadModelAsync("exp/data.safetensors", TestBlobs.RandomModel(6));
        var ok = await submitter.SubmitAsync(
            $"merge_method: linear\nmodels: [{c}/exp/a.safetensors, shared-models/base/model.safetensors]\nevaluation: {{model: {ev}/approved/m.pt, data: {c}/exp/data.safetensors}}", "test", None);
        Assert.True(ok.Enqueued);
        // A prefix matches whole path segments only.
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => submitter.SubmitAsync($"merge_method: linear\nmodels: [{c}/exp/a.safetensors, {c}/exp-old/b.safetensors]", "test", None));
        Assert.Equal("models[1].model", e.Field);
        e = await Assert.ThrowsAsync<CloudSoupException>(() => submitter.SubmitAsync(
            $"merge_method: linear\nmodels: [{c}/exp/a.safetensors, {c}/exp/b.safetensors]\nevaluation: {{model: {ev}/approved-not/m.pt, data: {c}/exp/data.safetensors}}", "test", None));
        Assert.Equal("evaluation.model", e.Field);
    }

    [Fact]
    public async Task The_worker_refuses_a_job_whose_inputs_are_outside_its_sources_even_if_the_submitter_let_it_in()
    {
        var (s, jobs, _) = await NewSetupAsync();
        string c = s.Options.CheckpointsContainer, merged = s.Options.MergedContainer;
        await s.Container(merged).UploadModelAsync("earlier-job/model.safetensors", TestBlobs.RandomModel(3));
        // A submitter configured more loosely than the worker (an old recipe, or a changed setting).
        var loose = new StorageClients(new CloudSoupOptions
        {
            ConnectionString = s.Options.ConnectionString, CheckpointsContainer = c, MergedContainer = merged, JobsContainer = s.Options.JobsContainer,
            EvalContainer = s.Options.EvalContainer, RecipesContainer = s.Options.RecipesContainer, JobsQueue = s.Options.JobsQueue, PoisonQueue = s.Options.PoisonQueue,
            JobsTable = s.Options.JobsTable, InputSources = $"{c},{merged}",
        });
        var submitted = await new MergeSubmitter(loose, jobs, NullLogger<MergeSubmitter>.Instance)
            .SubmitAsync($"merge_method: linear\nmodels: [{c}/exp/a.safetensors, {merged}/earlier-job/model.safetensors]", "test", None);

        Assert.True(await new JobProcessor(s, jobs, NullLogger<JobProcessor>.Instance).ProcessNextAsync(None));
        var job = (await jobs.GetAsync(submitted.Job.Id, None))!;
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Equal(1, job.Attempts);
        Assert.StartsWith("models[1].model: ", job.Error);
        Assert.Contains("is not in a location this service reads inputs from", job.Error);
    }

    [Fact]
    public async Task The_workers_blob_store_refuses_reads_outside_its_sources()
    {
        var (s, _, _) = await NewSetupAsync();
        var store = new BlobCheckpointStore(s.Blobs, InputSources.From(s.Options));
        await s.Container(s.Options.MergedContainer).UploadTextAsync("x/report.json", "{}");
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => store.ReadAllAsync($"{s.Options.MergedContainer}/x/report.json", 1000, None));
        Assert.Contains("is not in a location this worker reads inputs from", e.Message);
        Assert.NotEmpty(await store.ReadAllAsync($"{s.Options.CheckpointsContainer}/exp/a.safetensors", 1 << 20, None));
    }

    [Fact]
    public async Task A_blob_that_is_not_safetensors_is_described_and_its_bytes_never_quoted()
    {
        var (s, jobs, submitter) = await NewSetupAsync();
        string c = s.Options.CheckpointsContainer;
        const string secret = "AccountKey=c2VjcmV0LWtleS12YWx1ZQ==;DefaultEndpointsProtocol=https";
        await s.Container(c).UploadTextAsync("exp/settings.safetensors", secret);
        var submitted = await submitter.SubmitAsync($"merge_method: linear\nmodels: [{c}/exp/a.safetensors, {c}/exp/settings.safetensors]", "test", None);
        Assert.True(await new JobProcessor(s, jobs, NullLogger<JobProcessor>.Instance).ProcessNextAsync(None));
        var job = (await jobs.GetAsync(submitted.Job.Id, None))!;
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Contains("not a safetensors file", job.Error);
        Assert.DoesNotContain("AccountK", job.Error);
        Assert.DoesNotContain(BitConverter.ToUInt64("AccountK"u8).ToString(System.Globalization.CultureInfo.InvariantCulture), job.Error);
    }

    [Fact]
    public async Task A_native_tensor_library_error_fails_the_job_once_as_bad_input()
    {
        var (s, jobs, submitter) = await NewSetupAsync();
        string c = s.Options.CheckpointsContainer;
        var submitted = await submitter.SubmitAsync($"merge_method: linear\nmodels: [{c}/exp/a.safetensors, {c}/exp/b.safetensors]", "test", None);
        // What TorchSharp raises for a libtorch error (c10::Error), e.g. an allocation of 16 TiB.
        var store = new FaultyCheckpointStore(new BlobCheckpointStore(s.Blobs),
            n => n == 5 ? new ExternalException("DefaultCPUAllocator: can't allocate memory: you tried to allocate 17592186044416 bytes.\nException raised from ...") : null);
        Assert.True(await new JobProcessor(s, jobs, NullLogger<JobProcessor>.Instance, store: store).ProcessNextAsync(None));
        var job = (await jobs.GetAsync(submitted.Job.Id, None))!;
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Equal(1, job.Attempts);
        Assert.Equal("the tensor library refused the job's input: DefaultCPUAllocator: can't allocate memory: you tried to allocate 17592186044416 bytes.", job.Error);
    }
}
