extern alias CloudSoupFunctions;

using Azure.Storage.Blobs;
using CloudSoup.Control.Configuration;
using CloudSoup.Tests.Service;
using CloudSoupFunctions::CloudSoup.Functions;
using Microsoft.Extensions.DependencyInjection;

namespace CloudSoup.Tests.Functions;

/// <summary>
/// The two blob triggers, invoked as the Functions host invokes them for an Event Grid BlobCreated event: with a
/// BlobClient for the blob, made from the connection setting. The intake containers are the real ones the trigger
/// paths name ("checkpoints", "recipes"; this test's blobs under a folder of their own); everything the intake
/// writes (jobs table, queue, jobs container) is this test's own.
/// </summary>
[Collection(AzuriteCollection.Name)]
public class IntakeTriggerTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private readonly string _folder = $"fn-{Guid.NewGuid():N}"[..15];

    private Task<FunctionsTestHost> CreateAppAsync() => FunctionsTestHost.CreateAsync(azurite, o =>
    {
        var defaults = new CloudSoupOptions();
        o.CheckpointsContainer = defaults.CheckpointsContainer;
        o.RecipesContainer = defaults.RecipesContainer;
    });

    /// <summary>The blob the trigger binding hands over: a client for container/name over the CloudSoupStorage connection.</summary>
    private BlobClient Bound(string container, string name) => new(azurite.ConnectionString, container, name);

    private static IntakeTriggers Triggers(FunctionsTestHost app) => ActivatorUtilities.CreateInstance<IntakeTriggers>(app.Services);

    private static async Task<(int Jobs, int Messages)> CountAsync(FunctionsTestHost app) =>
        ((await app.Jobs.ListAsync(100, None)).Count, (await app.Storage.JobsQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount);

    [Fact]
    public async Task A_recipe_dropped_into_recipes_starts_one_job_and_the_same_event_again_starts_none()
    {
        using var app = await CreateAppAsync();
        var ckpt = app.Storage.Container("checkpoints");
        await ckpt.UploadModelAsync($"{_folder}/a.safetensors", TestBlobs.RandomModel(81));
        await ckpt.UploadModelAsync($"{_folder}/b.safetensors", TestBlobs.RandomModel(82));
        string name = $"{_folder}/x.yaml";
        await app.Storage.Container("recipes").UploadTextAsync(name,
            $"merge_method: linear\nname: dropped\nmodels:\n  - model: checkpoints/{_folder}/a.safetensors\n  - model: checkpoints/{_folder}/b.safetensors\n");

        await Triggers(app).RecipeDropped(Bound("recipes", name), None);

        var job = Assert.Single(await app.Jobs.ListAsync(100, None));
        Assert.Equal(JobStatus.Queued, job.Status);
        Assert.Equal("dropped", job.Name);
        Assert.Equal($"blob:recipes/{name}", job.Source);
        Assert.Equal(new[] { $"checkpoints/{_folder}/a.safetensors", $"checkpoints/{_folder}/b.safetensors" }, (await app.Storage.InputsOfAsync(job)).Keys.Order());
        Assert.Equal((1, 1), await CountAsync(app));

        await Triggers(app).RecipeDropped(Bound("recipes", name), None);          // Event Grid delivers at least once
        Assert.Equal((1, 1), await CountAsync(app));
    }

    [Fact]
    public async Task A_soup_folder_dropped_into_checkpoints_starts_one_job_once_every_ingredient_is_there()
    {
        using var app = await CreateAppAsync();
        var ckpt = app.Storage.Container("checkpoints");

        // One event per blob, in upload order; the job starts at the event that completes the folder.
        await ckpt.UploadModelAsync($"{_folder}/a.safetensors", TestBlobs.RandomModel(91));
        await Triggers(app).CheckpointDropped(Bound("checkpoints", $"{_folder}/a.safetensors"), None);
        Assert.Equal((0, 0), await CountAsync(app));                                // no soup.yaml yet

        await ckpt.UploadTextAsync($"{_folder}/soup.yaml", "merge_method: linear\nmodels: [{model: a.safetensors}, {model: b.safetensors}]\n");
        await Triggers(app).CheckpointDropped(Bound("checkpoints", $"{_folder}/soup.yaml"), None);
        Assert.Equal((0, 0), await CountAsync(app));                                // waiting for b

        await ckpt.UploadModelAsync($"{_folder}/b.safetensors", TestBlobs.RandomModel(92));
        await Triggers(app).CheckpointDropped(Bound("checkpoints", $"{_folder}/b.safetensors"), None);
        var job = Assert.Single(await app.Jobs.ListAsync(100, None));
        Assert.Equal(JobStatus.Queued, job.Status);
        Assert.Equal($"blob:checkpoints/{_folder}/soup.yaml", job.Source);
        Assert.Equal(new[] { $"checkpoints/{_folder}/a.safetensors", $"checkpoints/{_folder}/b.safetensors" }, (await app.Storage.InputsOfAsync(job)).Keys.Order());
        Assert.Equal((1, 1), await CountAsync(app));

        // The same drop's events again (redelivered, or the other blobs' events arriving late): still one job.
        foreach (var blob in new[] { "soup.yaml", "a.safetensors", "b.safetensors" })
            await Triggers(app).CheckpointDropped(Bound("checkpoints", $"{_folder}/{blob}"), None);
        Assert.Equal((1, 1), await CountAsync(app));
    }
}
