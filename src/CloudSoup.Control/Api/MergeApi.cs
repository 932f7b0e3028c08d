// The HTTP contract (docs/contracts.md) as plain handler methods. The standalone host maps them with minimal
// APIs (MergeEndpoints) and the Functions HTTP triggers call them, so both answer identically.
//   POST /api/merges              recipe (YAML or JSON) → 202 {id, status, links} + Location; 200 if the same job exists
//   GET  /api/merges              → {jobs: [...]} newest first
//   GET  /api/merges/{id}         → {id, status, phase, progress, created, started, finished, error, outputs, ...}
//   GET  /api/merges/{id}/report  → report.html, or report.json with Accept: application/json or ?format=json
//   GET  /api/merges/{id}/files/{*name} → one output file of a succeeded job, streamed; Range requests answered 206/416
// Errors are problem+json (RFC 9457); a bad recipe's problem carries "field".
using System.Text;
using Azure;
using Azure.Storage.Blobs.Models;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Intake;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Control.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Control.Api;

public sealed class MergeApi(MergeSubmitter submitter, JobStore jobs, StorageClients storage, ILogger<MergeApi> log)
{
    public const int DefaultListLimit = 100;

    public async Task<IResult> SubmitAsync(HttpRequest request, CancellationToken ct)
    {
        string text;
        try
        {
            text = await ReadBodyAsync(request, ct).ConfigureAwait(false);
        }
        catch (CloudSoupException e)
        {
            return RecipeProblem(e);
        }
        if (string.IsNullOrWhiteSpace(text))
            return RecipeProblem(CloudSoupException.Recipe("recipe", "the request body is empty; send the recipe as YAML or JSON"));

        SubmitResult result;
        try
        {
            result = await submitter.SubmitAsync(text, "api", ct).ConfigureAwait(false);
        }
        catch (CloudSoupException e) when (e.Kind == ErrorKind.InvalidRecipe)
        {
            return RecipeProblem(e);
        }
        catch (CloudSoupException e) when (e.IsRetriable)
        {
            log.LogWarning("submit failed: {Error}", e.Message);
            return Problem(StatusCodes.Status503ServiceUnavailable, "storage unavailable", e.Message);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A defect, not the caller's fault: still a problem+json answer, never an empty 500; the details go to the log.
            log.LogError(e, "submit failed unexpectedly");
            return Problem(StatusCodes.Status500InternalServerError, "internal error", "the service failed on this request; its log has the details");
        }
        var job = result.Job;
        request.HttpContext.Response.Headers.Location = JobView.LinksFor(job.Id).Self;
        return Results.Json(new SubmitView(job.Id, job.Status, JobView.LinksFor(job.Id)), JobView.Json,
            statusCode: result.Enqueued ? StatusCodes.Status202Accepted : StatusCodes.Status200OK);
    }

    private readonly CommittedFileReader _files = new(storage);

    public async Task<IResult> GetAsync(string id, CancellationToken ct)
    {
        var job = await jobs.GetAsync(id, ct).ConfigureAwait(false);
        if (job is null) return NotFound(id);
        var files = (await _files.DescribeAsync(job, ct).ConfigureAwait(false))
            .Select(f => new JobFileView(f.File.Name, f.Stored?.Size, f.Stored?.Md5 is { } md5 ? Convert.ToBase64String(md5) : null, f.Stored?.ETag.ToString("H"), JobView.FileLink(job.Id, f.File.Name)))
            .ToList();
        var parts = job.Parts > 0 && job.Attempt is { } attempt ? await new JobPartStore(storage.JobsTable).ListAsync(id, attempt, ct).ConfigureAwait(false) : null;
        return Results.Json(JobView.From(job, files).WithParts(job, parts), JobView.Json);
    }

    /// <summary>
    /// One output file of a succeeded job, found through the job record only (an attempt folder the record does not
    /// name is never served), streamed from a ranged blob download. Honours Range (one range; 206 or 416), If-Range
    /// and If-None-Match against the blob's ETag.
    /// </summary>
    public async Task<IResult> GetFileAsync(HttpRequest request, string id, string? name, CancellationToken ct)
    {
        // The name is not quoted back: it came from the caller and may hold anything.
        if (!JobFiles.IsSafeName(name))
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "invalid file name",
                detail: $"name: must be a file name relative to the job's output folder: no empty, '.' or '..' segment, no leading '/', no backslash, colon or control character, at most {JobFiles.MaxNameLength} characters",
                extensions: new Dictionary<string, object?> { ["field"] = "name" });
        var job = await jobs.GetAsync(id, ct).ConfigureAwait(false);
        if (job is null) return NotFound(id);
        if (job.Status != JobStatus.Succeeded)
            return Problem(StatusCodes.Status409Conflict, "no output yet",
                job.Status == JobStatus.Failed ? $"job {id} failed: {job.Error}" : $"job {id} is {job.Status}; its files can be downloaded once it succeeded");
        if (JobFiles.Committed(job, storage.Options.MergedContainer).FirstOrDefault(f => f.Name == name) is not { } file)
            return Problem(StatusCodes.Status404NotFound, "no such file", $"job {id} has no output file of that name; GET {JobView.LinksFor(id).Self} lists its files");
        var stored = await _files.DescribeAsync(file, ct).ConfigureAwait(false);
        if (stored is null) return Problem(StatusCodes.Status404NotFound, "file not found", $"job {id} lists {file.Blob} but that blob does not exist");

