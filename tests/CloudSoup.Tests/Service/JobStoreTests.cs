using CloudSoup.Control.Jobs;

namespace CloudSoup.Tests.Service;

[Collection(AzuriteCollection.Name)]
public class JobStoreTests(AzuriteFixture azurite)
{
    private static JobRecord NewJob(string id, string? name = null) => new() { RowKey = id, Name = name, Created = DateTimeOffset.UtcNow, RecipePath = $"jobs/{id}/recipe.yaml" };
    private static string NewId() => Guid.NewGuid().ToString("N")[..JobIds.Length];

    [Fact]
    public async Task Create_is_idempotent_and_keeps_the_first_record()
    {
        var jobs = new JobStore((await azurite.NewStorageAsync()).JobsTable);
        string id = NewId();
        var (first, created1) = await jobs.CreateIfAbsentAsync(NewJob(id, "first"), CancellationToken.None);
        var (second, created2) = await jobs.CreateIfAbsentAsync(NewJob(id, "second"), CancellationToken.None);
        Assert.True(created1);
        Assert.False(created2);
        Assert.Equal("first", second.Name);
        Assert.Null(await jobs.GetAsync(NewId(), CancellationToken.None));
        Assert.Null(await jobs.GetAsync("../not-an-id", CancellationToken.None));
    }

    [Fact]
    public async Task Claims_exclude_other_workers_until_they_expire_and_finished_jobs_stay_finished()
    {
        var jobs = new JobStore((await azurite.NewStorageAsync()).JobsTable);
        string id = NewId();
        await jobs.CreateIfAbsentAsync(NewJob(id), CancellationToken.None);
        var now = DateTimeOffset.UtcNow;

        var (first, w1Job) = await jobs.TryClaimAsync(id, "w1", now.AddMinutes(5), CancellationToken.None);
        Assert.Equal(ClaimOutcome.Claimed, first);
        string w1Attempt = w1Job!.Attempt!;
        Assert.StartsWith("attempt-1-", w1Attempt);
        Assert.True(JobAttempts.IsAttemptId(w1Attempt));
        var (outcome, held) = await jobs.TryClaimAsync(id, "w2", now.AddMinutes(5), CancellationToken.None);
        Assert.Equal(ClaimOutcome.HeldByOther, outcome);
        Assert.Equal("w1", held!.ClaimedBy);
        Assert.Null(await jobs.ReportProgressAsync(id, "w2", "merging", 0.5, CancellationToken.None));  // not w2's job

        await jobs.ExtendClaimAsync(id, "w1", now.AddSeconds(-1), CancellationToken.None);            // w1's claim lapses
        var (taken, job) = await jobs.TryClaimAsync(id, "w2", now.AddMinutes(5), CancellationToken.None);
        Assert.Equal(ClaimOutcome.Claimed, taken);
        Assert.Equal(2, job!.Attempts);
        Assert.Equal("w2", job.ClaimedBy);

        Assert.StartsWith("attempt-2-", job.Attempt);
        // w1 finishes late: its attempt is no longer the one the record names, so it cannot become the result.
        Assert.Null(await jobs.MarkSucceededAsync(id, "w1", w1Attempt, ["merged/x/w1/model.safetensors"], CancellationToken.None));
        Assert.NotNull(await jobs.MarkSucceededAsync(id, "w2", job.Attempt!, ["merged/x/model.safetensors"], CancellationToken.None));
        Assert.Equal(ClaimOutcome.AlreadyFinished, (await jobs.TryClaimAsync(id, "w3", now.AddMinutes(5), CancellationToken.None)).Outcome);
        Assert.Null(await jobs.MarkFailedAsync(id, "late failure from a duplicate", CancellationToken.None));
        var final = await jobs.GetAsync(id, CancellationToken.None);
        Assert.Equal(JobStatus.Succeeded, final!.Status);
        Assert.Equal(new[] { "merged/x/model.safetensors" }, final.Outputs);
        Assert.Equal(job.Attempt, final.CommittedAttempt);
    }

