using System.Text.Json;
using CloudSoup.Control.Jobs;

namespace CloudSoup.Control.Api;

public sealed record JobLinks(string Self, string Report);

/// <summary>A job as GET /api/merges/{id} answers it (docs/contracts.md, "HTTP API"); the CLI reads the same shape.</summary>
public sealed record JobView(
    string Id,
    string Status,
    string? Phase,
    double Progress,
    DateTimeOffset Created,
    DateTimeOffset? Started,
    DateTimeOffset? Finished,
    string? Error,
    IReadOnlyList<string> Outputs,
    int Attempts,
    string? LastError,
    string? Name,
    string? Method,
    string? Source,
    JobLinks Links)
{
    public const string Route = "/api/merges";

    /// <summary>JSON as the API writes it: camelCase, nulls kept so every contract field is always present.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static JobView From(JobRecord r) => new(
        r.Id, r.Status, r.Phase, r.Progress, r.Created, r.Started, r.Finished, r.Error, r.Outputs, r.Attempts, r.LastError,
        r.Name, r.Method, r.Source, LinksFor(r.Id));

    public static JobLinks LinksFor(string id) => new($"{Route}/{id}", $"{Route}/{id}/report");
}

/// <summary>The answer to POST /api/merges.</summary>
public sealed record SubmitView(string Id, string Status, JobLinks Links);

public sealed record JobListView(IReadOnlyList<JobView> Jobs);