        string etag = stored.ETag.ToString("H");
        if (request.Headers.IfNoneMatch.Count > 0 && request.Headers.IfNoneMatch.Any(v => v != null && v.Split(',').Any(t => t.Trim() is var tag && (tag == "*" || tag == etag || tag == "W/" + etag))))
            return new HeadersResult(Results.StatusCode(StatusCodes.Status304NotModified), h => BlobFileResult.WriteValidators(h, stored));
        // If-Range: the range applies only to the version the client already holds; any other version is sent whole.
        string? ifRange = request.Headers.IfRange;
        var range = ifRange is null || ifRange.Trim() == etag ? ByteRange.Parse(request.Headers.Range, stored.Size) : ByteRange.Whole(stored.Size);
        if (range.Kind == ByteRangeKind.Unsatisfiable)
            return new HeadersResult(
                Problem(StatusCodes.Status416RangeNotSatisfiable, "range not satisfiable", $"the requested range lies outside {file.Name}, which is {stored.Size} bytes long"),
                h => { BlobFileResult.WriteValidators(h, stored); h.ContentRange = ByteRange.Unsatisfied(stored.Size); });

        try
        {
            var options = new BlobDownloadOptions
            {
                Range = range.Length == 0 ? default : new HttpRange(range.Start, range.Length),
                Conditions = new BlobRequestConditions { IfMatch = stored.ETag },
            };
            var download = await storage.Container(file.Blob.Container).GetBlobClient(file.Blob.Name).DownloadStreamingAsync(options, ct).ConfigureAwait(false);
            return new BlobFileResult(stored, range, download.Value);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return Problem(StatusCodes.Status404NotFound, "file not found", $"job {id} lists {file.Blob} but that blob does not exist");
        }
        catch (RequestFailedException e) when (e.Status is 412 or 416)
        {
            // Committed outputs are written once; a change between reading the properties and the download is an outside hand.
            return Problem(StatusCodes.Status409Conflict, "file changed", $"{file.Blob} changed while it was being read; try again");
        }
    }

    public async Task<IResult> ListAsync(int? limit, CancellationToken ct)
    {
        var list = await jobs.ListAsync(Math.Clamp(limit ?? DefaultListLimit, 1, 1000), ct).ConfigureAwait(false);
        return Results.Json(new JobListView(list.Select(j => JobView.From(j)).ToList()), JobView.Json);
    }

    public async Task<IResult> GetReportAsync(HttpRequest request, string id, CancellationToken ct)
    {
        var job = await jobs.GetAsync(id, ct).ConfigureAwait(false);
        if (job is null) return NotFound(id);
        if (job.Status != JobStatus.Succeeded)
            return Problem(StatusCodes.Status409Conflict, "no report yet",
                job.Status == JobStatus.Failed ? $"job {id} failed: {job.Error}" : $"job {id} is {job.Status}; its report is written when it succeeds");
        bool json = string.Equals(request.Query["format"], "json", StringComparison.OrdinalIgnoreCase)
                    || request.Headers.Accept.Any(a => a != null && a.Contains("application/json", StringComparison.OrdinalIgnoreCase));
        string file = json ? JobOutputs.ReportJson : JobOutputs.ReportHtml;
        // Through the record only: it names the attempt that committed (an unfinished attempt's report may lie beside it).
        if (JobOutputs.Find(job.Outputs, file) is not { } located || !BlobPath.TryParse(located, out var path) || path.Container != storage.Options.MergedContainer)
            return Problem(StatusCodes.Status404NotFound, "report not found", $"job {id} lists no {file} among its outputs");
        try
        {
            var content = await storage.Container(path.Container).GetBlobClient(path.Name).DownloadContentAsync(ct).ConfigureAwait(false);
            return Results.Bytes(content.Value.Content.ToArray(), JobOutputs.ContentType(file));
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return Problem(StatusCodes.Status404NotFound, "report not found", $"{located} does not exist");
        }
    }

    private static Task<string> ReadBodyAsync(HttpRequest request, CancellationToken ct)
    {
        if (request.ContentLength > RecipeLimits.MaxBytes) throw RecipeParser.TooLarge();
        return RecipeText.ReadAsync(request.Body, ct);
    }

    private static IResult RecipeProblem(CloudSoupException e) =>
        Results.Problem(detail: e.Message, statusCode: StatusCodes.Status400BadRequest, title: "invalid recipe",
            extensions: new Dictionary<string, object?> { ["field"] = e.Field });

    private static IResult NotFound(string id) => Problem(StatusCodes.Status404NotFound, "no such job", $"there is no merge job '{id}'");

    private static IResult Problem(int status, string title, string detail) => Results.Problem(detail: detail, statusCode: status, title: title);
}