    [Fact]
    public async Task A_claim_lapsed_beyond_the_grace_can_neither_be_revived_nor_publish()
    {
        var jobs = new JobStore((await azurite.NewStorageAsync()).JobsTable);
        string id = NewId();
        await jobs.CreateIfAbsentAsync(NewJob(id), CancellationToken.None);
        var (_, claimed) = await jobs.TryClaimAsync(id, "w1", DateTimeOffset.UtcNow.AddMinutes(5), CancellationToken.None);
        var lapsed = DateTimeOffset.UtcNow - 2 * JobStore.ClaimGrace;
        Assert.NotNull(await jobs.ExtendClaimAsync(id, "w1", lapsed, CancellationToken.None));        // e.g. renewals failed for a while
        Assert.Null(await jobs.ExtendClaimAsync(id, "w1", DateTimeOffset.UtcNow.AddMinutes(5), CancellationToken.None));
        Assert.Null(await jobs.MarkSucceededAsync(id, "w1", claimed!.Attempt!, ["merged/x/model.safetensors"], CancellationToken.None));
        var job = (await jobs.GetAsync(id, CancellationToken.None))!;
        Assert.Equal(JobStatus.Running, job.Status);
        Assert.Null(job.CommittedAttempt);
        Assert.True(AttemptSweeper.IsAbandoned(claimed.Attempt!, job, DateTimeOffset.UtcNow));           // the sweep may take its folder now
    }

    [Fact]
    public async Task Concurrent_updates_are_not_lost()
    {
        var jobs = new JobStore((await azurite.NewStorageAsync()).JobsTable);
        string id = NewId();
        await jobs.CreateIfAbsentAsync(NewJob(id), CancellationToken.None);
        await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => Task.Run(() => jobs.UpdateAsync(id, j => { j.Attempts++; return true; }, CancellationToken.None))));
        Assert.Equal(12, (await jobs.GetAsync(id, CancellationToken.None))!.Attempts);
    }

    [Fact]
    public async Task List_is_newest_first()
    {
        var jobs = new JobStore((await azurite.NewStorageAsync()).JobsTable);
        var ids = new List<string>();
        for (int i = 0; i < 5; i++)
        {
            var job = NewJob(NewId(), $"job {i}");
            job.Created = DateTimeOffset.UtcNow.AddMinutes(i);
            await jobs.CreateIfAbsentAsync(job, CancellationToken.None);
            ids.Add(job.Id);
        }
        ids.Reverse();
        Assert.Equal(ids, (await jobs.ListAsync(10, CancellationToken.None)).Select(j => j.Id));
        var two = await jobs.ListAsync(2, CancellationToken.None);                      // fewer than there are: the newest, read whole
        Assert.Equal(ids.Take(2), two.Select(j => j.Id));
        Assert.Equal(["job 4", "job 3"], two.Select(j => j.Name));
        Assert.All(two, j => Assert.Equal($"jobs/{j.Id}/recipe.yaml", j.RecipePath));
    }

    [Fact]
    public async Task The_reconciler_s_scans_read_only_unfinished_jobs_or_only_the_named_columns()
    {
        var jobs = new JobStore((await azurite.NewStorageAsync()).JobsTable);
        var None = CancellationToken.None;
        string queued = NewId(), running = NewId(), succeeded = NewId(), failed = NewId();
        foreach (var id in new[] { queued, running, succeeded, failed }) await jobs.CreateIfAbsentAsync(NewJob(id, "named"), None);
        var (_, claim) = await jobs.TryClaimAsync(running, "w1", DateTimeOffset.UtcNow.AddMinutes(5), None);
        var (_, done) = await jobs.TryClaimAsync(succeeded, "w2", DateTimeOffset.UtcNow.AddMinutes(5), None);
        Assert.NotNull(await jobs.MarkSucceededAsync(succeeded, "w2", done!.Attempt!, ["merged/x/model.safetensors"], None));
        Assert.NotNull(await jobs.MarkFailedAsync(failed, "bad input", None));

        Assert.Equal(new[] { queued, running }.Order(), (await jobs.ListUnfinishedAsync(None)).Select(j => j.Id).Order());

        var few = (await jobs.ListAllAsync([nameof(JobRecord.RowKey), nameof(JobRecord.Status), nameof(JobRecord.Attempt)], None)).ToDictionary(j => j.Id);
        Assert.Equal(4, few.Count);
        Assert.Equal(JobStatus.Succeeded, few[succeeded].Status);
        Assert.Equal(JobStatus.Failed, few[failed].Status);
        Assert.Equal(claim!.Attempt, few[running].Attempt);
        Assert.All(few.Values, j => Assert.Null(j.Name));                               // a column not asked for is not read
        Assert.Null(few[succeeded].OutputsJson);
        Assert.NotNull((await jobs.GetAsync(succeeded, None))!.OutputsJson);
    }
}
