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
    IReadOnlyList<JobFileView>? Files,
    int Attempts,
    string? LastError,
    string? Name,
    string? Method,
    string? Source,
    JobLinks Links)
{
    /// <summary>Each part of a split job, in part order (docs/fanout.md); null for a job that runs whole.</summary>
    public IReadOnlyList<PartView>? Parts { get; init; }

    /// <summary>
    /// Messages the reconciler sent again for this job because one was lost or its worker vanished: the whole job's
    /// (a new attempt) and a split job's single parts alike (JobRecord.Requeues).
    /// </summary>
    public int Requeues { get; init; }

    public const string Route = "/api/merges";

    /// <summary>JSON as the API writes it: camelCase, nulls kept so every contract field is always present.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>
    /// The view of <paramref name="r"/>; <paramref name="files"/> as GET /api/merges/{id} lists them (empty unless the
    /// job succeeded), or null where they were not looked up (the job list, which would need a request per file).
    /// </summary>
    public static JobView From(JobRecord r, IReadOnlyList<JobFileView>? files = null) => new(
        r.Id, r.Status, r.Phase, r.Progress, r.Created, r.Started, r.Finished, r.Error, r.Outputs, files, r.Attempts, r.LastError,
        r.Name, r.Method, r.Source, LinksFor(r.Id)) { Requeues = r.Requeues };

    /// <summary>This view with <paramref name="r"/>'s parts' rows (a split job's progress is its parts' mean while they run).</summary>
    public JobView WithParts(JobRecord r, IReadOnlyList<JobPartRecord>? parts)
    {
        if (parts is null || parts.Count == 0) return this;
        double progress = r.Status == JobStatus.Running && !r.AllPartsDone ? parts.Average(p => p.Progress) : r.Progress;
        return this with { Progress = progress, Parts = parts.Select(PartView.From).ToList() };
    }

    public static JobLinks LinksFor(string id) => new($"{Route}/{id}", $"{Route}/{id}/report");

    /// <summary>The download route's pattern, as the standalone host maps it (the Functions trigger's route is the same without "/api/").</summary>
    public const string FileRoutePattern = Route + "/{id}/files/{*name}";

    /// <summary>The URL that streams one output file: each segment of the name escaped, the slashes between them kept.</summary>
    public static string FileLink(string id, string name) =>
        $"{Route}/{Uri.EscapeDataString(id)}/files/{string.Join('/', name.Split('/').Select(Uri.EscapeDataString))}";
}

/// <summary>One part of a split job in the job view: where it is, who ran it, what it moved and how long it took.</summary>
/// <param name="Work">What the part does: "merges shards 3-4", or for a soup "evaluates ingredients 1-3 alone on the held-out data".</param>
/// <param name="Resends">How many times the reconciler sent the part's message again (a lost message).</param>
public sealed record PartView(int Part, string Status, string? Phase, double Progress, int Shards, long InputBytes, int Attempts, string? Worker,
    long BytesRead, long BytesWritten, double Seconds, DateTimeOffset? Started, DateTimeOffset? Finished, string? LastError, string? Work = null,
    int Resends = 0)
{
    public static PartView From(JobPartRecord p) => new(p.Part, p.Status, p.Phase, p.Progress, p.ShardCount, p.InputBytes, p.Attempts,
        p.Worker ?? p.ClaimedBy, p.BytesRead, p.BytesWritten, p.Seconds, p.Started, p.Finished, p.LastError, p.Work, p.Resends);
}

/// <summary>The answer to POST /api/merges.</summary>
public sealed record SubmitView(string Id, string Status, JobLinks Links);

public sealed record JobListView(IReadOnlyList<JobView> Jobs);
