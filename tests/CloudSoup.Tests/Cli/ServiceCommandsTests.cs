using CloudSoup.Worker.Hosting;
using System.CommandLine;
using System.Net.Http.Json;
using CloudSoup.Cli.Commands;
using CloudSoup.Engine.Formats;
using CloudSoup.Control.Api;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Control.Jobs;
using CloudSoup.Tests.Service;
using CloudSoup.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Tests.Cli;

/// <summary>`cloudsoup submit` and `cloudsoup status --wait` against a running standalone host.</summary>
[Collection(AzuriteCollection.Name)]
public class ServiceCommandsTests(AzuriteFixture azurite)
{
    private static Task<int> RunAsync(params string[] args)
    {
        var root = new RootCommand { SubmitCommand.Create(), StatusCommand.Create(), UploadCommand.Create() };
        return root.Parse(args).InvokeAsync();
    }

    [Fact]
    public async Task Submit_then_status_wait_follows_the_job_to_success_and_bad_recipes_exit_2()
    {
        var options = azurite.NewOptions();
        await using var host = await CloudSoupHost.StartAsync(options, new CloudSoupHostOptions { RunWatcher = false, MinimumLogLevel = LogLevel.Warning, ExtraServices = s => s.AddCloudSoupWorkerHostedService(options) }, CancellationToken.None);
        var ckpt = host.Services.GetRequiredService<StorageClients>().Container(options.CheckpointsContainer);
        await ckpt.UploadModelAsync("cli/a.safetensors", TestBlobs.RandomModel(31));
        await ckpt.UploadModelAsync("cli/b.safetensors", TestBlobs.RandomModel(32));
        using var dir = new TempDir();
        File.WriteAllText(dir["good.yaml"], $"merge_method: linear\nmodels: [{{model: {options.CheckpointsContainer}/cli/a.safetensors}}, {{model: {options.CheckpointsContainer}/cli/b.safetensors}}]\n");
        File.WriteAllText(dir["bad.yaml"], "merge_method: linear\nmodels: [{model: a.safetensors, parameters: {weigth: 1}}]\n");
        string api = host.Url.ToString();

        Assert.Equal(2, await RunAsync("submit", dir["bad.yaml"], "--api", api));
        Assert.Equal(0, await RunAsync("submit", dir["good.yaml"], "--api", api));
        using var http = new HttpClient { BaseAddress = host.Url };
        var job = Assert.Single((await http.GetFromJsonAsync<JobListView>("/api/merges", JobView.Json))!.Jobs);

        Assert.Equal(0, await RunAsync("status", job.Id, "--wait", "--api", api));
        var done = (await http.GetFromJsonAsync<JobView>($"/api/merges/{job.Id}", JobView.Json))!;
        Assert.Equal(JobStatus.Succeeded, done.Status);
        Assert.Equal(0, await RunAsync("status", "--api", api));
        Assert.Equal(2, await RunAsync("status", "0123456789abcdef0123", "--api", api));
    }

    [Fact]
    public async Task Upload_puts_files_into_the_default_containers_and_refuses_other_targets_with_exit_2()
    {
        using var dir = new TempDir();
        SafetensorsFiles.Write(dir["a.safetensors"], TestBlobs.RandomModel(41));
        string prefix = $"cli-upload-{Guid.NewGuid():N}";
        Assert.Equal(0, await RunAsync("upload", dir["a.safetensors"], "--to", $"checkpoints/{prefix}/", "--storage", azurite.ConnectionString));
        var blob = new StorageClients(new CloudSoupOptions { ConnectionString = azurite.ConnectionString }).Container("checkpoints").GetBlobClient($"{prefix}/a.safetensors");
        Assert.Equal(File.ReadAllBytes(dir["a.safetensors"]), (await blob.DownloadContentAsync()).Value.Content.ToArray());
        Assert.Equal(2, await RunAsync("upload", dir["a.safetensors"], "--to", "merged/x/", "--storage", azurite.ConnectionString));
        Assert.Equal(2, await RunAsync("upload", dir["missing.safetensors"], "--to", "checkpoints/x/", "--storage", azurite.ConnectionString));
    }
}
