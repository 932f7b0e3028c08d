extern alias CloudSoupFunctions;

using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudSoup.Control.Api;
using CloudSoup.Control.Configuration;
using CloudSoup.Tests.Service;
using CloudSoupFunctions::CloudSoup.Functions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Abstractions;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CloudSoup.Tests.Functions;

/// <summary>
/// The Functions app without the Functions host: the worker host that <see cref="FunctionsApp.Build"/> composes
/// (the method functions/Program.cs calls), built but never started (starting it would open the gRPC channel to
/// a Functions host that is not there), with the triggers created from its services the way the worker creates
/// them for each invocation (ActivatorUtilities) and called with real inputs against Azurite.
/// </summary>
public sealed class FunctionsTestHost : IDisposable
{
    private FunctionsTestHost(IHost host, CloudSoupOptions configured)
    {
        Host = host;
        Configured = configured;
    }

    public IHost Host { get; }
    public IServiceProvider Services => Host.Services;

    /// <summary>What the app settings said; the host's own options are read from them by the app.</summary>
    public CloudSoupOptions Configured { get; }
    public StorageClients Storage => Services.GetRequiredService<StorageClients>();
    public CloudSoup.Control.Jobs.JobStore Jobs => Services.GetRequiredService<CloudSoup.Control.Jobs.JobStore>();

    /// <summary>
    /// Builds the app from app settings named as in Azure. App settings reach the worker as environment variables,
    /// whose configuration provider reads "__" as the section separator ":"
    /// (https://learn.microsoft.com/aspnet/core/fundamentals/configuration/#non-prefixed-environment-variables);
    /// the same mapping is applied here, since the settings go in as an in-memory collection.
    /// </summary>
    public static IHost Build(IReadOnlyDictionary<string, string?> appSettings) =>
        FunctionsApp.Build([], appSettings.Select(s => KeyValuePair.Create(s.Key.Replace("__", ":", StringComparison.Ordinal), s.Value)));

    /// <summary>The app settings that configure the app like <paramref name="o"/> (storage by connection string).</summary>
    public static Dictionary<string, string?> AppSettings(CloudSoupOptions o) => new()
    {
        [CloudSoupOptions.StorageSection] = o.ConnectionString,
        ["CloudSoup__CheckpointsContainer"] = o.CheckpointsContainer,
        ["CloudSoup__RecipesContainer"] = o.RecipesContainer,
        ["CloudSoup__MergedContainer"] = o.MergedContainer,
        ["CloudSoup__JobsContainer"] = o.JobsContainer,
        ["CloudSoup__EvalContainer"] = o.EvalContainer,
        ["CloudSoup__JobsQueue"] = o.JobsQueue,
        ["CloudSoup__PoisonQueue"] = o.PoisonQueue,
        ["CloudSoup__JobsTable"] = o.JobsTable,
        ["CloudSoup__VisibilityTimeout"] = o.VisibilityTimeout.ToString("c"),
        ["CloudSoup__RetryDelay"] = o.RetryDelay.ToString("c"),
        ["CloudSoup__RequeueAfter"] = o.RequeueAfter.ToString("c"),
    };

    /// <summary>The app on Azurite with this test's own queues, containers and table, created as Program.cs creates them.</summary>
    public static async Task<FunctionsTestHost> CreateAsync(AzuriteFixture azurite, Action<CloudSoupOptions>? configure = null)
    {
        var options = azurite.NewOptions();
        configure?.Invoke(options);
        var host = Build(AppSettings(options));
        try
        {
            await host.Services.GetRequiredService<StorageClients>().EnsureCreatedAsync(CancellationToken.None);
        }
        catch
        {
            host.Dispose();
            throw;
        }
        return new FunctionsTestHost(host, options);
    }

    public void Dispose() => Host.Dispose();

    // The five HTTP triggers, each invoked as the worker's ASP.NET Core integration invokes it: a fresh trigger
    // instance, the request, then the returned IActionResult executed against the response.

    public Task<HttpAnswer> SubmitAsync(string body) =>
        InvokeAsync((t, r, ct) => t.Submit(r, ct), HttpMethods.Post, "/api/merges", body: Encoding.UTF8.GetBytes(body), contentType: "application/yaml");

    public Task<HttpAnswer> ListAsync(string query = "") =>
        InvokeAsync((t, r, ct) => t.List(r, ct), HttpMethods.Get, "/api/merges", query);

