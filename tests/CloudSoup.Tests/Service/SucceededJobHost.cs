using System.Net;
using System.Net.Http.Json;
using System.Text;
using CloudSoup.Control.Api;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Control.Jobs;
using CloudSoup.Worker.Hosting;
using CloudSoup.Worker.Queue;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Tests.Service;

/// <summary>
/// The standalone host on Azurite with one merge job submitted over HTTP; <see cref="RunJobAsync"/> runs it through
/// the real worker's JobProcessor, so its outputs are a committed attempt named by the job record.
/// </summary>
public sealed class SucceededJobHost : IAsyncDisposable
{
    private SucceededJobHost(CloudSoupHost host, CloudSoupOptions options, string jobId)
    {
        Host = host;
        Options = options;
        JobId = jobId;
        Http = new HttpClient { BaseAddress = host.Url };
    }

    public CloudSoupHost Host { get; }
    public CloudSoupOptions Options { get; }
    public string JobId { get; }
    public HttpClient Http { get; }
    public StorageClients Storage => Host.Services.GetRequiredService<StorageClients>();
    public JobStore Jobs => Host.Services.GetRequiredService<JobStore>();

    /// <summary>Starts the host and submits a linear merge of two small models (queued, not yet run).</summary>
    public static async Task<SucceededJobHost> SubmitAsync(AzuriteFixture azurite, int seed = 81)
    {
        var options = azurite.NewOptions();
        var host = await CloudSoupHost.StartAsync(options, new CloudSoupHostOptions { ExtraServices = s => s.AddCloudSoupWorker(options), RunWatcher = false, MinimumLogLevel = LogLevel.Warning }, CancellationToken.None);
        try
        {
            var ckpt = host.Services.GetRequiredService<StorageClients>().Container(options.CheckpointsContainer);
            await ckpt.UploadModelAsync("dl/a.safetensors", TestBlobs.RandomModel(seed));
            await ckpt.UploadModelAsync("dl/b.safetensors", TestBlobs.RandomModel(seed + 1));
            using var http = new HttpClient { BaseAddress = host.Url };
            var post = await http.PostAsync("/api/merges", new StringContent(
                $"merge_method: linear\nname: download\nmodels: [{{model: {options.CheckpointsContainer}/dl/a.safetensors}}, {{model: {options.CheckpointsContainer}/dl/b.safetensors}}]\n",
                Encoding.UTF8, "application/yaml"));
            Assert.Equal(HttpStatusCode.Accepted, post.StatusCode);
            var submitted = (await post.Content.ReadFromJsonAsync<SubmitView>(JobView.Json))!;
            return new SucceededJobHost(host, options, submitted.Id);
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts the host, submits the job and runs it to success.</summary>
    public static async Task<SucceededJobHost> StartAsync(AzuriteFixture azurite, int seed = 81)
    {
        var job = await SubmitAsync(azurite, seed);
        await job.RunJobAsync();
        return job;
    }

    public async Task<JobRecord> RunJobAsync()
    {
        Assert.True(await Host.Services.GetRequiredService<JobProcessor>().ProcessNextAsync(CancellationToken.None));
        var record = (await Jobs.GetAsync(JobId, CancellationToken.None))!;
        Assert.Equal(JobStatus.Succeeded, record.Status);
        return record;
    }

    public async Task<JobView> ViewAsync() => (await Http.GetFromJsonAsync<JobView>($"/api/merges/{JobId}", JobView.Json))!;

    /// <summary>The bytes of a blob in the merged container.</summary>
    public async Task<byte[]> MergedBlobAsync(string name) =>
        (await Storage.Container(Options.MergedContainer).GetBlobClient(name).DownloadContentAsync()).Value.Content.ToArray();

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Host.DisposeAsync();
    }
}
