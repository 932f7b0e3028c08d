using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Api;
using CloudSoup.Cli.Download;

namespace CloudSoup.Cli.Commands;

/// <summary>The CLI's side of the merge API (submit, status, download). Problems come back as CloudSoupExceptions with the server's words.</summary>
internal sealed class ApiClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly Uri baseUrl;

    /// <summary>The header the Azure Functions host reads a function key from (https://learn.microsoft.com/azure/azure-functions/function-keys-how-to).</summary>
    public const string FunctionKeyHeader = "x-functions-key";

    /// <param name="credential">
    /// An API key, sent as x-api-key and as x-functions-key (so the same option carries a function key when the API
    /// is the Functions app), or an Entra ID access token (a JWT: three dot-separated parts), sent as
    /// Authorization: Bearer (docs/security.md).
    /// </param>
    public ApiClient(Uri baseUrl, string? credential = null)
    {
        this.baseUrl = baseUrl;
        // The timeout covers each request up to its response headers; a download's body is read afterwards, bounded
        // only by cancellation (HttpCompletionOption.ResponseHeadersRead, dotnet/runtime#54674).
        _http = new HttpClient { BaseAddress = baseUrl, Timeout = TimeSpan.FromSeconds(100) };
        if (credential is null) return;
        if (ApiAuthentication.LooksLikeJwt(credential)) _http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", credential);
        else
        {
            _http.DefaultRequestHeaders.Add(ApiAuthentication.ApiKeyHeader, credential);
            _http.DefaultRequestHeaders.Add(FunctionKeyHeader, credential);
        }
    }

    public async Task<(SubmitView Job, bool Created)> SubmitAsync(string recipeText, CancellationToken ct)
    {
        var response = await SendAsync(() => _http.PostAsync("api/merges", new StringContent(recipeText, Encoding.UTF8, "application/yaml"), ct));
        await ThrowOnProblemAsync(response, ct);
        return ((await response.Content.ReadFromJsonAsync<SubmitView>(JobView.Json, ct))!, response.StatusCode == HttpStatusCode.Accepted);
    }

    public async Task<JobView?> GetAsync(string id, CancellationToken ct)
    {
        var response = await SendAsync(() => _http.GetAsync($"api/merges/{Uri.EscapeDataString(id)}", ct));
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        await ThrowOnProblemAsync(response, ct);
        return await response.Content.ReadFromJsonAsync<JobView>(JobView.Json, ct);
    }

    public async Task<IReadOnlyList<JobView>> ListAsync(CancellationToken ct)
    {
        var response = await SendAsync(() => _http.GetAsync("api/merges", ct));
        await ThrowOnProblemAsync(response, ct);
        return (await response.Content.ReadFromJsonAsync<JobListView>(JobView.Json, ct))!.Jobs;
    }

    /// <summary>
    /// Streams one output file from its download route (a path the job view gave), from <paramref name="offset"/> on
    /// with a Range request; with the file's ETag as If-Range, a file that changed comes back whole (offset 0).
    /// </summary>
    public async Task<RemoteRead> OpenFileAsync(string url, long offset, string? etag, CancellationToken ct)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, url.TrimStart('/'));
        if (offset > 0)
        {
            request.Headers.Range = new RangeHeaderValue(offset, null);
            if (etag != null && EntityTagHeaderValue.TryParse(etag, out var tag)) request.Headers.IfRange = new RangeConditionHeaderValue(tag);
        }
        // Headers only: the body is read as it arrives, never buffered whole.
        var response = await SendAsync(() => _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct));
        try
        {
            await ThrowOnProblemAsync(response, ct);
            long start = response.StatusCode != HttpStatusCode.PartialContent ? 0
                : response.Content.Headers.ContentRange?.From ?? throw new CloudSoupException(ErrorKind.Transient, "the API answered a range request with 206 but no Content-Range");
            return new RemoteRead(await response.Content.ReadAsStreamAsync(ct), start, response);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    private async Task<HttpResponseMessage> SendAsync(Func<Task<HttpResponseMessage>> send)
    {
        try
        {
            return await send();
        }
        catch (HttpRequestException e)
        {
            throw new CloudSoupException(ErrorKind.Transient, $"cannot reach the CloudSoup API at {baseUrl} ({e.Message}); is `cloudsoup dev` running, or is --api right?");
        }
    }

    private static async Task ThrowOnProblemAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode) return;
        string body = await response.Content.ReadAsStringAsync(ct);
        string? detail = null, field = null;
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.TryGetProperty("detail", out var d)) detail = d.GetString();
            if (doc.RootElement.TryGetProperty("field", out var f) && f.ValueKind == JsonValueKind.String) field = f.GetString();
        }
        catch (JsonException) { }
        detail ??= $"{(int)response.StatusCode} {response.ReasonPhrase}";
        if (response.StatusCode == HttpStatusCode.Unauthorized)
            throw new CloudSoupException(ErrorKind.InvalidRecipe, $"the API refused the request (401): {detail}; pass --api-key or set CLOUDSOUP_API_KEY");
        throw response.StatusCode == HttpStatusCode.BadRequest
            ? new CloudSoupException(ErrorKind.InvalidRecipe, detail, field)
            : new CloudSoupException((int)response.StatusCode >= 500 ? ErrorKind.Transient : ErrorKind.MissingInput, $"the API answered {(int)response.StatusCode}: {detail}");
    }

    public void Dispose() => _http.Dispose();
}
