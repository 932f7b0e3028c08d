// The one way a job comes to exist, used by the HTTP API, blob intake and `cloudsoup submit`:
// validate the recipe → resolve input versions → job id → store the recipe and the input versions under
// jobs/<id>/ (they grow with the recipe, a table property does not) → create the job record (idempotent) →
// enqueue {schema, jobId, recipe}. Submitting the same job again returns the
// existing one and enqueues nothing, unless it failed (then it runs again).
using Azure;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Methods;
using CloudSoup.Control.Storage;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Control.Intake;

/// <param name="Job">The job as stored.</param>
/// <param name="Enqueued">False when an identical job already existed and nothing new was queued.</param>
public sealed record SubmitResult(JobRecord Job, bool Enqueued);

public sealed class MergeSubmitter(StorageClients storage, JobStore jobs, ILogger<MergeSubmitter> log)
{
    public const string RecipeFileName = "recipe.yaml";
    /// <summary>The input versions the job id was computed from, as JSON {"container/path": "ETag or missing"}.</summary>
    public const string InputsFileName = "inputs.json";
    private readonly InputVersions _versions = new(storage.Blobs);

    /// <summary>
    /// Submits <paramref name="recipeText"/>. Throws a CloudSoupException (InvalidRecipe, naming the field) for a
    /// bad recipe or one that names a blob that does not exist (what can be known at submission is refused here,
    /// not a second later by the worker), and a Transient one when storage is unreachable.
    /// </summary>
    public async Task<SubmitResult> SubmitAsync(string recipeText, string source, CancellationToken ct)
    {
        var recipe = RecipeParser.Parse(recipeText);
        RequireBlobPaths(recipe);
        InputSources.From(storage.Options).Check(recipe);       // only configured containers (docs/security.md)
        EvalLimitCeilings.From(storage.Options).Check(recipe);
        var versions = await _versions.ResolveAsync(recipe.AllReferences, ct).ConfigureAwait(false);
        foreach (var (reference, field) in ReferenceFields(recipe))
            if (versions.TryGetValue(reference, out var v) && v == JobIds.MissingVersion)
                throw CloudSoupException.Recipe(field, $"'{reference}' does not exist (no blob, or no model files under that folder); upload it first");
        string id = JobIds.Compute(recipe, versions);
        try
        {
            var existing = await jobs.GetAsync(id, ct).ConfigureAwait(false);
            if (existing != null && existing.Status != JobStatus.Failed)
            {
                log.LogInformation("job {JobId} already exists ({Status}); nothing new queued for {Source}", id, existing.Status, source);
                return new SubmitResult(existing, false);
            }

            var jobsContainer = storage.Container(storage.Options.JobsContainer);
            string recipePath = $"{storage.Options.JobsContainer}/{id}/{RecipeFileName}";
            string inputsPath = $"{storage.Options.JobsContainer}/{id}/{InputsFileName}";
            await jobsContainer.GetBlobClient($"{id}/{RecipeFileName}").UploadAsync(BinaryData.FromString(recipeText), overwrite: true, ct).ConfigureAwait(false);
            await jobsContainer.GetBlobClient($"{id}/{InputsFileName}").UploadAsync(BinaryData.FromObjectAsJson(versions), overwrite: true, ct).ConfigureAwait(false);

            JobRecord job;
            if (existing != null)
            {
                var requeued = await jobs.RequeueFailedAsync(id, ct).ConfigureAwait(false);
                if (requeued is null) return new SubmitResult((await jobs.GetAsync(id, ct).ConfigureAwait(false))!, false); // someone else requeued it
                job = requeued;
            }
            else
            {
                var (stored, created) = await jobs.CreateIfAbsentAsync(new JobRecord
                {
                    RowKey = id,
                    Status = JobStatus.Queued,
                    Created = DateTimeOffset.UtcNow,
                    Enqueued = DateTimeOffset.UtcNow,
                    RecipePath = recipePath,
                    Name = recipe.Name,
                    Method = recipe.MergeMethod,
                    Source = source,
                    InputsPath = inputsPath,
                }, ct).ConfigureAwait(false);
                if (!created) return new SubmitResult(stored, false);
                job = stored;
            }

            try
            {
                await storage.JobsQueue.SendMessageAsync(JobMessage.For(id, recipePath).ToJson(), timeToLive: TimeSpan.FromSeconds(-1), cancellationToken: ct).ConfigureAwait(false);
            }
            catch (RequestFailedException e)
            {
                // Without a message the job would wait forever; failing it lets the next identical submit requeue it.
                await jobs.MarkFailedAsync(id, $"could not be queued ({e.Status} {e.ErrorCode}); submit it again", CancellationToken.None).ConfigureAwait(false);
                throw;
            }
            log.LogInformation("job {JobId} queued from {Source} ({Method}, {Inputs} inputs, {Missing} missing)",
                id, source, recipe.MergeMethod, versions.Count, versions.Values.Count(v => v == JobIds.MissingVersion));
            return new SubmitResult(job, true);
        }
        catch (RequestFailedException e)
        {
            throw StorageErrors.Transient(e, $"job {id}");
        }
    }

    /// <summary>In the service every reference is "container/path"; say so at submit, naming the field.</summary>
    private static void RequireBlobPaths(Recipe recipe)
    {
        foreach (var (reference, field) in ReferenceFields(recipe))
            if (!BlobPath.TryParse(reference.TrimEnd('/'), out _))
                throw CloudSoupException.Recipe(field, $"'{reference}' is not a blob path; the service reads models from blob storage as container/path, e.g. checkpoints/my-experiment/model.safetensors");
    }

    /// <summary>Every blob the recipe names, with the field that names it (built-in architectures are not blobs).</summary>
    private static IEnumerable<(string Reference, string Field)> ReferenceFields(Recipe recipe) =>
        InputSources.References(recipe).Select(r => (r.Reference, r.Field));
}
