using Microsoft.Extensions.DependencyInjection;
using CloudSoup.Cli.Dev;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Control.Intake;
using CloudSoup.Control.Jobs;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Service;

[CollectionDefinition(Name)]
public sealed class AzuriteCollection : ICollectionFixture<AzuriteFixture>
{
    public const string Name = "azurite";
}

/// <summary>
/// One real Azurite for all storage tests, started on dynamic ports (or the storage named by
/// CLOUDSOUP_TEST_STORAGE). Each test gets its own containers, queues and table via <see cref="NewOptions"/>,
/// so tests never see each other's blobs or messages.
/// </summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    private AzuriteProcess? _azurite;

    public string ConnectionString { get; private set; } = "";

    public async Task InitializeAsync()
    {
        if (Environment.GetEnvironmentVariable("CLOUDSOUP_TEST_STORAGE") is { Length: > 0 } external)
        {
            ConnectionString = external;
            return;
        }
        _azurite = await AzuriteProcess.StartAsync();
        ConnectionString = _azurite.ConnectionString;
    }

    public async Task DisposeAsync()
    {
        if (_azurite != null) await _azurite.DisposeAsync();
    }

    /// <summary>Options with resource names unique to one test and short timings for tests.</summary>
    public CloudSoupOptions NewOptions()
    {
        string s = Guid.NewGuid().ToString("N")[..10];
        return new CloudSoupOptions
        {
            ConnectionString = ConnectionString,
            CheckpointsContainer = $"checkpoints-{s}",
            RecipesContainer = $"recipes-{s}",
            MergedContainer = $"merged-{s}",
            JobsContainer = $"jobs-{s}",
            EvalContainer = $"eval-{s}",
            JobsQueue = $"merge-jobs-{s}",
            PoisonQueue = $"merge-jobs-{s}-poison",
            JobsTable = $"jobs{s}",
            VisibilityTimeout = TimeSpan.FromSeconds(3),
            RetryDelay = TimeSpan.Zero,
            IdlePollInterval = TimeSpan.FromMilliseconds(100),
            WatchInterval = TimeSpan.FromMilliseconds(200),
            ProgressInterval = TimeSpan.FromMilliseconds(200),
        };
    }

    public async Task<StorageClients> NewStorageAsync(Action<CloudSoupOptions>? configure = null)
    {
        var options = NewOptions();
        configure?.Invoke(options);
        var storage = new StorageClients(options);
        await storage.EnsureCreatedAsync(CancellationToken.None);
        return storage;
    }
}

/// <summary>Small helpers for putting test models and recipes into blob storage.</summary>
public static class TestBlobs
{
    public static async Task UploadModelAsync(this BlobContainerClient container, string name, IReadOnlyDictionary<string, torch.Tensor> tensors)
    {
        using var dir = new TempDir();
        var path = dir["model.safetensors"];
        SafetensorsFiles.Write(path, tensors);
        await container.GetBlobClient(name).UploadAsync(path, overwrite: true);
    }

    public static async Task UploadTextAsync(this BlobContainerClient container, string name, string text) =>
        await container.GetBlobClient(name).UploadAsync(BinaryData.FromString(text), overwrite: true);

    /// <summary>The input versions a job was created with, as MergeSubmitter stored them beside its recipe.</summary>
    public static async Task<Dictionary<string, string>> InputsOfAsync(this StorageClients storage, JobRecord job)
    {
        Assert.Equal($"{storage.Options.JobsContainer}/{job.Id}/{MergeSubmitter.InputsFileName}", job.InputsPath);
        var blob = storage.Container(storage.Options.JobsContainer).GetBlobClient($"{job.Id}/{MergeSubmitter.InputsFileName}");
        return (await blob.DownloadContentAsync()).Value.Content.ToObjectFromJson<Dictionary<string, string>>()!;
    }

    /// <summary>Committed blobs under a prefix (what a reader of merged/ sees).</summary>
    public static async Task<List<string>> ListAsync(this BlobContainerClient container, string prefix, BlobStates states = BlobStates.None)
    {
        var names = new List<string>();
        await foreach (var item in container.GetBlobsAsync(new GetBlobsOptions { Prefix = prefix, States = states }))
            names.Add(item.Name);
        return names;
    }

    /// <summary>A model with deterministic pseudo-random float32 tensors.</summary>
    /// <summary>Uploads two random models under <paramref name="folder"/> of the host's checkpoints container; returns a linear recipe over them.</summary>
    public static async Task<string> TwoModelRecipeAsync(this CloudSoupHost host, CloudSoupOptions o, string folder, int seed)
    {
        var ckpt = host.Services.GetRequiredService<StorageClients>().Container(o.CheckpointsContainer);
        await ckpt.UploadModelAsync($"{folder}/a.safetensors", RandomModel(seed));
        await ckpt.UploadModelAsync($"{folder}/b.safetensors", RandomModel(seed + 1));
        return $"merge_method: linear\nmodels: [{o.CheckpointsContainer}/{folder}/a.safetensors, {o.CheckpointsContainer}/{folder}/b.safetensors]\n";
    }

    public static Dictionary<string, torch.Tensor> RandomModel(int seed, int hidden = 16)
    {
        var gen = new torch.Generator((ulong)seed);
        return new Dictionary<string, torch.Tensor>
        {
            ["fc1.weight"] = torch.randn(new long[] { hidden, 8 }, generator: gen),
            ["fc1.bias"] = torch.randn(new long[] { hidden }, generator: gen),
            ["fc2.weight"] = torch.randn(new long[] { 4, hidden }, generator: gen),
            ["fc2.bias"] = torch.randn(new long[] { 4 }, generator: gen),
        };
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; fails the test (never asserts on elapsed time) if it never does.</summary>
    public static async Task<T> EventuallyAsync<T>(Func<Task<T?>> probe, string what, int maxSeconds = 90) where T : class
    {
        var deadline = DateTime.UtcNow.AddSeconds(maxSeconds);
        while (true)
        {
            if (await probe() is { } value) return value;
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException($"gave up waiting for {what}");
            await Task.Delay(100);
        }
    }

    public static async Task<JobRecord> WaitForJobAsync(this JobStore jobs, string id, Func<JobRecord, bool> done, string what) =>
        await EventuallyAsync(async () => await jobs.GetAsync(id, CancellationToken.None) is { } j && done(j) ? j : null, what);
}
