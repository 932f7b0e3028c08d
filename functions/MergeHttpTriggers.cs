// The merge API as HTTP triggers (ASP.NET Core integration). Each calls the MergeApi method the standalone
// host maps, so both hosts answer identically. Routes get the host's "api" prefix: /api/merges...
// AuthorizationLevel.Function: callers pass a function key (x-functions-key) in Azure.
using CloudSoup.Control.Api;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;

namespace CloudSoup.Functions;

public sealed class MergeHttpTriggers(MergeApi api)
{
    [Function("SubmitMerge")]
    public async Task<IActionResult> Submit(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "merges")] HttpRequest request, CancellationToken ct) =>
        new ResultAction(await api.SubmitAsync(request, ct));

    [Function("ListMerges")]
    public async Task<IActionResult> List(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "merges")] HttpRequest request, CancellationToken ct) =>
        new ResultAction(await api.ListAsync(int.TryParse(request.Query["limit"], out int limit) ? limit : null, ct));

    [Function("GetMerge")]
    public async Task<IActionResult> Get(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "merges/{id}")] HttpRequest request, string id, CancellationToken ct) =>
        new ResultAction(await api.GetAsync(id, ct));

    [Function("GetMergeReport")]
    public async Task<IActionResult> Report(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "merges/{id}/report")] HttpRequest request, string id, CancellationToken ct) =>
        new ResultAction(await api.GetReportAsync(request, id, ct));

    [Function("GetMergeFile")]
    public async Task<IActionResult> File(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "merges/{id}/files/{*name}")] HttpRequest request, string id, string name, CancellationToken ct) =>
        new ResultAction(await api.GetFileAsync(request, id, name, ct));

    /// <summary>The Functions ASP.NET Core integration executes IActionResult; MergeApi returns minimal-API IResult.</summary>
    private sealed class ResultAction(IResult result) : IActionResult
    {
        public Task ExecuteResultAsync(ActionContext context) => result.ExecuteAsync(context.HttpContext);
    }
}
