// What happens when a blob lands (the Functions blob trigger via Event Grid, or BlobDropWatcher locally):
//
//   recipes/<name>.yaml|.yml|.json  → submitted as is; model references in it are blob paths (container/path).
//   checkpoints/<exp>/...           → if checkpoints/<exp>/soup.yaml exists, it is the recipe for that folder.
//       Model references in soup.yaml without a '/' are file or folder names inside checkpoints/<exp>/
//       ("a.safetensors" means checkpoints/<exp>/a.safetensors); references with a '/' are full blob paths.
//       The job is submitted once every model it lists exists; until then intake logs "waiting for N
//       ingredients" and does nothing. Uploading soup.yaml itself triggers the same check, so the order of
//       uploads does not matter.
//
// Every path ends in MergeSubmitter, whose job ids make the same drop seen twice one job. A dropped recipe
// that does not parse becomes a failed job carrying the parser's message, so `cloudsoup status` shows why.
using System.Text;
using System.Text.Json.Nodes;
using Azure;
using Azure.Storage.Blobs.Models;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Jobs;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Control.Intake;

public enum IntakeAction { Submitted, AlreadyKnown, Waiting, Rejected, Ignored }

public sealed record IntakeResult(IntakeAction Action, string? JobId, string Detail);

public sealed class BlobIntake(StorageClients storage, MergeSubmitter submitter, JobStore jobs, ILogger<BlobIntake> log)
{
    public const string SoupFileName = "soup.yaml";
    private readonly InputVersions _versions = new(storage.Blobs);

    public async Task<IntakeResult> OnBlobCreatedAsync(string container, string blobName, CancellationToken ct)
    {
        var o = storage.Options;
        IntakeResult result;
        if (container == o.RecipesContainer) result = await OnRecipeAsync(container, blobName, ct).ConfigureAwait(false);
        else if (container == o.CheckpointsContainer) result = await OnCheckpointAsync(container, blobName, ct).ConfigureAwait(false);
        else result = new IntakeResult(IntakeAction.Ignored, null, $"{container} is not an intake container");
        log.Log(result.Action is IntakeAction.Ignored ? LogLevel.Debug : LogLevel.Information,
            "intake {Container}/{Blob}: {Action} {JobId} {Detail}", container, blobName, result.Action, result.JobId, result.Detail);
        return result;
    }

    private async Task<IntakeResult> OnRecipeAsync(string container, string blobName, CancellationToken ct)
    {
        string ext = Path.GetExtension(blobName).ToLowerInvariant();
        if (ext is not (".yaml" or ".yml" or ".json")) return new IntakeResult(IntakeAction.Ignored, null, "not a .yaml, .yml or .json recipe");
        var blob = await ReadTextAsync(container, blobName, ct).ConfigureAwait(false);
        if (blob is null) return new IntakeResult(IntakeAction.Ignored, null, "the blob is gone");
        return await SubmitAsync(blob.Value.Text, $"blob:{container}/{blobName}", blob.Value.ETag, ct).ConfigureAwait(false);
    }

    private async Task<IntakeResult> OnCheckpointAsync(string container, string blobName, CancellationToken ct)
    {
        int slash = blobName.IndexOf('/');
        if (slash <= 0) return new IntakeResult(IntakeAction.Ignored, null, $"not inside an experiment folder ({container}/<experiment>/...)");
        string experiment = blobName[..slash];
        string soupName = $"{experiment}/{SoupFileName}";
        string source = $"blob:{container}/{soupName}";
        var soup = await ReadTextAsync(container, soupName, ct).ConfigureAwait(false);
        if (soup is null) return new IntakeResult(IntakeAction.Ignored, null, $"no {container}/{soupName} yet");

        Recipe recipe;
        string resolvedText;
        try
        {
            recipe = RecipeParser.Parse(soup.Value.Text);
            resolvedText = ResolveRelativeReferences(recipe, $"{container}/{experiment}");
            recipe = RecipeParser.Parse(resolvedText);
        }
        catch (CloudSoupException e) when (e.Kind == ErrorKind.InvalidRecipe)
        {
            return await RejectAsync(source, soup.Value.ETag, e, ct).ConfigureAwait(false);
        }

        var versions = await _versions.ResolveAsync(recipe.InputModels, ct).ConfigureAwait(false);
        var missing = versions.Where(v => v.Value == JobIds.MissingVersion).Select(v => v.Key).ToList();
        if (missing.Count > 0)
            return new IntakeResult(IntakeAction.Waiting, null,
                $"waiting for {missing.Count} ingredient{(missing.Count == 1 ? "" : "s")}: {string.Join(", ", missing)}");
        return await SubmitAsync(resolvedText, source, soup.Value.ETag, ct).ConfigureAwait(false);
    }

