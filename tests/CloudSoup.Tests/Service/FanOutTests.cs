using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CloudSoup.Control.Api;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Control.Storage;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Cli;
using CloudSoup.Tests.Support;
using CloudSoup.Worker.Diagnostics;
using CloudSoup.Worker.Queue;
using Microsoft.Extensions.Logging;
using TorchSharp;
using Xunit.Abstractions;

namespace CloudSoup.Tests.Service;

/// <summary>
/// Issue 16, "fan-out": one job split into parts, each its own queue message, run by real worker processes
/// (`cloudsoup worker`) on Azurite. The result must be the same bytes for any number of parts and any order of
/// completion, a killed part must leave the job to finish exactly once, and a failing part must fail the job with
/// nothing of it left.
/// </summary>
[Collection(AzuriteCollection.Name)]
public class FanOutTests(AzuriteFixture azurite, CliBuildFixture _, ITestOutputHelper output) : IClassFixture<CliBuildFixture>
{
    private const int Tensors = 8;
    private const string Output = "output: {shard_size: 20000}\n";   // 16 KiB per 64×64 tensor: one tensor per shard, 8 shards

    private static readonly string[] ModelFiles =
        [.. Enumerable.Range(1, Tensors).Select(i => $"model-{i:D5}-of-{Tensors:D5}.safetensors"), "model.safetensors.index.json"];

    /// <summary>Three models of eight 64×64 tensors, in checkpoints/fan/ and in a local folder; a host without a worker.</summary>
    private async Task<WorkerlessHost> StartAsync(Action<Dictionary<string, torch.Tensor>, int>? tamper = null, Action<CloudSoupOptions>? configure = null)
    {
        var setup = await WorkerlessHost.StartAsync(azurite, "fan", configure);
        var dir = setup.Dir;
        var ckpt = setup.Storage.Container(setup.Options.CheckpointsContainer);
        for (int m = 0; m < 3; m++)
        {
            var gen = new torch.Generator((ulong)(700 + m));
            var tensors = Enumerable.Range(0, Tensors).ToDictionary(i => $"layers.{i}.weight", _ => torch.randn(new long[] { 64, 64 }, generator: gen));
            tamper?.Invoke(tensors, m);
            SafetensorsFiles.Write(dir[$"in/m{m}.safetensors"], tensors);
            await ckpt.GetBlobClient($"fan/m{m}.safetensors").UploadAsync(dir[$"in/m{m}.safetensors"], overwrite: true);
        }
        return setup;
    }

    /// <summary>
    /// For the reconciler's tests: a host that requeues after 5 s, the linear recipe split into <paramref name="parts"/>
    /// parts, one worker's reference bytes for it, and the job submitted (its messages not yet taken).
    /// </summary>
    private async Task<(WorkerlessHost S, string Id, string Reference)> SubmitSplitAsync(int parts)
    {
        var s = await StartAsync(configure: o => o.RequeueAfter = TimeSpan.FromSeconds(5));
        string recipe = Recipe("linear", s.Models) + $"parallelism: {{parts: {parts}}}\n";
        string reference = await ReferenceAsync(s, recipe);
        return (s, await s.SubmitAsync(recipe), reference);
    }

    /// <summary>Exactly one attempt folder is left for the job: the one its record names as committed.</summary>
    private static async Task AssertOnlyTheCommittedFolderAsync(WorkerlessHost s, JobRecord job)
    {
        var folder = Assert.Single(await new AttemptFolders(s.Storage.Container(s.Options.MergedContainer)).ListAsync(job.Id, CancellationToken.None));
        Assert.Equal(job.CommittedAttempt, folder.Attempt);
    }

    private static string Recipe(string method, string models, string extra = "", bool withBase = false)
    {
        var r = new StringBuilder($"merge_method: {method}\n");
        if (withBase) r.Append($"base_model: {models}/m0.safetensors\n");
        r.Append("models:\n");
        for (int m = withBase ? 1 : 0; m < 3; m++) r.Append($"  - model: {models}/m{m}.safetensors\n    parameters: {{weight: {m + 1}}}\n");
        return r.Append(extra).Append(Output).ToString();
    }

    /// <summary>The same merge run in this process on the local copies: the bytes every split must reproduce.</summary>
    private static Task<string> ReferenceAsync(WorkerlessHost s, string recipe) => s.ReferenceAsync(s.Dir["in"], recipe.Replace($"{s.Models}/", ""));

