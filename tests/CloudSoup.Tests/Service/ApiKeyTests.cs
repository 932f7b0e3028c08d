// The standalone host's API key (docs/security.md; Control/Api/ApiAuthentication.cs), through the real host on
// Kestrel and Azurite. Bound to 0.0.0.0 (not loopback) it needs a key; the tests connect only through 127.0.0.1.
using System.CommandLine;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CloudSoup.Cli.Commands;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Tests.Service;

[Collection(AzuriteCollection.Name)]
public class ApiKeyTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private const string Key = "test-key-0123456789abcdef";

    /// <summary>A host on every address with an API key, and a client for it through loopback.</summary>
    private async Task<(CloudSoupHost Host, HttpClient Http, CloudSoupOptions Options)> StartOnAllAddressesAsync()
    {
        var options = azurite.NewOptions();
        options.ApiKey = Key;
        var host = await CloudSoupHost.StartAsync(options, new CloudSoupHostOptions { Address = IPAddress.Any, RunWatcher = false, MinimumLogLevel = LogLevel.Warning }, None);
        return (host, new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{host.Url.Port}/") }, options);
    }

    private static HttpRequestMessage Post(string recipe, Action<HttpRequestMessage>? authenticate = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "api/merges") { Content = new StringContent(recipe, Encoding.UTF8, "application/yaml") };
        authenticate?.Invoke(request);
        return request;
    }

    [Fact]
    public async Task On_a_non_loopback_address_requests_without_the_key_get_401_and_with_it_202()
    {
        var (host, http, options) = await StartOnAllAddressesAsync();
        await using var _ = host;
        using var __ = http;
        string recipe = await host.TwoModelRecipeAsync(options, "key", 51);

        var none = await http.SendAsync(Post(recipe));
        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Equal("application/problem+json", none.Content.Headers.ContentType?.MediaType);
        Assert.Contains("x-api-key", JsonDocument.Parse(await none.Content.ReadAsStringAsync()).RootElement.GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(Post(recipe, r => r.Headers.Add("x-api-key", "wrong")))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(Post(recipe, r => r.Headers.Add("x-api-key", Key + "x")))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("api/merges")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("api/merges/0123456789abcdef0123/files/model.safetensors")).StatusCode);

        Assert.Equal(HttpStatusCode.Accepted, (await http.SendAsync(Post(recipe, r => r.Headers.Add("x-api-key", Key)))).StatusCode);
        var list = new HttpRequestMessage(HttpMethod.Get, "api/merges");
        list.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(list)).StatusCode);
    }

    [Fact]
    public async Task The_host_refuses_a_non_loopback_address_without_a_key_and_serves_loopback_without_one()
    {
        var options = azurite.NewOptions();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            CloudSoupHost.StartAsync(options, new CloudSoupHostOptions { Address = IPAddress.Any, RunWatcher = false, MinimumLogLevel = LogLevel.Warning }, None));
        Assert.Contains("refusing to listen on 0.0.0.0 without an API key", e.Message);
        Assert.Contains("CloudSoup__ApiKey", e.Message);

        await using var host = await CloudSoupHost.StartAsync(options, new CloudSoupHostOptions { RunWatcher = false, MinimumLogLevel = LogLevel.Warning }, None);
        using var http = new HttpClient { BaseAddress = host.Url };
        Assert.Equal(HttpStatusCode.Accepted, (await http.SendAsync(Post(await host.TwoModelRecipeAsync(options, "key", 51)))).StatusCode);
    }

    [Fact]
    public async Task The_cli_sends_its_api_key_and_says_what_to_do_without_one()
    {
        var (host, http, options) = await StartOnAllAddressesAsync();
        await using var _ = host;
        using var __ = http;
        using var dir = new TempDir();
        File.WriteAllText(dir["r.yaml"], await host.TwoModelRecipeAsync(options, "key", 51));
        string api = http.BaseAddress!.ToString();
        var root = new RootCommand { SubmitCommand.Create(), StatusCommand.Create() };

        var stderr = new StringWriter();
        var original = Console.Error;
        Console.SetError(stderr);
        int refused;
        try { refused = await root.Parse(["submit", dir["r.yaml"], "--api", api]).InvokeAsync(); }
        finally { Console.SetError(original); }
        Assert.Equal(2, refused);
        Assert.Contains("--api-key", stderr.ToString());

        Assert.Equal(0, await root.Parse(["submit", dir["r.yaml"], "--api", api, "--api-key", Key]).InvokeAsync());
        Assert.Equal(0, await root.Parse(["status", "--api", api, "--api-key", Key]).InvokeAsync());
    }
}
