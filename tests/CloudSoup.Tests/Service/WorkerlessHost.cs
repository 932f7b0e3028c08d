// The service without a worker, for tests that run real `cloudsoup worker` processes against it (FanOutTests,
// SoupFanOutTests): a host (API, no drop watcher) on Azurite that does not reconcile and retries three times, its
// storage clients, an HTTP client for the API and a local folder; models go under checkpoints/<folder>/.
using System.Net;
using System.Net.Http.Json;
using System.Text;
using CloudSoup.Control.Api;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Control.Storage;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using CloudSoup.Worker.Queue;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSoup.Tests.Service;

internal sealed record WorkerlessHost(CloudSoupOptions Options, StorageClients Storage, CloudSoupHost Host, HttpClient Http, string Models, TempDir Dir) : IAsyncDisposable
{
    public JobStore Jobs => new(Storage.JobsTable);

    /// <summary>An in-process worker over this host's storage, for the steps a test drives itself (ProcessNextAsync).</summary>
    public JobProcessor Processor() => new(Storage, Jobs, NullLogger<JobProcessor>.Instance);

    /// <summary>A reconciler over this host's storage, run when the test says (the host itself does not reconcile).</summary>
    public JobReconciler Reconciler() => new(Storage, Jobs, NullLogger<JobReconciler>.Instance);

    public static async Task<WorkerlessHost> StartAsync(AzuriteFixture azurite, string folder, Action<CloudSoupOptions>? configure = null)
    {
        var dir = new TempDir();
        var options = azurite.NewOptions();
        options.MaxAttempts = 3;
        options.ReconcileInterval = TimeSpan.Zero;        // only the workers act on the jobs here
        configure?.Invoke(options);
        var host = await CloudSoupHost.StartAsync(options, new CloudSoupHostOptions { RunWatcher = false, MinimumLogLevel = LogLevel.Warning }, CancellationToken.None);
        return new WorkerlessHost(options, new StorageClients(options), host, new HttpClient { BaseAddress = host.Url }, $"{options.CheckpointsContainer}/{folder}", dir);
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Host.DisposeAsync();
        Dir.Dispose();
    }

    public async Task<string> SubmitAsync(string recipe)
    {
        var post = await Http.PostAsync("/api/merges", new StringContent(recipe, Encoding.UTF8, "application/yaml"));
        Assert.True(post.StatusCode == HttpStatusCode.Accepted, await post.Content.ReadAsStringAsync());
        return (await post.Content.ReadFromJsonAsync<SubmitView>(JobView.Json))!.Id;
    }

    /// <summary>
    /// <paramref name="recipe"/> run whole in this process on the local copies under <paramref name="models"/> (with
    /// <paramref name="evaluator"/> when it evaluates), into a new folder of <see cref="Dir"/>: the result every split
    /// must reproduce. Returns that folder.
    /// </summary>
    public async Task<string> ReferenceAsync(string models, string recipe, IJobEvaluator? evaluator = null)
    {
        string outDir = Dir[$"reference-{Guid.NewGuid():N}"];
        await using (var sink = new LocalDirectorySink(outDir))
            await new MergeJobRunner(new LocalCheckpointStore(models), evaluator).RunAsync(RecipeParser.Parse(recipe), sink, null, CancellationToken.None);
        return outDir;
    }

    public async Task<byte[]> ReadAsync(string containerPath)
    {
        var path = BlobPath.Parse(containerPath);
        return (await Storage.Container(path.Container).GetBlobClient(path.Name).DownloadContentAsync()).Value.Content.ToArray();
    }
}
