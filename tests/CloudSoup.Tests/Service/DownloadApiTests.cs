using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CloudSoup.Control.Api;
using CloudSoup.Control.Jobs;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace CloudSoup.Tests.Service;

/// <summary>
/// Getting a result back over HTTP (GET /api/merges/{id} "files", GET /api/merges/{id}/files/{name}) through the real
/// standalone host on Kestrel, a job merged by the real worker and its blobs in Azurite.
/// </summary>
[Collection(AzuriteCollection.Name)]
public class DownloadApiTests(AzuriteFixture azurite)
{
    private const string Model = "model.safetensors";

    private static string Folder(JobRecord job) => JobFiles.CommittedFolder(job);

    private static async Task<HttpResponseMessage> GetAsync(HttpClient http, string url, Action<HttpRequestHeaders>? headers = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url);
        headers?.Invoke(request.Headers);
        return await http.SendAsync(request);
    }

    private static async Task<JsonElement> ProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    [Fact]
    public async Task The_job_view_reads_the_record_not_the_folder_a_deleted_file_has_no_size_and_a_stray_blob_is_not_listed()
    {
        await using var job = await SucceededJobHost.SubmitAsync(azurite);
        var record = await job.RunJobAsync();
        string folder = Folder(record);
        var merged = job.Storage.Container(job.Options.MergedContainer);
        await merged.GetBlobClient(folder + JobOutputs.ReportHtml).DeleteAsync();
        await merged.GetBlobClient(folder + "stray.bin").UploadAsync(BinaryData.FromString("not an output"));
        await merged.GetBlobClient(folder[..^1] + "-other/" + Model).UploadAsync(BinaryData.FromString("another folder, same prefix"));

        var view = await job.ViewAsync();
        Assert.DoesNotContain(view.Files!, f => f.Name == "stray.bin");
        var gone = Assert.Single(view.Files!, f => f.Name == JobOutputs.ReportHtml);
        Assert.Null(gone.Size);
        Assert.Null(gone.ETag);
        var model = Assert.Single(view.Files!, f => f.Name == Model);
        Assert.Equal((await merged.GetBlobClient(folder + Model).GetPropertiesAsync()).Value.ContentLength, model.Size);
    }

    [Fact]
    public async Task The_job_view_lists_each_committed_file_with_its_size_md5_and_download_url_once_the_job_succeeded()
    {
        await using var job = await SucceededJobHost.SubmitAsync(azurite);
        var queued = await job.ViewAsync();
        Assert.NotNull(queued.Files);
        Assert.Empty(queued.Files);
        var record = await job.RunJobAsync();

        var view = await job.ViewAsync();
        string folder = Folder(record);
        Assert.Equal(record.Outputs.Select(o => o[(job.Options.MergedContainer.Length + 1 + folder.Length)..]), view.Files!.Select(f => f.Name));
        Assert.Contains(view.Files!, f => f.Name == Model);
        Assert.Contains(view.Files!, f => f.Name == JobOutputs.ReportJson);
        var merged = job.Storage.Container(job.Options.MergedContainer);
        foreach (var file in view.Files!)
        {
            var properties = (await merged.GetBlobClient(folder + file.Name).GetPropertiesAsync()).Value;
            Assert.Equal(properties.ContentLength, file.Size);
            Assert.Equal(properties.ETag.ToString("H"), file.ETag);
            Assert.Equal(properties.ContentHash is { Length: > 0 } md5 ? Convert.ToBase64String(md5) : null, file.Md5);
            Assert.Equal($"/api/merges/{job.JobId}/files/{file.Name}", file.Url);
        }

        // The list does not look files up (a request per file per job); it says so with null rather than an empty list.
        using var list = JsonDocument.Parse(await job.Http.GetStringAsync("/api/merges"));
        Assert.Equal(JsonValueKind.Null, list.RootElement.GetProperty("jobs")[0].GetProperty("files").ValueKind);
    }

    [Fact]
    public async Task A_file_downloads_whole_with_its_length_type_etag_and_accept_ranges()
    {
        await using var job = await SucceededJobHost.StartAsync(azurite);
        var record = (await job.Jobs.GetAsync(job.JobId, CancellationToken.None))!;
        var view = await job.ViewAsync();
        foreach (var file in view.Files!)
        {
            var response = await GetAsync(job.Http, file.Url);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            byte[] body = await response.Content.ReadAsByteArrayAsync();
            Assert.Equal(await job.MergedBlobAsync(Folder(record) + file.Name), body);
            Assert.Equal(file.Size, response.Content.Headers.ContentLength);
            Assert.Equal(JobOutputs.ContentType(file.Name), response.Content.Headers.ContentType!.ToString());
            Assert.Equal(file.ETag, response.Headers.ETag!.ToString());
            Assert.Equal(["bytes"], response.Headers.AcceptRanges);
            Assert.Equal(file.Name, response.Content.Headers.ContentDisposition!.FileNameStar ?? response.Content.Headers.ContentDisposition.FileName);
        }
    }

    [Fact]
    public async Task Range_requests_answer_206_with_the_bytes_asked_for_or_416_and_honour_if_range_and_if_none_match()
    {
        await using var job = await SucceededJobHost.StartAsync(azurite);
        var record = (await job.Jobs.GetAsync(job.JobId, CancellationToken.None))!;
        var file = (await job.ViewAsync()).Files!.Single(f => f.Name == Model);
        byte[] blob = await job.MergedBlobAsync(Folder(record) + Model);
        long size = blob.Length;
        Assert.True(size > 100, $"{size}");

        async Task Partial(string range, long from, long to)
        {
            var response = await GetAsync(job.Http, file.Url, h => h.TryAddWithoutValidation("Range", range));
            Assert.True(response.StatusCode == HttpStatusCode.PartialContent, $"{range}: {response.StatusCode}");
            Assert.Equal($"bytes {from}-{to}/{size}", response.Content.Headers.ContentRange!.ToString());
            Assert.Equal(to - from + 1, response.Content.Headers.ContentLength);
            Assert.Equal(blob[(int)from..(int)(to + 1)], await response.Content.ReadAsByteArrayAsync());
            Assert.Equal(file.ETag, response.Headers.ETag!.ToString());
        }
        await Partial("bytes=10-19", 10, 19);
        await Partial("bytes=0-0", 0, 0);
        await Partial("bytes=-7", size - 7, size - 1);                       // suffix: the last 7 bytes
        await Partial($"bytes=-{size + 50}", 0, size - 1);                   // a suffix longer than the file is all of it
        await Partial("bytes=100-", 100, size - 1);                          // open range
        await Partial($"bytes=20-{size * 10}", 20, size - 1);                // an end past the file is cut at the end
        await Partial($"bytes={size - 1}-", size - 1, size - 1);

        foreach (var unsatisfiable in new[] { $"bytes={size}-", $"bytes={size + 5}-{size + 9}", "bytes=-0" })
        {
            var response = await GetAsync(job.Http, file.Url, h => h.TryAddWithoutValidation("Range", unsatisfiable));
            var problem = await ProblemAsync(response, HttpStatusCode.RequestedRangeNotSatisfiable);
            Assert.Equal($"bytes */{size}", response.Content.Headers.ContentRange!.ToString());
            Assert.Contains($"{size} bytes long", problem.GetProperty("detail").GetString());
        }

        // Ranges the server may ignore (RFC 9110 §14.2) come back whole: several ranges, another unit, nonsense, end before start.
        foreach (var ignored in new[] { "bytes=0-1,5-6", "items=0-1", "bytes=abc", "bytes=9-3", "bytes=" + new string('1', 200) + "-" })
        {
            var response = await GetAsync(job.Http, file.Url, h => h.TryAddWithoutValidation("Range", ignored));
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{ignored}: {response.StatusCode}");
            Assert.Equal(blob, await response.Content.ReadAsByteArrayAsync());
        }

        // If-Range: the range applies to the version the client holds; another version comes back whole.
        var same = await GetAsync(job.Http, file.Url, h => { h.TryAddWithoutValidation("Range", "bytes=5-9"); h.TryAddWithoutValidation("If-Range", file.ETag); });
        Assert.Equal(HttpStatusCode.PartialContent, same.StatusCode);
        var other = await GetAsync(job.Http, file.Url, h => { h.TryAddWithoutValidation("Range", "bytes=5-9"); h.TryAddWithoutValidation("If-Range", "\"0x0\""); });
        Assert.Equal(HttpStatusCode.OK, other.StatusCode);
        Assert.Equal(blob, await other.Content.ReadAsByteArrayAsync());

        var notModified = await GetAsync(job.Http, file.Url, h => h.TryAddWithoutValidation("If-None-Match", file.ETag));
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Equal(file.ETag, notModified.Headers.ETag!.ToString());
        Assert.Empty(await notModified.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Files_of_an_uncommitted_attempt_or_beside_the_committed_ones_are_neither_listed_nor_served()
    {
        await using var job = await SucceededJobHost.StartAsync(azurite);
        var record = (await job.Jobs.GetAsync(job.JobId, CancellationToken.None))!;
        var merged = job.Storage.Container(job.Options.MergedContainer);
        // What a killed attempt, a stray upload or an old layout could leave next to the committed folder.
        string unfinished = JobAttempts.Folder(job.JobId, "attempt-9-deadbeef");
        await merged.UploadTextAsync($"{unfinished}/{Model}", "half-written");
        await merged.UploadTextAsync($"{unfinished}/secret.bin", "not a result");
        await merged.UploadTextAsync($"{Folder(record)}extra.bin", "not named by the record");
        await merged.UploadTextAsync($"{job.JobId}/stray.bin", "not named by the record");

        var view = await job.ViewAsync();
        Assert.DoesNotContain(view.Files!, f => f.Name.Contains("secret") || f.Name.Contains("extra") || f.Name.Contains("stray") || f.Name.Contains("attempt-9"));
        Assert.Equal(record.Outputs.Count, view.Files!.Count);

        foreach (var name in new[] { "extra.bin", "secret.bin", "stray.bin", $"attempt-9-deadbeef/{Model}", "nope.safetensors" })
        {
            var problem = await ProblemAsync(await job.Http.GetAsync(JobView.FileLink(job.JobId, name)), HttpStatusCode.NotFound);
            Assert.Equal("no such file", problem.GetProperty("title").GetString());
        }
        // The committed model is the merge's, not what the unfinished attempt wrote.
        Assert.Equal(await job.MergedBlobAsync(Folder(record) + Model), await job.Http.GetByteArrayAsync(JobView.FileLink(job.JobId, Model)));

        // Ways out of the folder never reach storage: refused (400) or not a file of the job (404), never served.
        foreach (var path in new[] { $"..%2F..%2F{unfinished}%2Fsecret.bin", $"%2E%2E%2Fattempt-9-deadbeef%2Fsecret.bin", "..%5Csecret.bin", "a%00b" })
        {
            var response = await job.Http.GetAsync($"/api/merges/{job.JobId}/files/{path}");
            Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound, $"{path}: {response.StatusCode}");
            Assert.DoesNotContain("not a result", await response.Content.ReadAsStringAsync());
        }
    }

    [Theory]
    [InlineData("../attempt-9-deadbeef/secret.bin")]
    [InlineData("./model.safetensors")]
    [InlineData("/etc/passwd")]
    [InlineData("a//b")]
    [InlineData("..\\secret.bin")]
    [InlineData("c:secret.bin")]
    [InlineData("a\nb")]
    [InlineData("")]
    public async Task A_name_that_could_leave_the_output_folder_is_400_naming_the_field_without_quoting_it(string name)
    {
        await using var job = await SucceededJobHost.StartAsync(azurite);
        var api = job.Host.Services.GetRequiredService<MergeApi>();
        var context = new DefaultHttpContext { RequestServices = job.Host.Services };
        context.Response.Body = new MemoryStream();
        await (await api.GetFileAsync(context.Request, job.JobId, name, CancellationToken.None)).ExecuteAsync(context);
        Assert.Equal(400, context.Response.StatusCode);
        using var problem = JsonDocument.Parse(((MemoryStream)context.Response.Body).ToArray());
        Assert.Equal("name", problem.RootElement.GetProperty("field").GetString());
        Assert.Equal("invalid file name", problem.RootElement.GetProperty("title").GetString());
        if (name.Length > 0) Assert.DoesNotContain(name, problem.RootElement.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Unknown_jobs_are_404_and_jobs_that_have_not_succeeded_409()
    {
        await using var job = await SucceededJobHost.SubmitAsync(azurite);
        var unknown = await ProblemAsync(await job.Http.GetAsync(JobView.FileLink("0123456789abcdef0123", Model)), HttpStatusCode.NotFound);
        Assert.Equal("no such job", unknown.GetProperty("title").GetString());
        var queued = await ProblemAsync(await job.Http.GetAsync(JobView.FileLink(job.JobId, Model)), HttpStatusCode.Conflict);
        Assert.Contains("queued", queued.GetProperty("detail").GetString());
    }
}
