// The service path for Hugging Face folders: model folders in blob storage (one in safetensors, one as sharded
// PyTorch .bin files) merge into a merged/ folder that also holds config.json, the tokenizer and README.md, committed
// with the weights and listed in the job's outputs; a folder's version covers its .bin shards and tokenizer files,
// and a tokenizer_source that does not exist is refused at submission naming the field.
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Intake;
using CloudSoup.Control.Jobs;
using CloudSoup.Tests.Support;
using CloudSoup.Worker.Queue;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSoup.Tests.Service;

[Collection(AzuriteCollection.Name)]
public class HfOutputServiceTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private const string Template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{% endfor %}";

    private static async Task UploadFolderAsync(BlobContainerClient container, string local, string prefix)
    {
        foreach (var file in Directory.GetFiles(local))
            await container.GetBlobClient($"{prefix}/{Path.GetFileName(file)}").UploadAsync(file, overwrite: true);
    }

    /// <summary>exp/a: a safetensors model folder; exp/b: the sharded .bin fixture with a's config and tokenizer files.</summary>
    private static async Task UploadModelsAsync(BlobContainerClient checkpoints)
    {
        using var dir = new TempDir();
        HfModelFolders.Write(dir["a"], 1);
        await UploadFolderAsync(checkpoints, dir["a"], "exp/a");
        await UploadFolderAsync(checkpoints, Path.Combine(AppContext.BaseDirectory, "Fixtures", "sharded_bin", "a-sharded"), "exp/b");
        foreach (var side in new[] { "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" })
            await checkpoints.GetBlobClient($"exp/b/{side}").UploadAsync(dir[$"a/{side}"], overwrite: true);
    }

    [Fact]
    public async Task A_worker_merge_of_hf_folders_commits_config_tokenizer_and_card_with_the_weights()
    {
        var storage = await azurite.NewStorageAsync();
        var jobs = new JobStore(storage.JobsTable);
        var submitter = new MergeSubmitter(storage, jobs, NullLogger<MergeSubmitter>.Instance);
        var checkpoints = storage.Container(storage.Options.CheckpointsContainer);
        await UploadModelsAsync(checkpoints);
        string ckpt = storage.Options.CheckpointsContainer;
        string recipe = $"merge_method: linear\nmodels: [{{model: {ckpt}/exp/a}}, {{model: {ckpt}/exp/b}}]\ntokenizer_source: {ckpt}/exp/b\nchat_template: \"{Template}\"\nout_dtype: bfloat16\n";
        var submitted = await submitter.SubmitAsync(recipe, "test", None);

        Assert.True(await new JobProcessor(storage, jobs, NullLogger<JobProcessor>.Instance, evaluator: null).ProcessNextAsync(None));
        var job = (await jobs.GetAsync(submitted.Job.Id, None))!;
        Assert.Equal(JobStatus.Succeeded, job.Status);
        string Output(string file) => Assert.Single(job.Outputs, o => o.EndsWith("/" + file, StringComparison.Ordinal));
        BlobClient Blob(string file)
        {
            var path = Output(file);
            return storage.Blobs.GetBlobContainerClient(path[..path.IndexOf('/')]).GetBlobClient(path[(path.IndexOf('/') + 1)..]);
        }

        var config = JsonNode.Parse((await Blob("config.json").DownloadContentAsync()).Value.Content.ToString())!.AsObject();
        Assert.Equal("bfloat16", (string?)config["torch_dtype"]);
        var tokenizerConfig = JsonNode.Parse((await Blob("tokenizer_config.json").DownloadContentAsync()).Value.Content.ToString())!.AsObject();
        Assert.Equal(Template, (string?)tokenizerConfig["chat_template"]);
        foreach (var file in new[] { "tokenizer.json", "special_tokens_map.json", "generation_config.json", "model.safetensors" }) Output(file);
        var card = Blob("README.md");
        Assert.Equal("text/markdown; charset=utf-8", (await card.GetPropertiesAsync()).Value.ContentType);
        Assert.Contains("library_name: transformers", (await card.DownloadContentAsync()).Value.Content.ToString());
    }

    [Fact]
    public async Task A_folders_version_covers_its_bin_shards_and_tokenizer_files()
    {
        var storage = await azurite.NewStorageAsync();
        var checkpoints = storage.Container(storage.Options.CheckpointsContainer);
        await UploadModelsAsync(checkpoints);
        var versions = new InputVersions(storage.Blobs);
        string b = $"{storage.Options.CheckpointsContainer}/exp/b";
        string before = await versions.VersionOfAsync(b, None);
        Assert.StartsWith("folder:", before);
        await checkpoints.GetBlobClient("exp/b/pytorch_model-00002-of-00004.bin").UploadAsync(
            Path.Combine(AppContext.BaseDirectory, "Fixtures", "sharded_bin", "a-sharded", "pytorch_model-00002-of-00004.bin"), overwrite: true);
        string afterShard = await versions.VersionOfAsync(b, None);
        Assert.NotEqual(before, afterShard);
        await checkpoints.UploadTextAsync("exp/b/merges.txt", "#version: 0.2\n");
        Assert.NotEqual(afterShard, await versions.VersionOfAsync(b, None));
    }

    [Fact]
    public async Task A_tokenizer_source_that_does_not_exist_is_refused_at_submit_naming_the_field()
    {
        var storage = await azurite.NewStorageAsync();
        var jobs = new JobStore(storage.JobsTable);
        var submitter = new MergeSubmitter(storage, jobs, NullLogger<MergeSubmitter>.Instance);
        await UploadModelsAsync(storage.Container(storage.Options.CheckpointsContainer));
        string ckpt = storage.Options.CheckpointsContainer;
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => submitter.SubmitAsync(
            $"merge_method: linear\nmodels: [{{model: {ckpt}/exp/a}}, {{model: {ckpt}/exp/b}}]\ntokenizer: {{source: {ckpt}/exp/ghost}}\n", "test", None));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.StartsWith("tokenizer.source: ", e.Message);
        Assert.Contains("does not exist", e.Message);
    }
}
