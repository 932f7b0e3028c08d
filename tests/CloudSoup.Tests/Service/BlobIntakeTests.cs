using CloudSoup.Control.Recipes;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Intake;
using CloudSoup.Control.Jobs;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSoup.Tests.Service;

[Collection(AzuriteCollection.Name)]
public class BlobIntakeTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private sealed record Setup(StorageClients Storage, JobStore Jobs, BlobIntake Intake, BlobDropWatcher Watcher)
    {
        public async Task<int> QueuedMessagesAsync() => (await Storage.JobsQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount;
    }

    private async Task<Setup> NewSetupAsync()
    {
        var storage = await azurite.NewStorageAsync();
        var jobs = new JobStore(storage.JobsTable);
        var submitter = new MergeSubmitter(storage, jobs, NullLogger<MergeSubmitter>.Instance);
        var intake = new BlobIntake(storage, submitter, jobs, NullLogger<BlobIntake>.Instance);
        return new Setup(storage, jobs, intake, new BlobDropWatcher(storage, intake, NullLogger<BlobDropWatcher>.Instance));
    }

    [Fact]
    public async Task A_dropped_recipe_starts_a_job_once_however_often_it_is_seen()
    {
        var s = await NewSetupAsync();
        var o = s.Storage.Options;
        var ckpt = s.Storage.Container(o.CheckpointsContainer);
        await ckpt.UploadModelAsync("exp/a.safetensors", TestBlobs.RandomModel(1));
        await ckpt.UploadModelAsync("exp/b.safetensors", TestBlobs.RandomModel(2));
        string recipe = $"merge_method: linear\nname: drop-test\nmodels:\n  - model: {o.CheckpointsContainer}/exp/a.safetensors\n  - model: {o.CheckpointsContainer}/exp/b.safetensors\n";
        await s.Storage.Container(o.RecipesContainer).UploadTextAsync("soup-1.yaml", recipe);
        await s.Storage.Container(o.RecipesContainer).UploadTextAsync("notes.txt", "not a recipe");

        var results = await s.Watcher.ScanOnceAsync(None);
        var submitted = Assert.Single(results, r => r.Action == IntakeAction.Submitted);
        Assert.Contains(results, r => r.Action == IntakeAction.Ignored);        // notes.txt
        var job = (await s.Jobs.GetAsync(submitted.JobId!, None))!;
        Assert.Equal(JobStatus.Queued, job.Status);
        Assert.Equal("drop-test", job.Name);
        Assert.Equal($"blob:{o.RecipesContainer}/soup-1.yaml", job.Source);

        Assert.Empty(await s.Watcher.ScanOnceAsync(None));                     // nothing new
        var again = await s.Intake.OnBlobCreatedAsync(o.RecipesContainer, "soup-1.yaml", None);    // the same event delivered twice
        Assert.Equal((IntakeAction.AlreadyKnown, job.Id), (again.Action, again.JobId));
        await s.Storage.Container(o.RecipesContainer).UploadTextAsync("soup-1-copy.yaml", recipe); // the same recipe uploaded again
        var copy = Assert.Single(await s.Watcher.ScanOnceAsync(None));
        Assert.Equal((IntakeAction.AlreadyKnown, job.Id), (copy.Action, copy.JobId));
        Assert.Equal(1, await s.QueuedMessagesAsync());
    }

    [Fact]
    public async Task A_soup_folder_starts_a_job_only_when_every_listed_ingredient_is_there()
    {
        var s = await NewSetupAsync();
        var o = s.Storage.Options;
        var ckpt = s.Storage.Container(o.CheckpointsContainer);
        // Relative names in soup.yaml mean files inside checkpoints/<exp>/; names with '/' are full blob paths.
        await ckpt.UploadTextAsync("seeds/soup.yaml", """
            merge_method: linear
            models:
              - model: seed-1.safetensors
                parameters: {weight: 1}
              - model: seed-2.safetensors
                parameters: {weight: 3}
            """);
        var first = Assert.Single(await s.Watcher.ScanOnceAsync(None));
        Assert.Equal(IntakeAction.Waiting, first.Action);
        Assert.Contains("waiting for 2 ingredients", first.Detail);

        await ckpt.UploadModelAsync("seeds/seed-1.safetensors", TestBlobs.RandomModel(1));
        var second = Assert.Single(await s.Watcher.ScanOnceAsync(None));
        Assert.Equal(IntakeAction.Waiting, second.Action);
        Assert.Contains("waiting for 1 ingredient:", second.Detail);
        Assert.Contains($"{o.CheckpointsContainer}/seeds/seed-2.safetensors", second.Detail);
        Assert.Equal(0, await s.QueuedMessagesAsync());

        await ckpt.UploadModelAsync("seeds/seed-2.safetensors", TestBlobs.RandomModel(2));
        var third = Assert.Single(await s.Watcher.ScanOnceAsync(None));
        Assert.Equal(IntakeAction.Submitted, third.Action);
        var job = (await s.Jobs.GetAsync(third.JobId!, None))!;
        Assert.Equal(new[] { $"{o.CheckpointsContainer}/seeds/seed-1.safetensors", $"{o.CheckpointsContainer}/seeds/seed-2.safetensors" }, (await s.Storage.InputsOfAsync(job)).Keys.Order());
        Assert.Equal($"blob:{o.CheckpointsContainer}/seeds/soup.yaml", job.Source);

        // The soup.yaml event and a checkpoint event arriving again are the same job.
        foreach (var blob in new[] { "seeds/soup.yaml", "seeds/seed-1.safetensors" })
        {
            var again = await s.Intake.OnBlobCreatedAsync(o.CheckpointsContainer, blob, None);
            Assert.Equal((IntakeAction.AlreadyKnown, job.Id), (again.Action, again.JobId));
        }
        Assert.Equal(1, await s.QueuedMessagesAsync());

        // The recipe the worker will read has the full blob paths and parses.
        var stored = (await s.Storage.Container(o.JobsContainer).GetBlobClient($"{job.Id}/recipe.yaml").DownloadContentAsync()).Value.Content.ToString();
        Assert.Equal($"{o.CheckpointsContainer}/seeds/seed-2.safetensors", RecipeParser.Parse(stored).Models[1].Model);
    }

    [Fact]
    public async Task Checkpoints_without_a_soup_file_and_bad_dropped_recipes_do_not_start_jobs()
    {
        var s = await NewSetupAsync();
        var o = s.Storage.Options;
        await s.Storage.Container(o.CheckpointsContainer).UploadModelAsync("lonely/a.safetensors", TestBlobs.RandomModel(1));
        await s.Storage.Container(o.RecipesContainer).UploadTextAsync("broken.yaml", "merge_method: linear\nmodels: []\n");
        var results = await s.Watcher.ScanOnceAsync(None);

        Assert.Contains(results, r => r.Action == IntakeAction.Ignored && r.Detail.Contains("soup.yaml"));
        var rejected = Assert.Single(results, r => r.Action == IntakeAction.Rejected);
        var job = (await s.Jobs.GetAsync(rejected.JobId!, None))!;              // visible in the job list, with the reason
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Contains("models", job.Error);
        Assert.Equal(0, await s.QueuedMessagesAsync());
    }

    [Fact]
    public void Relative_soup_references_are_rewritten_and_the_result_parses_to_the_same_recipe()
    {
        var recipe = RecipeParser.Parse("""
            merge_method: linear
            name: n
            seed: 3
            models:
              - model: a.safetensors
                parameters: {weight: [0.0, 1.0]}
              - model: other/exp/b.safetensors
            parameters: {normalize: false}
            """);
        var text = BlobIntake.ResolveRelativeReferences(recipe, "checkpoints/e");
        var back = RecipeParser.Parse(text);
        Assert.Equal(new[] { "checkpoints/e/a.safetensors", "other/exp/b.safetensors" }, back.Models.Select(m => m.Model));
        // Everything but the references is unchanged (canonical forms equal after undoing the rewrite).
        Assert.Equal(RecipeJson.ToJsonString(recipe).Replace("\"a.safetensors\"", "\"checkpoints/e/a.safetensors\""), RecipeJson.ToJsonString(back));
    }
}
