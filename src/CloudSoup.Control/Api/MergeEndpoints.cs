using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CloudSoup.Control.Api;

/// <summary>Maps the merge API onto an ASP.NET Core app (the standalone host); Functions maps the same handlers with triggers.</summary>
public static class MergeEndpoints
{
    public static IEndpointRouteBuilder MapMergeApi(this IEndpointRouteBuilder app)
    {
        app.MapPost(JobView.Route, (HttpRequest request, MergeApi api, CancellationToken ct) => api.SubmitAsync(request, ct));
        app.MapGet(JobView.Route, (int? limit, MergeApi api, CancellationToken ct) => api.ListAsync(limit, ct));
        app.MapGet(JobView.Route + "/{id}", (string id, MergeApi api, CancellationToken ct) => api.GetAsync(id, ct));
        app.MapGet(JobView.Route + "/{id}/report", (string id, HttpRequest request, MergeApi api, CancellationToken ct) => api.GetReportAsync(request, id, ct));
        app.MapGet(JobView.FileRoutePattern, (string id, string? name, HttpRequest request, MergeApi api, CancellationToken ct) => api.GetFileAsync(request, id, name, ct));
        return app;
    }
}
