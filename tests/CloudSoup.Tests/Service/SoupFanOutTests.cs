using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CloudSoup.Control.Api;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Control.Storage;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Cli;
using CloudSoup.Tests.Soups;
using CloudSoup.Tests.Support;
using CloudSoup.Worker.Diagnostics;
using Microsoft.Extensions.Logging;
using TorchSharp;
using Xunit.Abstractions;

namespace CloudSoup.Tests.Service;

/// <summary>
/// Issue 16, "soup searches fan out their candidate evaluations where they are independent" (docs/fanout.md, "Soups"),
/// with real worker processes (`cloudsoup worker`) on Azurite: a soup's parts evaluate its ingredients alone, each its
/// own queue message, and the part that completes the job runs the rest of the search from their scores. The result must
/// be one worker's bytes and soup report; a killed part must leave the job to finish exactly once; a failing evaluation
/// must fail the job with nothing of it left. The ingredients are SoupTests' (four noisy copies of a linear classifier
/// and one garbage model).
/// </summary>
[Collection(AzuriteCollection.Name)]
public class SoupFanOutTests(AzuriteFixture azurite, CliBuildFixture _, ITestOutputHelper output) : IClassFixture<CliBuildFixture>
{
    private static readonly string[] Ingredients = [.. Enumerable.Range(0, SoupTests.Good).Select(i => $"good{i}.safetensors"), SoupTests.Garbage];

    /// <summary>The finished job's report.json section <paramref name="name"/>, over the local names (as the reference run has them).</summary>
    private static async Task<string> SectionAsync(WorkerlessHost s, JobRecord job, string name) =>
        JsonDocument.Parse(await s.ReadAsync(JobOutputs.Find(job.Outputs, JobOutputs.ReportJson)!)).RootElement.GetProperty(name).GetRawText().Replace($"{s.Models}/", "");

    /// <summary>The ingredients, held-out and test data in checkpoints/soup/ and in a local folder; a host without a worker.</summary>
    private async Task<WorkerlessHost> StartAsync()
    {
        var setup = await WorkerlessHost.StartAsync(azurite, "soup");
        var dir = setup.Dir;
        SoupTests.WriteIngredients(dir);
        SafetensorsFiles.Write(dir["bad-labels.safetensors"], new Dictionary<string, torch.Tensor>
        {
            ["inputs"] = torch.zeros(10, 8), ["labels"] = torch.full(10, 7, dtype: torch.ScalarType.Int64),   // labels a 4-way classifier cannot output
        });
        var ckpt = setup.Storage.Container(setup.Options.CheckpointsContainer);
        foreach (var file in Ingredients.Concat(["heldout.safetensors", "test.safetensors", "bad-labels.safetensors"]))
            await ckpt.GetBlobClient($"soup/{file}").UploadAsync(dir[file], overwrite: true);
        return setup;
    }

    private static string Recipe(string prefix, string method = "greedy_soup", string data = "heldout.safetensors") =>
        $"merge_method: {method}\nmodels: [{string.Join(", ", Ingredients.Select(i => prefix + i))}]\n" +
        $"evaluation: {{model: 'builtin:mlp', data: {prefix}{data}, test: {prefix}test.safetensors}}\n";

    /// <summary>The same soup run whole in this process on the local copies: the bytes and soup report every split must reproduce.</summary>
    private static Task<string> ReferenceAsync(WorkerlessHost s, string method = "greedy_soup") =>
        s.ReferenceAsync(s.Dir.Path, Recipe("", method), new JobEvaluator());

