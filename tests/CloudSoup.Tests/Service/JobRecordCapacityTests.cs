using CloudSoup.Control.Errors;
using CloudSoup.Control.Intake;
using CloudSoup.Control.Recipes;
using CloudSoup.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSoup.Tests.Service;

/// <summary>
/// The job record holds what a valid recipe holds: Azure Table string properties stop at 64 KiB (Azurite enforces
/// it too: PropertyValueTooLarge), so nothing in the record grows with the recipe. A 10,000-model recipe used to
/// reach the table and answer 503 after 27 s; now it is refused at parse, and the largest valid one becomes a job.
/// </summary>
[Collection(AzuriteCollection.Name)]
public class JobRecordCapacityTests(AzuriteFixture azurite)
{
    private static readonly CancellationToken None = CancellationToken.None;

    [Fact]
    public async Task The_largest_valid_recipe_becomes_a_job_with_its_inputs_beside_the_recipe()
    {
        var storage = await azurite.NewStorageAsync();
        var jobs = new JobStore(storage.JobsTable);
        var submitter = new MergeSubmitter(storage, jobs, NullLogger<MergeSubmitter>.Instance);
        string prefix = $"{storage.Options.CheckpointsContainer}/";
        string Ref(int i) => prefix + $"{i:D4}-" + new string('r', RecipeLimits.MaxReferenceChars - prefix.Length - 5 - 12) + ".safetensors";
        var recipe = $"merge_method: linear\nname: {new string('n', RecipeLimits.MaxScalarChars)}\nmodels:\n" +
                     string.Concat(Enumerable.Range(0, RecipeLimits.MaxModels).Select(i => $"  - {Ref(i)}\n"));
        // Submission checks that every input exists; a few bytes each is enough for that (the worker is not run).
        var ckpt = storage.Container(storage.Options.CheckpointsContainer);
        await Parallel.ForEachAsync(Enumerable.Range(0, RecipeLimits.MaxModels), async (i, ct) => await ckpt.UploadTextAsync(Ref(i)[prefix.Length..], "x"));

        var result = await submitter.SubmitAsync(recipe, "test", None);

        Assert.True(result.Enqueued);
        var job = (await jobs.GetAsync(result.Job.Id, None))!;
        Assert.Equal(RecipeLimits.MaxScalarChars, job.Name!.Length);
        var inputs = await storage.InputsOfAsync(job);
        Assert.Equal(RecipeLimits.MaxModels, inputs.Count);
        Assert.All(inputs.Values, v => Assert.NotEqual(JobIds.MissingVersion, v));
        Assert.Equal(RecipeLimits.MaxReferenceChars, inputs.Keys.First().Length);
    }

    [Fact]
    public async Task Errors_of_any_length_are_stored_as_one_bounded_line()
    {
        var jobs = new JobStore((await azurite.NewStorageAsync()).JobsTable);
        string id = Guid.NewGuid().ToString("N")[..JobIds.Length];
        await jobs.CreateIfAbsentAsync(new JobRecord { RowKey = id, Created = DateTimeOffset.UtcNow, RecipePath = $"jobs/{id}/recipe.yaml" }, None);
        string huge = string.Concat(Enumerable.Repeat("a line of a very long error\n", 10_000));   // 280,000 characters

        await jobs.RecordRetryAsync(id, "w", huge, None);
        await jobs.MarkFailedAsync(id, huge, None);

        var job = (await jobs.GetAsync(id, None))!;
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Equal(ErrorText.MaxMessageChars, job.Error!.Length);
        Assert.Equal(ErrorText.MaxMessageChars, job.LastError!.Length);
        Assert.DoesNotContain('\n', job.Error);
        Assert.StartsWith("a line of a very long error\\na line", job.Error);
    }

    [Fact]
    public async Task A_soup_file_listing_10000_ingredients_is_refused_at_once_naming_models()
    {
        var storage = await azurite.NewStorageAsync();
        var jobs = new JobStore(storage.JobsTable);
        var intake = new BlobIntake(storage, new MergeSubmitter(storage, jobs, NullLogger<MergeSubmitter>.Instance), jobs, NullLogger<BlobIntake>.Instance);
        await storage.Container(storage.Options.CheckpointsContainer).UploadTextAsync($"many/{BlobIntake.SoupFileName}",
            "merge_method: linear\nmodels:\n" + string.Concat(Enumerable.Range(0, 10_000).Select(i => $"  - m{i:D5}.safetensors\n")));

        var result = await intake.OnBlobCreatedAsync(storage.Options.CheckpointsContainer, $"many/{BlobIntake.SoupFileName}", None);

        Assert.Equal(IntakeAction.Rejected, result.Action);
        var job = (await jobs.GetAsync(result.JobId!, None))!;
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.StartsWith($"invalid recipe: models: lists 10000 models; a recipe merges at most {RecipeLimits.MaxModels}", job.Error);
    }
}
