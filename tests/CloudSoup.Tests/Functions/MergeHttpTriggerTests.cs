using CloudSoup.Control.Api;
using CloudSoup.Tests.Service;
using CloudSoup.Worker.Queue;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSoup.Tests.Functions;

/// <summary>
/// The five HTTP triggers, invoked with real requests on the app built from app settings, against Azurite. The
/// queue worker is not part of the Functions app; where a job must run, the worker's JobProcessor runs it here.
/// </summary>
[Collection(AzuriteCollection.Name)]
public class MergeHttpTriggerTests(AzuriteFixture azurite)
{
    private const string Json = "application/json; charset=utf-8";

    private static async Task<string> UploadTwoModelsAsync(FunctionsTestHost app, string experiment)
    {
        string container = app.Configured.CheckpointsContainer;
        var ckpt = app.Storage.Container(container);
        await ckpt.UploadModelAsync($"{experiment}/a.safetensors", TestBlobs.RandomModel(61));
        await ckpt.UploadModelAsync($"{experiment}/b.safetensors", TestBlobs.RandomModel(62));
        return $"merge_method: linear\nname: fn\nmodels:\n  - model: {container}/{experiment}/a.safetensors\n  - model: {container}/{experiment}/b.safetensors\n";
    }

    [Fact]
    public async Task Submit_get_list_and_report_follow_a_job_from_queued_to_succeeded()
    {
        using var app = await FunctionsTestHost.CreateAsync(azurite);
        string recipe = await UploadTwoModelsAsync(app, "fn");

        var submitted = await app.SubmitAsync(recipe);
        Assert.Equal(202, submitted.Status);
        Assert.Equal(Json, submitted.ContentType);
        Assert.Equal(["id", "status", "links"], submitted.Properties);
        string id = submitted.Json.GetProperty("id").GetString()!;
        Assert.True(CloudSoup.Control.Jobs.JobIds.IsValid(id), id);
        Assert.Equal(JobStatus.Queued, submitted.Json.GetProperty("status").GetString());
        Assert.Equal($"/api/merges/{id}", submitted.Location);
        Assert.Equal($"/api/merges/{id}", submitted.Json.GetProperty("links").GetProperty("self").GetString());
        Assert.Equal($"/api/merges/{id}/report", submitted.Json.GetProperty("links").GetProperty("report").GetString());

        var queued = await app.GetAsync(id);
        Assert.Equal((200, Json), (queued.Status, queued.ContentType));
        Assert.Equal(id, queued.Json.GetProperty("id").GetString());
        Assert.Equal(JobStatus.Queued, queued.Json.GetProperty("status").GetString());
        Assert.Equal("fn", queued.Json.GetProperty("name").GetString());
        Assert.Equal("api", queued.Json.GetProperty("source").GetString());

        var list = await app.ListAsync();
        Assert.Equal((200, Json), (list.Status, list.ContentType));
        Assert.Equal(id, Assert.Single(list.Json.GetProperty("jobs").EnumerateArray()).GetProperty("id").GetString());

        var early = await app.ReportAsync(id);
        Assert.Equal((409, "application/problem+json"), (early.Status, early.MediaType));
        Assert.Contains("queued", early.Json.GetProperty("detail").GetString());

        // The worker (a Container Apps job in Azure, not part of this app) takes the message and runs the merge.
        var worker = new JobProcessor(app.Storage, app.Jobs, NullLogger<JobProcessor>.Instance);
        Assert.True(await worker.ProcessNextAsync(CancellationToken.None));

        var done = await app.GetAsync(id);
        Assert.Equal(JobStatus.Succeeded, done.Json.GetProperty("status").GetString());
        var committed = (await app.Jobs.GetAsync(id, CancellationToken.None))!.CommittedAttempt!;
        Assert.Contains($"{app.Configured.MergedContainer}/{id}/{committed}/model.safetensors", done.Json.GetProperty("outputs").EnumerateArray().Select(o => o.GetString()));

        // The download trigger: the files the view lists, whole and by range, found through the record.
        var files = done.Json.GetProperty("files").EnumerateArray().ToList();
        var model = files.Single(f => f.GetProperty("name").GetString() == "model.safetensors");
        byte[] blob = (await app.Storage.Container(app.Configured.MergedContainer).GetBlobClient($"{id}/{committed}/model.safetensors").DownloadContentAsync()).Value.Content.ToArray();
        Assert.Equal(blob.Length, model.GetProperty("size").GetInt64());
        Assert.Equal($"/api/merges/{id}/files/model.safetensors", model.GetProperty("url").GetString());
        var whole = await app.FileAsync(id, "model.safetensors");
        Assert.Equal((200, "application/octet-stream"), (whole.Status, whole.ContentType));
        Assert.Equal(blob, whole.Body);
        var tail = await app.FileAsync(id, "model.safetensors", new Dictionary<string, string> { ["Range"] = "bytes=-5" });
        Assert.Equal((206, $"bytes {blob.Length - 5}-{blob.Length - 1}/{blob.Length}"), (tail.Status, tail.ContentRange));
        Assert.Equal(blob[^5..], tail.Body);
        var beyond = await app.FileAsync(id, "model.safetensors", new Dictionary<string, string> { ["Range"] = $"bytes={blob.Length}-" });
        Assert.Equal((416, $"bytes */{blob.Length}"), (beyond.Status, beyond.ContentRange));
        Assert.Equal(404, (await app.FileAsync(id, "nope.bin")).Status);
        Assert.Equal(400, (await app.FileAsync(id, "../x")).Status);

        var html = await app.ReportAsync(id);
        Assert.Equal((200, "text/html"), (html.Status, html.MediaType));
        Assert.Contains("<html", html.Text, StringComparison.OrdinalIgnoreCase);
        var byQuery = await app.ReportAsync(id, "?format=json");
        Assert.Equal((200, "application/json"), (byQuery.Status, byQuery.MediaType));
        Assert.Equal(id, byQuery.Json.GetProperty("jobId").GetString());
        var byAccept = await app.ReportAsync(id, accept: "application/json");
        Assert.Equal((200, "application/json"), (byAccept.Status, byAccept.MediaType));

        // The same recipe over the same blobs: the same job, 200, nothing queued.
        var again = await app.SubmitAsync(recipe);
        Assert.Equal(200, again.Status);
        Assert.Equal(id, again.Json.GetProperty("id").GetString());
        Assert.False(await worker.ProcessNextAsync(CancellationToken.None));
    }