    private async Task<IntakeResult> SubmitAsync(string text, string source, ETag etag, CancellationToken ct)
    {
        try
        {
            var r = await submitter.SubmitAsync(text, source, ct).ConfigureAwait(false);
            return r.Enqueued
                ? new IntakeResult(IntakeAction.Submitted, r.Job.Id, "queued")
                : new IntakeResult(IntakeAction.AlreadyKnown, r.Job.Id, $"same job as before ({r.Job.Status})");
        }
        catch (CloudSoupException e) when (e.Kind == ErrorKind.InvalidRecipe)
        {
            return await RejectAsync(source, etag, e, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Records a failed job for a dropped recipe that cannot run, keyed by the blob version (so once per upload).</summary>
    private async Task<IntakeResult> RejectAsync(string source, ETag etag, CloudSoupException e, CancellationToken ct)
    {
        string id = JobIds.ForRejected(source, etag.ToString());
        var now = DateTimeOffset.UtcNow;
        await jobs.CreateIfAbsentAsync(new JobRecord
        {
            RowKey = id,
            Status = JobStatus.Failed,
            Created = now,
            Finished = now,
            Error = $"invalid recipe: {e.Message}",
            RecipePath = source["blob:".Length..],
            Source = source,
        }, ct).ConfigureAwait(false);
        log.LogWarning("intake rejected {Source}: {Error}", source, e.Message);
        return new IntakeResult(IntakeAction.Rejected, id, e.Message);
    }

    /// <summary>
    /// Rewrites soup.yaml references without a '/' to full blob paths under <paramref name="folder"/> and
    /// returns the recipe as canonical JSON (which RecipeParser reads back, JSON being YAML).
    /// </summary>
    internal static string ResolveRelativeReferences(Recipe recipe, string folder)
    {
        string Resolve(string r) => r.Contains('/') || r.StartsWith("builtin:", StringComparison.Ordinal) ? r : $"{folder}/{r}";
        var json = RecipeJson.ToJson(recipe);
        foreach (var model in json["models"]!.AsArray())
            model!["model"] = Resolve(model["model"]!.GetValue<string>());
        if (json["base_model"] is JsonNode b) json["base_model"] = Resolve(b.GetValue<string>());
        if (json["evaluation"] is JsonObject ev)
            foreach (var key in new[] { "model", "data", "test" })
                if (ev[key] is JsonNode n) ev[key] = Resolve(n.GetValue<string>());
        return json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Reads a dropped recipe; at most one byte more than a recipe may have, so RecipeParser reports an oversized one.</summary>
    private async Task<(string Text, ETag ETag)?> ReadTextAsync(string container, string blobName, CancellationToken ct)
    {
        var blob = storage.Container(container).GetBlobClient(blobName);
        try
        {
            var props = await blob.GetPropertiesAsync(cancellationToken: ct).ConfigureAwait(false);
            if (props.Value.ContentLength == 0) return ("", props.Value.ETag);
            var content = await blob.DownloadContentAsync(new BlobDownloadOptions
            {
                Range = new HttpRange(0, Math.Min(props.Value.ContentLength, RecipeLimits.MaxBytes + 1)),
                Conditions = new BlobRequestConditions { IfMatch = props.Value.ETag },
            }, ct).ConfigureAwait(false);
            return (Encoding.UTF8.GetString(content.Value.Content.ToMemory().Span), props.Value.ETag);
        }
        catch (RequestFailedException e) when (e.Status is 404 or 412)
        {
            return null; // gone, or replaced while reading: the replacement is its own drop
        }
    }
}
