using System.Text;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Tests.Service;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Tests.Functions;

/// <summary>
/// The Functions app and the standalone host (Kestrel, minimal APIs) answer the same requests the same way:
/// status, content type, Location and body (timestamps aside). Each has its own jobs table, queue and containers,
/// but both read the same checkpoints, so the same recipe is the same job id on both.
/// </summary>
[Collection(AzuriteCollection.Name)]
public class FunctionsParityTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private sealed record Hosts(FunctionsTestHost Functions, CloudSoupHost Standalone, HttpClient Http) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            Functions.Dispose();
            await Standalone.DisposeAsync();
        }
    }

    private async Task<Hosts> StartBothAsync()
    {
        var functions = await FunctionsTestHost.CreateAsync(azurite);
        var standaloneOptions = azurite.NewOptions();
        standaloneOptions.CheckpointsContainer = functions.Configured.CheckpointsContainer;
        var standalone = await CloudSoupHost.StartAsync(standaloneOptions,
            new CloudSoupHostOptions { RunWatcher = false, MinimumLogLevel = LogLevel.Warning }, None);
        return new Hosts(functions, standalone, new HttpClient { BaseAddress = standalone.Url });
    }

    private static void AssertSame(HttpAnswer functions, HttpAnswer standalone, string request)
    {
        Assert.True(functions.Status == standalone.Status, $"{request}: Functions {functions.Status}, standalone {standalone.Status}");
        Assert.True(functions.ContentType == standalone.ContentType, $"{request}: Functions '{functions.ContentType}', standalone '{standalone.ContentType}'");
        Assert.True(functions.Location == standalone.Location, $"{request}: Functions Location '{functions.Location}', standalone '{standalone.Location}'");
        Assert.Equal(standalone.ComparableJson(), functions.ComparableJson());
    }

    [Fact]
    public async Task The_same_requests_get_the_same_answers_from_the_Functions_triggers_and_the_standalone_host()
    {
        await using var hosts = await StartBothAsync();
        var (app, http) = (hosts.Functions, hosts.Http);
        string ckpt = app.Configured.CheckpointsContainer;
        await app.Storage.Container(ckpt).UploadModelAsync("parity/a.safetensors", TestBlobs.RandomModel(51));
        await app.Storage.Container(ckpt).UploadModelAsync("parity/b.safetensors", TestBlobs.RandomModel(52));
        string valid = $"merge_method: linear\nname: parity\nmodels:\n  - model: {ckpt}/parity/a.safetensors\n  - model: {ckpt}/parity/b.safetensors\n";

        async Task<HttpAnswer> Post(string body) => await HttpAnswer.FromAsync(await http.PostAsync("/api/merges", new StringContent(body, Encoding.UTF8, "application/yaml")));
        async Task<HttpAnswer> Get(string path) => await HttpAnswer.FromAsync(await http.GetAsync(path));

        var submittedF = await app.SubmitAsync(valid);
        var submittedS = await Post(valid);
        Assert.Equal(202, submittedF.Status);
        AssertSame(submittedF, submittedS, "submit valid");            // includes the id: same recipe, same blobs
        string id = submittedF.Json.GetProperty("id").GetString()!;

        AssertSame(await app.SubmitAsync(valid), await Post(valid), "submit valid again");
        foreach (var bad in new[] { "merge_method: linear\n", "merge_method: linear\nmodels: [{model: a.safetensors}]\n", "" })
        {
            var f = await app.SubmitAsync(bad);
            Assert.Equal(400, f.Status);
            AssertSame(f, await Post(bad), $"submit invalid '{bad}'");
        }
        AssertSame(await app.GetAsync(id), await Get($"/api/merges/{id}"), "get");
        AssertSame(await app.GetAsync("0123456789abcdef0123"), await Get("/api/merges/0123456789abcdef0123"), "get unknown id");
        AssertSame(await app.ReportAsync(id), await Get($"/api/merges/{id}/report"), "report of a queued job");
        AssertSame(await app.ReportAsync("0123456789abcdef0123"), await Get("/api/merges/0123456789abcdef0123/report"), "report of an unknown id");
        foreach (var (fileId, name) in new[] { (id, "model.safetensors"), ("0123456789abcdef0123", "model.safetensors"), (id, "..\\secret.bin") })
            AssertSame(await app.FileAsync(fileId, name), await Get($"/api/merges/{fileId}/files/{Uri.EscapeDataString(name)}"), $"file '{name}' of {fileId}");
        var listF = await app.ListAsync();
        Assert.Single(listF.Json.GetProperty("jobs").EnumerateArray());
        AssertSame(listF, await Get("/api/merges"), "list");
        AssertSame(await app.ListAsync("?limit=0"), await Get("/api/merges?limit=0"), "list with limit 0");
    }

    [Fact]
    public async Task Both_hosts_serve_the_same_methods_on_the_same_paths()
    {
        await using var hosts = await StartBothAsync();
        var standalone = hosts.Standalone.Services.GetRequiredService<EndpointDataSource>().Endpoints
            .OfType<RouteEndpoint>()
            .SelectMany(e => e.Metadata.GetMetadata<IHttpMethodMetadata>()!.HttpMethods.Select(m => $"{m} {e.RoutePattern.RawText}"))
            .Order();

        string prefix = FunctionsMetadataTests.RoutePrefix();
        var functions = FunctionsMetadataTests.ReadMetadata().Values
            .SelectMany(f => f.GetProperty("bindings").EnumerateArray())
            .Where(b => b.GetProperty("type").GetString() == "httpTrigger")
            .SelectMany(b => b.GetProperty("methods").EnumerateArray().Select(m => $"{m.GetString()!.ToUpperInvariant()} /{prefix}/{b.GetProperty("route").GetString()}"))
            .Order();

        Assert.Equal(standalone, functions);
    }
}