    private static string Section(string reference, string name) =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(reference, JobOutputs.ReportJson))).RootElement.GetProperty(name).GetRawText();

    private static async Task AssertOneWorkersResultAsync(WorkerlessHost s, JobRecord job, string reference)
    {
        var written = await s.ReadAsync(JobOutputs.Find(job.Outputs, "model.safetensors") ?? throw new Xunit.Sdk.XunitException($"no model.safetensors: {string.Join(", ", job.Outputs)}"));
        Assert.True(File.ReadAllBytes(Path.Combine(reference, "model.safetensors")).SequenceEqual(written), "model.safetensors differs from one worker's");
        Assert.Equal(Section(reference, "soup"), await SectionAsync(s, job, "soup"));
        Assert.Equal(Section(reference, "evaluation"), await SectionAsync(s, job, "evaluation"));
    }

    [Fact]
    public async Task A_greedy_soup_split_into_two_and_three_parts_on_two_worker_processes_gives_one_workers_bytes_and_soup_report()
    {
        await using var s = await StartAsync();
        string reference = await ReferenceAsync(s);
        var ids = new Dictionary<int, string>();
        foreach (int k in new[] { 2, 3 }) ids[k] = await s.SubmitAsync(Recipe($"{s.Models}/") + $"parallelism: {{parts: {k}}}\n");
        using (var w1 = WorkerProcess.Start(s.Options))
        using (var w2 = WorkerProcess.Start(s.Options))
        {
            foreach (var (k, id) in ids)
            {
                var job = await s.Jobs.WaitForJobAsync(id, j => JobStatus.IsFinished(j.Status), $"the {k}-part soup to finish");
                Assert.True(job.Status == JobStatus.Succeeded, $"{k} parts: {job.Error}\n{w1.Log}\n{w2.Log}");
                // The finishing part deletes the hand-over files (the parts' scores) once the record names the result.
                await TestBlobs.EventuallyAsync(async () => (await s.Storage.Container(s.Options.JobsContainer).ListAsync($"{id}/{job.Attempt}/")).Count == 0 ? new object() : null,
                    "the hand-over files to be deleted");
            }
            await TestBlobs.EventuallyAsync(async () => (await s.Storage.JobsQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount == 0 ? new object() : null,
                "every message to be deleted");
        }
        foreach (var (k, id) in ids)
        {
            var job = (await s.Jobs.GetAsync(id, CancellationToken.None))!;
            Assert.Equal(k, job.Parts);                                                    // split, not run whole
            Assert.Equal(1, job.Attempts);
            await AssertOneWorkersResultAsync(s, job, reference);
            // What each part did, in the job view and in the report.
            var view = (await s.Http.GetFromJsonAsync<JobView>($"/api/merges/{id}", JobView.Json))!;
            var expected = PartPlanner.SplitIngredients(new long[Ingredients.Length], k)
                .Select(p => JobPartRecord.Describe(0, 0, p.FirstIngredient, p.IngredientCount)).ToList();
            var parts = Assert.IsAssignableFrom<IEnumerable<PartView>>(view.Parts).ToList();
            Assert.Equal(expected, parts.Select(p => p.Work));
            Assert.All(parts, p => Assert.Equal(JobStatus.Succeeded, p.Status));
            Assert.All(parts, p => Assert.Equal(0, p.Shards));
            var details = JsonDocument.Parse(await s.ReadAsync(JobOutputs.Find(job.Outputs, JobOutputs.ReportJson)!)).RootElement
                .GetProperty("parallelism").GetProperty("partDetails").EnumerateArray().ToList();
            Assert.Equal(expected, details.Select(d => d.GetProperty("work").GetString()));
            Assert.All(details, d => Assert.True(d.GetProperty("worker").GetString() != null && d.GetProperty("bytesRead").GetInt64() > 0));
            output.WriteLine($"{k} parts: " + string.Join("; ", parts.Select(p => $"part {p.Part} {p.Work} by {p.Worker} in {p.Seconds:0.00} s")));
            Assert.Single(await new AttemptFolders(s.Storage.Container(s.Options.MergedContainer)).ListAsync(id, CancellationToken.None));
        }
    }

    [Fact]
    public async Task Workers_killed_in_an_evaluation_part_and_after_the_last_part_leave_the_soup_to_finish_exactly_once()
    {
        await using var s = await StartAsync();
        string reference = await ReferenceAsync(s);
        string id = await s.SubmitAsync(Recipe($"{s.Models}/") + "parallelism: {parts: 3}\n");

        // The first worker splits the soup, evaluates one part's ingredients, stores their scores and dies before recording the part as done.
        using (var first = WorkerProcess.Start(s.Options, TestHold.PartCommittedPoint))
        {
            Assert.Equal(TestHold.PartCommittedPoint, await first.WaitUntilHeldAsync());
            first.Kill();
        }
        // The second evaluates the rest (the killed part again once its message reappears), sets the last bit and dies
        // before finishing: before the search, the merge and the commit.
        using (var second = WorkerProcess.Start(s.Options, TestHold.AllPartsDonePoint))
        {
            Assert.Equal(TestHold.AllPartsDonePoint, await second.WaitUntilHeldAsync());
            var held = (await s.Jobs.GetAsync(id, CancellationToken.None))!;
            Assert.Equal(JobStatus.Running, held.Status);
            Assert.True(held.AllPartsDone);
            Assert.Empty(held.Outputs);
            second.Kill();
        }
        // The third gets the killed finisher's message back, claims the finishing, searches from the stored scores and commits.
        using (var third = WorkerProcess.Start(s.Options))
        {
            var job = await s.Jobs.WaitForJobAsync(id, j => JobStatus.IsFinished(j.Status), "the soup to finish");
            Assert.True(job.Status == JobStatus.Succeeded, $"{job.Error}\n{third.Log}");
            await TestBlobs.EventuallyAsync(async () => (await s.Storage.JobsQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount == 0 ? new object() : null,
                "every message to be deleted");
        }
        var done = (await s.Jobs.GetAsync(id, CancellationToken.None))!;
        Assert.Equal(1, done.Attempts);                                            // the parts were retried, not the job
        Assert.Equal(done.Attempt, done.CommittedAttempt);
        await AssertOneWorkersResultAsync(s, done, reference);
        var parts = await new JobPartStore(s.Storage.JobsTable).ListAsync(id, done.Attempt!, CancellationToken.None);
        Assert.Equal(3, parts.Count);
        Assert.All(parts, p => Assert.Equal(JobStatus.Succeeded, p.Status));
        Assert.Contains(parts, p => p.Attempts == 2);                             // the part killed after storing its scores ran again
        var folder = Assert.Single(await new AttemptFolders(s.Storage.Container(s.Options.MergedContainer)).ListAsync(id, CancellationToken.None));
        Assert.Equal(done.CommittedAttempt, folder.Attempt);
        Assert.Equal(new[] { "model.safetensors", ModelFolderFiles.ModelCard, JobOutputs.ResolvedRecipe, JobOutputs.ReportHtml, JobOutputs.ReportJson }.Order(),
            folder.Blobs.Select(Path.GetFileName).Order());
        Assert.Equal(0, (await s.Storage.PoisonQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount);
    }

    [Fact]
    public async Task A_part_whose_evaluation_fails_fails_the_soup_with_the_parts_reason_and_nothing_of_the_job_stays()
    {
        await using var s = await StartAsync();
        string id = await s.SubmitAsync(Recipe($"{s.Models}/", data: "bad-labels.safetensors") + "parallelism: {parts: 3}\n");
        using (var w1 = WorkerProcess.Start(s.Options))
        using (var w2 = WorkerProcess.Start(s.Options))
        {
            var job = await s.Jobs.WaitForJobAsync(id, j => JobStatus.IsFinished(j.Status), "the soup to finish");
            Assert.True(job.Status == JobStatus.Failed, $"{job.Status}: {job.Error}\n{w1.Log}\n{w2.Log}");
            Assert.Equal(3, job.Parts);                                              // it failed in its parts, not before the split
            Assert.Matches("^part [1-3] of 3: ", job.Error);
            Assert.Contains("label 7 is out of range for a model with 4 outputs", job.Error);
            Assert.Empty(job.Outputs);
            await TestBlobs.EventuallyAsync(async () => (await s.Storage.JobsQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount == 0
                && (await s.Storage.Container(s.Options.MergedContainer).ListAsync($"{id}/")).Count == 0 ? new object() : null,
                "the parts to end and nothing of the job to be left under merged/");
        }
        Assert.Equal(System.Net.HttpStatusCode.Conflict, (await s.Http.GetAsync($"/api/merges/{id}/report")).StatusCode);
        Assert.Equal(0, (await s.Storage.PoisonQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount);   // bad input fails once, it is not poison
    }
}