    [Theory]
    [InlineData("merge_method: linear\n", "models")]
    [InlineData("merge_method: frankenmerge\nmodels: [{model: checkpoints/x/a.safetensors}]\n", "merge_method")]
    [InlineData("merge_method: linear\nmodels: [{model: a.safetensors}]\n", "models[0].model")]
    [InlineData("{\"merge_method\": \"linear\", \"models\": [{\"model\": \"checkpoints/x/a.safetensors\"}], \"dtpye\": \"float16\"}", "dtpye")]
    [InlineData("", "recipe")]
    public async Task A_bad_recipe_gets_400_problem_json_naming_the_field_and_no_job(string body, string field)
    {
        using var app = await FunctionsTestHost.CreateAsync(azurite);
        var answer = await app.SubmitAsync(body);
        Assert.Equal((400, "application/problem+json"), (answer.Status, answer.MediaType));
        Assert.Null(answer.Location);
        var problem = answer.Json;
        Assert.Equal(400, problem.GetProperty("status").GetInt32());
        Assert.Equal("invalid recipe", problem.GetProperty("title").GetString());
        Assert.Equal(field, problem.GetProperty("field").GetString());
        Assert.Contains(field, problem.GetProperty("detail").GetString());
        Assert.Empty((await app.ListAsync()).Json.GetProperty("jobs").EnumerateArray());
    }

    [Fact]
    public async Task Unknown_jobs_are_404_problems_and_list_honours_limit()
    {
        using var app = await FunctionsTestHost.CreateAsync(azurite);
        foreach (var answer in new[] { await app.GetAsync("0123456789abcdef0123"), await app.ReportAsync("not-an-id") })
        {
            Assert.Equal((404, "application/problem+json"), (answer.Status, answer.MediaType));
            Assert.Equal("no such job", answer.Json.GetProperty("title").GetString());
        }

        var ckpt = app.Storage.Container(app.Configured.CheckpointsContainer);
        await ckpt.UploadModelAsync("lim/a.safetensors", TestBlobs.RandomModel(71));
        foreach (var weight in new[] { 1, 2 })
            Assert.Equal(202, (await app.SubmitAsync($"merge_method: linear\nmodels: [{{model: {ckpt.Name}/lim/a.safetensors, parameters: {{weight: {weight}}}}}]\n")).Status);
        Assert.Equal(2, (await app.ListAsync()).Json.GetProperty("jobs").GetArrayLength());
        Assert.Equal(1, (await app.ListAsync("?limit=1")).Json.GetProperty("jobs").GetArrayLength());
        Assert.Equal(2, (await app.ListAsync("?limit=many")).Json.GetProperty("jobs").GetArrayLength());   // not a number: the default
    }
}
