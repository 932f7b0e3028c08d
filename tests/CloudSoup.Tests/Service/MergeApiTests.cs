using CloudSoup.Worker.Hosting;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CloudSoup.Control.Api;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Control.Jobs;
using CloudSoup.Worker.Queue;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Tests.Service;

/// <summary>The HTTP contract, through the real standalone host on Kestrel (127.0.0.1, dynamic port).</summary>
[Collection(AzuriteCollection.Name)]
public class MergeApiTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private async Task<(CloudSoupHost Host, HttpClient Http, CloudSoupOptions Options)> StartAsync(bool worker, bool watcher)
    {
        var options = azurite.NewOptions();
        var host = await CloudSoupHost.StartAsync(options, new CloudSoupHostOptions { ExtraServices = s => { if (worker) s.AddCloudSoupWorkerHostedService(options); else s.AddCloudSoupWorker(options); }, RunWatcher = watcher, MinimumLogLevel = LogLevel.Warning }, None);
        return (host, new HttpClient { BaseAddress = host.Url }, options);
    }

    private static StringContent Yaml(string text) => new(text, Encoding.UTF8, "application/yaml");

    private static async Task<string> UploadTwoModelsAsync(CloudSoupHost host, CloudSoupOptions o, string experiment)
    {
        var ckpt = host.Services.GetRequiredService<StorageClients>().Container(o.CheckpointsContainer);
        await ckpt.UploadModelAsync($"{experiment}/a.safetensors", TestBlobs.RandomModel(11));
        await ckpt.UploadModelAsync($"{experiment}/b.safetensors", TestBlobs.RandomModel(12));
        return $"merge_method: linear\nmodels:\n  - model: {o.CheckpointsContainer}/{experiment}/a.safetensors\n  - model: {o.CheckpointsContainer}/{experiment}/b.safetensors\n";
    }

    [Fact]
    public async Task Submit_answers_202_with_location_then_the_job_goes_from_queued_to_succeeded()
    {
        var (host, http, o) = await StartAsync(worker: false, watcher: false);
        await using var _ = host;
        string recipe = await UploadTwoModelsAsync(host, o, "api");

        var post = await http.PostAsync("/api/merges", Yaml(recipe));
        Assert.Equal(HttpStatusCode.Accepted, post.StatusCode);
        var submitted = (await post.Content.ReadFromJsonAsync<SubmitView>(JobView.Json))!;
        Assert.Equal(JobStatus.Queued, submitted.Status);
        Assert.Equal($"/api/merges/{submitted.Id}", post.Headers.Location!.OriginalString);
        Assert.Equal($"/api/merges/{submitted.Id}/report", submitted.Links.Report);

        var queued = (await http.GetFromJsonAsync<JobView>(post.Headers.Location, JobView.Json))!;
        Assert.Equal(JobStatus.Queued, queued.Status);
        Assert.Null(queued.Started);
        var noReport = await http.GetAsync($"/api/merges/{submitted.Id}/report");
        Assert.Equal(HttpStatusCode.Conflict, noReport.StatusCode);

        Assert.True(await host.Services.GetRequiredService<JobProcessor>().ProcessNextAsync(None));

        var done = (await http.GetFromJsonAsync<JobView>(post.Headers.Location, JobView.Json))!;
        Assert.Equal(JobStatus.Succeeded, done.Status);
        Assert.NotNull(done.Started);
        Assert.NotNull(done.Finished);
        Assert.Null(done.Error);
        Assert.Contains(done.Outputs, x => x.StartsWith($"{o.MergedContainer}/{submitted.Id}/attempt-1-", StringComparison.Ordinal) && x.EndsWith("/model.safetensors", StringComparison.Ordinal));

        var html = await http.GetAsync(submitted.Links.Report);
        Assert.Equal("text/html", html.Content.Headers.ContentType!.MediaType);
        Assert.Contains("<html", await html.Content.ReadAsStringAsync(), StringComparison.OrdinalIgnoreCase);
        var json = JsonDocument.Parse(await http.GetStringAsync(submitted.Links.Report + "?format=json"));
        Assert.Equal(submitted.Id, json.RootElement.GetProperty("jobId").GetString());
        var byAccept = new HttpRequestMessage(HttpMethod.Get, submitted.Links.Report) { Headers = { { "Accept", "application/json" } } };
        Assert.Equal("application/json", (await http.SendAsync(byAccept)).Content.Headers.ContentType!.MediaType);

        var list = (await http.GetFromJsonAsync<JobListView>("/api/merges", JobView.Json))!;
        Assert.Equal(submitted.Id, Assert.Single(list.Jobs).Id);

        // The same recipe again: the same job, 200, nothing new queued.
        var again = await http.PostAsync("/api/merges", Yaml(recipe));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(submitted.Id, (await again.Content.ReadFromJsonAsync<SubmitView>(JobView.Json))!.Id);
        Assert.False(await host.Services.GetRequiredService<JobProcessor>().ProcessNextAsync(None));
    }

    [Theory]
    [InlineData("merge_method: linear\n", "models")]
    [InlineData("merge_method: frankenmerge\nmodels: [{model: checkpoints/x/a.safetensors}]\n", "merge_method")]
    [InlineData("merge_method: linear\nmodels:\n  - model: checkpoints/x/a.safetensors\n    parameters: {weight: heavy}\n", "models[0].parameters.weight")]
    [InlineData("merge_method: linear\nmodels: [{model: a.safetensors}]\n", "models[0].model")]
    [InlineData("{\"merge_method\": \"linear\", \"models\": [{\"model\": \"checkpoints/x/a.safetensors\"}], \"dtpye\": \"float16\"}", "dtpye")]
    [InlineData("", "recipe")]
    public async Task A_bad_recipe_gets_400_problem_json_naming_the_field(string body, string field)
    {
        var (host, http, _) = await StartAsync(worker: false, watcher: false);
        await using var _ = host;
        var response = await http.PostAsync("/api/merges", Yaml(body));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(400, problem.GetProperty("status").GetInt32());
        Assert.Equal(field, problem.GetProperty("field").GetString());
        Assert.Contains(field, problem.GetProperty("detail").GetString());
        Assert.Empty((await http.GetFromJsonAsync<JobListView>("/api/merges", JobView.Json))!.Jobs);
    }

    [Fact]
    public async Task Unknown_jobs_are_404()
    {
        var (host, http, _) = await StartAsync(worker: false, watcher: false);
        await using var _ = host;
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/api/merges/0123456789abcdef0123")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/api/merges/not-an-id/report")).StatusCode);
    }

    [Fact]
    public async Task With_worker_and_watcher_running_a_soup_folder_drop_ends_as_a_merged_model()
    {
        var (host, http, o) = await StartAsync(worker: true, watcher: true);
        await using var _ = host;
        var ckpt = host.Services.GetRequiredService<StorageClients>().Container(o.CheckpointsContainer);
        await ckpt.UploadTextAsync("drop/soup.yaml", "merge_method: linear\nmodels: [{model: a.safetensors}, {model: b.safetensors}]\n");
        await ckpt.UploadModelAsync("drop/a.safetensors", TestBlobs.RandomModel(21));
        await ckpt.UploadModelAsync("drop/b.safetensors", TestBlobs.RandomModel(22));

        var job = await TestBlobs.EventuallyAsync(async () =>
            (await http.GetFromJsonAsync<JobListView>("/api/merges", JobView.Json))!.Jobs.FirstOrDefault(j => j.Status is JobStatus.Succeeded or JobStatus.Failed),
            "the dropped soup to be merged");
        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.Equal($"blob:{o.CheckpointsContainer}/drop/soup.yaml", job.Source);
        Assert.Contains(job.Outputs, x => x.StartsWith($"{o.MergedContainer}/{job.Id}/attempt-1-", StringComparison.Ordinal) && x.EndsWith("/model.safetensors", StringComparison.Ordinal));
        Assert.Single((await http.GetFromJsonAsync<JobListView>("/api/merges", JobView.Json))!.Jobs);
    }
}