    public Task<HttpAnswer> GetAsync(string id) =>
        InvokeAsync((t, r, ct) => t.Get(r, id, ct), HttpMethods.Get, $"/api/merges/{id}");

    public Task<HttpAnswer> ReportAsync(string id, string query = "", string? accept = null) =>
        InvokeAsync((t, r, ct) => t.Report(r, id, ct), HttpMethods.Get, $"/api/merges/{id}/report", query, accept: accept);

    public Task<HttpAnswer> FileAsync(string id, string name, IReadOnlyDictionary<string, string>? headers = null) =>
        InvokeAsync((t, r, ct) => t.File(r, id, name, ct), HttpMethods.Get, JobView.FileLink(id, name), headers: headers);

    public async Task<HttpAnswer> InvokeAsync(
        Func<MergeHttpTriggers, HttpRequest, CancellationToken, Task<IActionResult>> trigger, string method, string path,
        string query = "", byte[]? body = null, string? contentType = null, string? accept = null, IReadOnlyDictionary<string, string>? headers = null)
    {
        var http = new DefaultHttpContext { RequestServices = Services };
        http.Request.Method = method;
        http.Request.Scheme = "https";
        http.Request.Host = new HostString("cloudsoup.azurewebsites.net");
        http.Request.Path = path;
        http.Request.QueryString = new QueryString(query);
        if (accept != null) http.Request.Headers.Accept = accept;
        foreach (var (name, value) in headers ?? new Dictionary<string, string>()) http.Request.Headers[name] = value;
        if (body != null)
        {
            http.Request.Body = new MemoryStream(body);
            http.Request.ContentLength = body.Length;
            http.Request.ContentType = contentType;
        }
        var responseBody = new MemoryStream();
        http.Response.Body = responseBody;

        var triggers = ActivatorUtilities.CreateInstance<MergeHttpTriggers>(Services);
        var result = await trigger(triggers, http.Request, CancellationToken.None);
        await result.ExecuteResultAsync(new ActionContext(http, http.GetRouteData(), new ActionDescriptor()));
        return new HttpAnswer(http.Response.StatusCode, http.Response.ContentType, http.Response.Headers.Location.ToString() is { Length: > 0 } l ? l : null, responseBody.ToArray())
        {
            ContentRange = http.Response.Headers.ContentRange.ToString() is { Length: > 0 } r ? r : null,
        };
    }
}

/// <summary>One HTTP answer, from a trigger or from Kestrel, in the terms the tests compare.</summary>
public sealed record HttpAnswer(int Status, string? ContentType, string? Location, byte[] Body)
{
    public static async Task<HttpAnswer> FromAsync(HttpResponseMessage response) => new(
        (int)response.StatusCode,
        response.Content.Headers.ContentType?.ToString(),
        response.Headers.Location?.OriginalString,
        await response.Content.ReadAsByteArrayAsync())
    {
        ContentRange = response.Content.Headers.ContentRange?.ToString(),
    };

    /// <summary>The Content-Range header of a download's answer (206, 416), or null.</summary>
    public string? ContentRange { get; init; }

    public string? MediaType => ContentType is null ? null : MediaTypeHeaderValue.Parse(ContentType).MediaType;
    public string Text => Encoding.UTF8.GetString(Body);
    public JsonElement Json => JsonDocument.Parse(Body).RootElement.Clone();

    /// <summary>Property names of the top-level JSON object, in order.</summary>
    public string[] Properties => Json.EnumerateObject().Select(p => p.Name).ToArray();

    /// <summary>
    /// The body with the values that legitimately differ between two runs of the same request (timestamps) replaced
    /// by their kind, so two answers can be compared as text.
    /// </summary>
    public string ComparableJson()
    {
        var node = JsonNode.Parse(Body)!;
        Normalize(node);
        return node.ToJsonString();

        static void Normalize(JsonNode? n)
        {
            switch (n)
            {
                case JsonObject o:
                    foreach (var (key, value) in o.ToList())
                        if (key is "created" or "started" or "finished" && value is JsonValue v && v.GetValueKind() == JsonValueKind.String) o[key] = "<timestamp>";
                        else Normalize(value);
                    break;
                case JsonArray a:
                    foreach (var item in a) Normalize(item);
                    break;
            }
        }
    }

    public override string ToString() => $"{Status} {ContentType} {Location} {Text}";
}