    private static async Task AssertSameModelAsync(WorkerlessHost s, JobRecord job, string reference)
    {
        foreach (var file in ModelFiles)
        {
            var listed = JobOutputs.Find(job.Outputs, file) ?? throw new Xunit.Sdk.XunitException($"the job lists no {file}: {string.Join(", ", job.Outputs)}");
            var written = await s.ReadAsync(listed);
            Assert.True(File.ReadAllBytes(Path.Combine(reference, file)).SequenceEqual(written), $"{file} differs from one worker's");
        }
    }

    [Fact]
    public async Task One_two_and_four_parts_on_two_worker_processes_write_the_same_bytes_as_one_worker()
    {
        await using var s = await StartAsync();
        string baseRecipe = Recipe("linear", s.Models);
        string reference = await ReferenceAsync(s, baseRecipe);
        var ids = new Dictionary<int, string>();
        foreach (int k in new[] { 1, 2, 4 }) ids[k] = await s.SubmitAsync(baseRecipe + $"parallelism: {{parts: {k}}}\n");

        using (var w1 = WorkerProcess.Start(s.Options))
        using (var w2 = WorkerProcess.Start(s.Options))
        {
            foreach (var (k, id) in ids)
            {
                var job = await s.Jobs.WaitForJobAsync(id, j => JobStatus.IsFinished(j.Status), $"the {k}-part job to finish");
                Assert.True(job.Status == JobStatus.Succeeded, $"{k} parts: {job.Error}\n{w1.Log}\n{w2.Log}");
            }
            // A finishing part deletes its message after the record names the result: while the workers still run.
            await TestBlobs.EventuallyAsync(async () => (await s.Storage.JobsQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount == 0 ? new object() : null,
                "every message to be deleted");
        }
        foreach (var (k, id) in ids)
        {
            var job = (await s.Jobs.GetAsync(id, CancellationToken.None))!;
            await AssertSameModelAsync(s, job, reference);
            Assert.Equal(k == 1 ? 0 : k, job.Parts);
            Assert.Equal(1, job.Attempts);
            var view = (await s.Http.GetFromJsonAsync<JobView>($"/api/merges/{id}", JobView.Json))!;
            var report = JsonDocument.Parse(await s.ReadAsync(JobOutputs.Find(job.Outputs, JobOutputs.ReportJson)!)).RootElement;
            var parallelism = report.GetProperty("parallelism");
            Assert.Equal(k, parallelism.GetProperty("parts").GetInt32());
            if (k == 1)
            {
                Assert.Null(view.Parts);
                continue;
            }
            // Per-part progress in the job view; each part's worker, bytes and time in the report.
            Assert.Equal(k, view.Parts!.Count);
            Assert.All(view.Parts, p => Assert.Equal(JobStatus.Succeeded, p.Status));
            Assert.All(view.Parts, p => Assert.NotNull(p.Worker));
            Assert.Equal(Tensors, view.Parts.Sum(p => p.Shards));
            var details = parallelism.GetProperty("partDetails").EnumerateArray().ToList();
            Assert.Equal(Enumerable.Range(0, k), details.Select(d => d.GetProperty("part").GetInt32()));
            Assert.All(details, d => Assert.True(d.GetProperty("bytesRead").GetInt64() > 0 && d.GetProperty("seconds").GetDouble() > 0 && d.GetProperty("worker").GetString() != null));
            Assert.Equal(Tensors * 3 * 64 * 64 * 4L, details.Sum(d => d.GetProperty("bytesRead").GetInt64()));
            output.WriteLine($"{k} parts: " + string.Join("; ", view.Parts.Select(p => $"part {p.Part} {p.Shards} shards by {p.Worker} in {p.Seconds:0.00} s")));
        }
        // One folder per job, the committed one.
        foreach (var id in ids.Values)
            Assert.Single(await new AttemptFolders(s.Storage.Container(s.Options.MergedContainer)).ListAsync(id, CancellationToken.None));
    }

    [Fact]
    public async Task Workers_killed_inside_a_part_and_after_the_last_part_leave_the_job_to_finish_exactly_once()
    {
        await using var s = await StartAsync();
        string recipe = Recipe("linear", s.Models) + "parallelism: {parts: 4}\n";
        string reference = await ReferenceAsync(s, recipe);
        string id = await s.SubmitAsync(recipe);

        // The first worker plans the split, runs a part, commits its shards and dies before recording the part as done.
        using (var first = WorkerProcess.Start(s.Options, TestHold.PartCommittedPoint))
        {
            Assert.Equal(TestHold.PartCommittedPoint, await first.WaitUntilHeldAsync());
            first.Kill();
        }
        // The second runs the remaining parts (the killed one again once its message reappears), sets the last bit of
        // the mask and dies before finishing the job.
        using (var second = WorkerProcess.Start(s.Options, TestHold.AllPartsDonePoint))
        {
            Assert.Equal(TestHold.AllPartsDonePoint, await second.WaitUntilHeldAsync());
            var held = (await s.Jobs.GetAsync(id, CancellationToken.None))!;
            Assert.Equal(JobStatus.Running, held.Status);
            Assert.True(held.AllPartsDone);
            Assert.Empty(held.Outputs);                                            // nothing named yet
            second.Kill();
        }
        // The third gets the killed finisher's message back, claims the finishing and commits; nothing is run twice.
        using (var third = WorkerProcess.Start(s.Options))
        {
            var job = await s.Jobs.WaitForJobAsync(id, j => JobStatus.IsFinished(j.Status), "the job to finish");
            Assert.True(job.Status == JobStatus.Succeeded, $"{job.Error}\n{third.Log}");
            await TestBlobs.EventuallyAsync(async () => (await s.Storage.JobsQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount == 0 ? new object() : null,
                "every message to be deleted");
        }
        var done = (await s.Jobs.GetAsync(id, CancellationToken.None))!;
        Assert.Equal(1, done.Attempts);                                            // one job attempt: the parts were retried, not the job
        Assert.Equal(done.Attempt, done.CommittedAttempt);
        await AssertSameModelAsync(s, done, reference);
        var parts = await new JobPartStore(s.Storage.JobsTable).ListAsync(id, done.Attempt!, CancellationToken.None);
        Assert.Equal(4, parts.Count);
        Assert.All(parts, p => Assert.Equal(JobStatus.Succeeded, p.Status));
        Assert.Contains(parts, p => p.Attempts == 2);                             // the part killed after committing ran again
        var folder = Assert.Single(await new AttemptFolders(s.Storage.Container(s.Options.MergedContainer)).ListAsync(id, CancellationToken.None));
        Assert.Equal(done.CommittedAttempt, folder.Attempt);
        Assert.Equal(ModelFiles.Concat([CloudSoup.Control.Storage.ModelFolderFiles.ModelCard, JobOutputs.ResolvedRecipe, JobOutputs.ReportHtml, JobOutputs.ReportJson]).Order(),
            folder.Blobs.Select(Path.GetFileName).Order());
        Assert.Equal(0, (await s.Storage.PoisonQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount);
    }

    [Fact]
    public async Task A_split_job_whose_workers_and_part_messages_are_all_gone_gets_every_part_sent_again_by_the_reconciler_and_finishes_once_in_the_same_attempt()
    {
        var (s, id, reference) = await SubmitSplitAsync(2);
        await using var _ = s;
        var worker = s.Processor();
        Assert.True(await worker.ProcessNextAsync(CancellationToken.None));           // the split: two part messages
        var first = (await s.Jobs.GetAsync(id, CancellationToken.None))!;
        Assert.Equal("00", first.PartsDone);
        await s.Storage.JobsQueue.ClearMessagesAsync();                                // both part messages are lost, and no worker runs

        // The record lets the attempt go on, so the reconciler sends the two parts again, not the job.
        var reconciler = s.Reconciler();
        var pass = await TestBlobs.EventuallyAsync(async () => await reconciler.RunOnceAsync(CancellationToken.None) is { Resent.Count: > 0 } r ? r : null,
            "the reconciler to send the lost parts again once they lapsed");
        Assert.Empty(pass.Requeued);
        Assert.Equal([new ResentPart(id, first.Attempt!, 0), new ResentPart(id, first.Attempt!, 1)], pass.Resent);
        Assert.Empty((await reconciler.RunOnceAsync(CancellationToken.None)).Resent);   // just sent: not lapsed again
        var job = await TestBlobs.EventuallyAsync(async () =>
        {
            await worker.ProcessNextAsync(CancellationToken.None);
            return await s.Jobs.GetAsync(id, CancellationToken.None) is { } j && JobStatus.IsFinished(j.Status) ? j : null;
        }, "the job to finish");
        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.Equal(1, job.Attempts);                                                // the same attempt, not split again
        Assert.Equal(first.Attempt, job.CommittedAttempt);
        Assert.Equal(2, job.Requeues);                                               // one message sent again per lost part
        Assert.Equal("11", job.PartsDone);
        await AssertSameModelAsync(s, job, reference);
        var parts = await new JobPartStore(s.Storage.JobsTable).ListAsync(id, first.Attempt!, CancellationToken.None);
        Assert.All(parts, p => Assert.Equal(1, p.Attempts));
        Assert.All(parts, p => Assert.Equal(1, p.Resends));                          // each sent again once
        await AssertOnlyTheCommittedFolderAsync(s, job);
    }

    [Fact]
    public async Task A_split_job_that_lost_one_parts_message_while_the_others_finished_gets_only_that_part_sent_again_and_finishes_once_in_the_same_attempt()
    {
        var (s, id, reference) = await SubmitSplitAsync(4);
        await using var _ = s;
        var planner = s.Processor();
        Assert.True(await planner.ProcessNextAsync(CancellationToken.None));          // the split: four part messages
        var split = (await s.Jobs.GetAsync(id, CancellationToken.None))!;
        Assert.Equal(4, split.Parts);
        const int lost = 2;                                                           // part 3 of 4: its message is deleted by mistake
        await TestBlobs.EventuallyAsync(async () =>
        {
            // Received for a moment only: the other parts' messages are visible again a second later.
            foreach (var m in (await s.Storage.JobsQueue.ReceiveMessagesAsync(32, TimeSpan.FromSeconds(1))).Value)
                if (JobMessage.TryParse(m.Body.ToString(), out var notOurs) is { Part: lost })
                {
                    await s.Storage.JobsQueue.DeleteMessageAsync(m.MessageId, m.PopReceipt);
                    return new object();
                }
            return null;
        }, "part 3's message to be deleted");

        using var w1 = WorkerProcess.Start(s.Options);
        using var w2 = WorkerProcess.Start(s.Options);
        var three = await s.Jobs.WaitForJobAsync(id, j => j.PartsDone == "1101" || JobStatus.IsFinished(j.Status), "the other three parts to finish");
        Assert.True(three.Status == JobStatus.Running, $"{three.Error}\n{w1.Log}\n{w2.Log}");
        var partStore = new JobPartStore(s.Storage.JobsTable);
        var before = await partStore.ListAsync(id, split.Attempt!, CancellationToken.None);

        var reconciler = s.Reconciler();
        var pass = await TestBlobs.EventuallyAsync(async () => await reconciler.RunOnceAsync(CancellationToken.None) is { Resent.Count: > 0 } r ? r : null,
            "the reconciler to send the lost part again once it lapsed");
        Assert.Empty(pass.Requeued);                                                  // not the job: that would start every part over
        Assert.Equal([new ResentPart(id, split.Attempt!, lost)], pass.Resent);
        var job = await s.Jobs.WaitForJobAsync(id, j => JobStatus.IsFinished(j.Status), "the job to finish");
        Assert.True(job.Status == JobStatus.Succeeded, $"{job.Error}\n{w1.Log}\n{w2.Log}");
        Assert.Equal(1, job.Attempts);
        Assert.Equal(split.Attempt, job.CommittedAttempt);                            // the same attempt finished
        Assert.Equal(1, job.Requeues);
        await AssertSameModelAsync(s, job, reference);

        // The three done parts were not run again: their rows are as they were, and each part ran once.
        var after = await partStore.ListAsync(id, split.Attempt!, CancellationToken.None);
        Assert.All(after, p => Assert.Equal(JobStatus.Succeeded, p.Status));
        Assert.All(after, p => Assert.Equal(1, p.Attempts));
        foreach (var p in before.Where(p => p.Part != lost))
        {
            var now = after.Single(a => a.Part == p.Part);
            Assert.Equal((p.Worker, p.Finished), (now.Worker, now.Finished));
        }
        Assert.NotNull(after.Single(p => p.Part == lost).LastError);                  // why it was sent again
        // The job view says what the reconciler did: one message sent again, for that part.
        var view = (await s.Http.GetFromJsonAsync<JobView>($"/api/merges/{id}", JobView.Json))!;
        Assert.Equal(1, view.Requeues);
        Assert.Equal([0, 0, 1, 0], view.Parts!.Select(p => p.Resends));
        var json = JsonDocument.Parse(await s.Http.GetStringAsync($"/api/merges/{id}")).RootElement;
        Assert.Equal(1, json.GetProperty("requeues").GetInt32());
        Assert.Equal(1, json.GetProperty("parts")[lost].GetProperty("resends").GetInt32());
        Assert.Contains("resent    1 time by the reconciler", string.Join("\n", CloudSoup.Cli.Commands.StatusCommand.Lines(view, s.Http.BaseAddress!)));
        Assert.Contains(", resent 1", CloudSoup.Cli.Commands.StatusCommand.Lines(view, s.Http.BaseAddress!).Single(l => l.StartsWith($"part {lost}")));
        var report = JsonDocument.Parse(await s.ReadAsync(JobOutputs.Find(job.Outputs, JobOutputs.ReportJson)!)).RootElement;
        var details = report.GetProperty("parallelism").GetProperty("partDetails").EnumerateArray().ToList();
        Assert.Equal(Enumerable.Range(0, 4), details.Select(d => d.GetProperty("part").GetInt32()));
        Assert.All(details, d => Assert.Equal(1, d.GetProperty("attempts").GetInt32()));
        await AssertOnlyTheCommittedFolderAsync(s, job);
        Assert.Equal(0, (await s.Storage.PoisonQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount);
    }

    [Fact]
    public async Task A_split_job_whose_parts_are_all_done_but_whose_finisher_and_messages_are_gone_gets_one_part_sent_again_to_finish_it()
    {
        var (s, id, reference) = await SubmitSplitAsync(2);
        await using var _ = s;
        // One worker splits the job, runs both parts, sets the last bit and dies before claiming the finishing; its
        // message is lost too.
        using (var w = WorkerProcess.Start(s.Options, TestHold.AllPartsDonePoint))
        {
            Assert.Equal(TestHold.AllPartsDonePoint, await w.WaitUntilHeldAsync());
            w.Kill();
        }
        await s.Storage.JobsQueue.ClearMessagesAsync();
        var held = (await s.Jobs.GetAsync(id, CancellationToken.None))!;
        Assert.True(held.AllPartsDone);

        var reconciler = s.Reconciler();
        var pass = await TestBlobs.EventuallyAsync(async () => await reconciler.RunOnceAsync(CancellationToken.None) is { Resent.Count: > 0 } r ? r : null,
            "the reconciler to send a part again once the job's claim lapsed");
        Assert.Empty(pass.Requeued);
        Assert.Equal([new ResentPart(id, held.Attempt!, 1)], pass.Resent);          // one done part, whose delivery finishes the job
        var worker = s.Processor();
        Assert.True(await worker.ProcessNextAsync(CancellationToken.None));
        var job = (await s.Jobs.GetAsync(id, CancellationToken.None))!;
        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.Equal(1, job.Attempts);
        Assert.Equal(held.Attempt, job.CommittedAttempt);
        await AssertSameModelAsync(s, job, reference);
        Assert.All(await new JobPartStore(s.Storage.JobsTable).ListAsync(id, held.Attempt!, CancellationToken.None), p => Assert.Equal(1, p.Attempts));
        await AssertOnlyTheCommittedFolderAsync(s, job);
    }

    [Fact]
    public async Task A_split_job_whose_part_rows_no_longer_let_its_attempt_go_on_is_split_again_by_the_reconciler_and_finishes_once()
    {
        var (s, id, reference) = await SubmitSplitAsync(2);
        await using var _ = s;
        var worker = s.Processor();
        Assert.True(await worker.ProcessNextAsync(CancellationToken.None));           // the split: two part messages
        Assert.True(await worker.ProcessNextAsync(CancellationToken.None));           // one part runs and commits its shards
        var first = (await s.Jobs.GetAsync(id, CancellationToken.None))!;
        Assert.Equal(1, first.PartsDone!.Count(c => c == '1'));
        await s.Storage.JobsQueue.ClearMessagesAsync();                                // the other part's message is lost, and no worker runs
        int missing = first.PartsDone!.IndexOf('0');
        await s.Storage.JobsTable.DeleteEntityAsync(JobPartRecord.PartitionFor(id), JobPartRecord.RowFor(missing));   // and its row (by hand)

        // Without the row the part cannot be sent again: the lapsed claim starts a new attempt, which splits again.
        var reconciler = s.Reconciler();
        var pass = await TestBlobs.EventuallyAsync(async () => await reconciler.RunOnceAsync(CancellationToken.None) is { Requeued.Count: > 0 } r ? r : null,
            "the reconciler to send the job again once its parts' claim lapsed");
        Assert.Equal([id], pass.Requeued);
        Assert.Empty(pass.Resent);
        var job = await TestBlobs.EventuallyAsync(async () =>
        {
            await worker.ProcessNextAsync(CancellationToken.None);
            return await s.Jobs.GetAsync(id, CancellationToken.None) is { } j && JobStatus.IsFinished(j.Status) ? j : null;
        }, "the job to finish");
        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.Equal(2, job.Attempts);
        Assert.NotEqual(first.Attempt, job.CommittedAttempt);
        Assert.Equal("11", job.PartsDone);
        await AssertSameModelAsync(s, job, reference);
        await AssertOnlyTheCommittedFolderAsync(s, job);                          // the first attempt's committed part is swept
    }

    [Fact]
    public async Task A_split_job_whose_part_failed_but_whose_worker_stopped_before_failing_the_job_is_failed_by_the_reconciler_with_the_parts_reason()
    {
        await using var s = await StartAsync(configure: o => { o.RequeueAfter = TimeSpan.FromSeconds(5); o.SweepInterval = TimeSpan.Zero; });
        string id = await s.SubmitAsync(Recipe("linear", s.Models) + "parallelism: {parts: 2}\n");
        var worker = s.Processor();
        Assert.True(await worker.ProcessNextAsync(CancellationToken.None));           // the split: two part messages
        Assert.True(await worker.ProcessNextAsync(CancellationToken.None));           // one part runs and commits its shards
        var first = (await s.Jobs.GetAsync(id, CancellationToken.None))!;
        int other = first.PartsDone!.IndexOf('0');
        await s.Storage.JobsQueue.ClearMessagesAsync();
        // The other part's worker failed the part for good, then stopped before failing the job.
        const string reason = "part 2 of 2: checkpoints/fan/m1.safetensors: tensor 'layers.3.weight' is cut short";
        Assert.NotNull(await new JobPartStore(s.Storage.JobsTable).MarkFailedAsync(id, other, reason, CancellationToken.None));

        var reconciler = s.Reconciler();
        var pass = await reconciler.RunOnceAsync(CancellationToken.None);
        Assert.Empty(pass.Requeued);                                                   // not split again: the part's failure stands
        Assert.Empty(pass.Resent);
        var job = (await s.Jobs.GetAsync(id, CancellationToken.None))!;
        Assert.Equal(JobStatus.Failed, job.Status);
        Assert.Equal(reason, job.Error);
        Assert.Equal(first.Attempt, job.Attempt);
        await reconciler.RunOnceAsync(CancellationToken.None);                        // the next pass sweeps the failed attempt's folder
        Assert.Empty(await new AttemptFolders(s.Storage.Container(s.Options.MergedContainer)).ListAsync(id, CancellationToken.None));
    }

    [Fact]
    public async Task A_part_with_bad_input_fails_the_job_with_the_parts_reason_and_nothing_of_the_job_stays()
    {
        // m2's layers.6.weight holds a NaN; with nonfinite: refuse the part that merges it fails as bad input.
        await using var s = await StartAsync((tensors, m) => { if (m == 2) tensors["layers.6.weight"][3, 5] = float.NaN; });
        string id = await s.SubmitAsync(Recipe("linear", s.Models) + "nonfinite: refuse\nparallelism: {parts: 4}\n");
        using (var w1 = WorkerProcess.Start(s.Options))
        using (var w2 = WorkerProcess.Start(s.Options))
        {
            var job = await s.Jobs.WaitForJobAsync(id, j => JobStatus.IsFinished(j.Status), "the job to finish");
            Assert.Equal(JobStatus.Failed, job.Status);
            Assert.StartsWith("part 4 of 4: ", job.Error);
            Assert.Contains("layers.6.weight", job.Error);
            Assert.Contains("nonfinite: refuse", job.Error);
            Assert.Empty(job.Outputs);
            // The other parts may still be finishing: each sees the job failed and deletes what it committed.
            await TestBlobs.EventuallyAsync(async () => (await s.Storage.JobsQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount == 0
                && (await s.Storage.Container(s.Options.MergedContainer).ListAsync($"{id}/")).Count == 0 ? new object() : null,
                "the parts to end and nothing of the job to be left under merged/");
        }
        Assert.Equal(HttpStatusCode.Conflict, (await s.Http.GetAsync($"/api/merges/{id}/report")).StatusCode);
        Assert.Equal(0, (await s.Storage.PoisonQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount);   // bad input fails once, it is not poison
    }

    [Theory]
    // ties with topk_scope: model decides one |δ| threshold per model over the whole model before merging any tensor;
    // agreement with granularity: model decides its coefficients once from the whole task vectors' Gram matrix;
    // weight scope alignment measures every model's scope per layer and fuses the targets before merging;
    // permutation alignment finds each model's permutations (weight matching) from the whole models.
    [InlineData("ties", "parameters: {density: 0.4, topk_scope: model}\n", "prepass")]
    [InlineData("agreement", "parameters: {threshold: 0.1, mode: order_free, granularity: model}\n", "prepass")]
    [InlineData("linear", "scope_alignment: {enabled: true}\n", "scope_alignment")]
    [InlineData("linear", "alignment: {method: weight_matching, spec: mlp, seed: 3}\n", "aligning")]
    public async Task A_two_stage_method_split_over_workers_gives_the_same_bytes_as_one_worker(string method, string section, string stage)
    {
        await using var s = await StartAsync();
        string recipe = Recipe(method, s.Models, section, withBase: stage == "prepass");
        string reference = await ReferenceAsync(s, recipe);
        string id = await s.SubmitAsync(recipe + "parallelism: {parts: 3}\n");
        using (var w1 = WorkerProcess.Start(s.Options))
        using (var w2 = WorkerProcess.Start(s.Options))
        {
            var job = await s.Jobs.WaitForJobAsync(id, j => JobStatus.IsFinished(j.Status), "the job to finish");
            Assert.True(job.Status == JobStatus.Succeeded, $"{job.Error}\n{w1.Log}\n{w2.Log}");
            // The finishing part deletes the hand-over files beside the job once the record names the result.
            await TestBlobs.EventuallyAsync(async () => (await s.Storage.Container(s.Options.JobsContainer).ListAsync($"{id}/{job.Attempt}/")).Count == 0 ? new object() : null,
                "the hand-over files to be deleted");
        }
        var done = (await s.Jobs.GetAsync(id, CancellationToken.None))!;
        Assert.Equal(3, done.Parts);                                                  // split, not run whole
        await AssertSameModelAsync(s, done, reference);
        // Stage 1 ran once, before the parts, which merged with its result and ran no such pass of their own; the report
        // carries what it found as one worker's report would.
        var report = JsonDocument.Parse(await s.ReadAsync(JobOutputs.Find(done.Outputs, JobOutputs.ReportJson)!)).RootElement;
        Assert.Contains(stage, report.GetProperty("phaseSeconds").EnumerateObject().Select(p => p.Name));
        Assert.All(report.GetProperty("parallelism").GetProperty("partDetails").EnumerateArray(),
            d => Assert.DoesNotContain(stage, d.GetProperty("phaseSeconds").EnumerateObject().Select(p => p.Name)));
        var one = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(reference, JobOutputs.ReportJson))).RootElement;
        string Found(JsonElement r) => (stage switch
            {
                "prepass" => r.GetProperty("methodNotes").GetProperty("(whole model)").GetString()!,
                "aligning" => WithoutSeconds(r.GetProperty("alignment")),              // the same permutations and stats; its own timing
                _ => r.GetProperty("scopeAlignment").GetRawText(),
            }).Replace($"{s.Models}/", "");                                             // the same result, over blob references
        static string WithoutSeconds(JsonElement e)
        {
            var o = System.Text.Json.Nodes.JsonObject.Create(e)!;
            o.Remove("seconds");
            return o.ToJsonString();
        }
        Assert.Equal(Found(one), Found(report));
        Assert.Equal(3, report.GetProperty("parallelism").GetProperty("parts").GetInt32());
    }
}
