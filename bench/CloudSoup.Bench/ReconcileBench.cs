// One reconciler pass (Control/Jobs/JobReconciler.cs) over a storage account that holds `jobs` succeeded jobs, each with
// its committed folder of `blobs` blobs under merged/, one in fifty also with a killed attempt's folder, and 20 jobs still
// queued. Times, `runs` times each on fresh reconcilers: a pass that sweeps (a host's first), a pass that does not (the
// next one, within SweepInterval), and the reads the reconciler made before it filtered and streamed (every record
// whole, twice: for the sweep and for the requeue; every blob name of the container held at once). Prints wall time
// and managed bytes allocated per pass, and the same for two ways of finding the job list's newest 100 jobs. The
// storage is CloudSoupStorage's (bench/reconcile/run.sh: the dev host's Azurite); the bench makes its own uniquely
// named table and containers.
using System.Diagnostics;
using Azure.Data.Tables;
using Azure.Storage.Blobs.Models;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Storage;
using Microsoft.Extensions.Logging.Abstractions;

internal static class ReconcileBench
{
    public static async Task RunAsync(int jobs, int blobs, int runs)
    {
        string connection = Environment.GetEnvironmentVariable("CloudSoupStorage")
            ?? throw new InvalidOperationException("set CloudSoupStorage (bench/reconcile/run.sh does)");
        string tag = Guid.NewGuid().ToString("N")[..8];
        var options = new CloudSoupOptions
        {
            ConnectionString = connection,
            JobsQueue = $"rq{tag}", PoisonQueue = $"rq{tag}-poison", CheckpointsContainer = $"rc{tag}", RecipesContainer = $"rr{tag}",
            MergedContainer = $"rm{tag}", JobsContainer = $"rj{tag}", EvalContainer = $"re{tag}", JobsTable = $"rt{tag}",
            SweepInterval = TimeSpan.FromHours(1),
        };
        var storage = new StorageClients(options);
        await storage.EnsureCreatedAsync(CancellationToken.None);
        var store = new JobStore(storage.JobsTable);
        var merged = storage.Container(options.MergedContainer);

        var seed = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, jobs + 20), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
        {
            string id = $"{i:x8}{tag}{new string('0', JobIds.Length - 16)}";
            if (i >= jobs)
            {
                await storage.JobsTable.AddEntityAsync(new JobRecord { RowKey = id, Created = DateTimeOffset.UtcNow, RecipePath = $"jobs/{id}/recipe.yaml" }, ct);
                return;
            }
            string attempt = JobAttempts.NewId(1);
            var names = Enumerable.Range(0, blobs).Select(b => $"{JobAttempts.Folder(id, attempt)}/model-{b:d5}-of-{blobs:d5}.safetensors").ToList();
            var record = new JobRecord
            {
                RowKey = id, Created = DateTimeOffset.UtcNow, RecipePath = $"jobs/{id}/recipe.yaml", Status = JobStatus.Succeeded,
                Attempts = 1, Attempt = attempt, CommittedAttempt = attempt, Finished = DateTimeOffset.UtcNow, Name = $"merge {i}",
                Outputs = names.Select(n => $"{options.MergedContainer}/{n}").ToList(),
            };
            await storage.JobsTable.AddEntityAsync(record, ct);
            foreach (var n in names) await merged.GetBlobClient(n).UploadAsync(BinaryData.FromString("x"), ct);
            if (i % 50 == 0)
                await merged.GetBlobClient($"{JobAttempts.Folder(id, "attempt-0-dead0000")}/model.safetensors").UploadAsync(BinaryData.FromString("x"), ct);
        });
        Console.WriteLine($"seeded {jobs} succeeded jobs × {blobs} blobs (+{(jobs + 49) / 50} killed attempts' folders, 20 queued jobs) in {seed.Elapsed.TotalSeconds:F1} s");

        Console.WriteLine("| pass | wall ms (median of runs) | managed MB allocated | folders deleted |");
        Console.WriteLine("|---|---|---|---|");
        await Report("reads of the unfiltered pass (all records twice, all names at once)", runs, async () =>
        {
            await store.ListAllAsync(CancellationToken.None);
            var names = new List<string>();
            await foreach (var b in merged.GetBlobsAsync(BlobTraits.None, BlobStates.None, null, CancellationToken.None)) names.Add(b.Name);
            await store.ListAllAsync(CancellationToken.None);
            return 0;
        });
        bool first = true;
        await Report("a pass that sweeps (a host's first)", runs, async () =>
        {
            var pass = await new JobReconciler(storage, store, NullLogger<JobReconciler>.Instance).RunOnceAsync(CancellationToken.None);
            int n = pass.Swept.Count;
            if (first && n != (jobs + 49) / 50) throw new InvalidOperationException($"the first sweep deleted {n} folders");
            first = false;
            return n;
        });
        var warm = new JobReconciler(storage, store, NullLogger<JobReconciler>.Instance);
        await warm.RunOnceAsync(CancellationToken.None);
        await Report("a pass within SweepInterval (no sweep)", runs, async () =>
        {
            var pass = await warm.RunOnceAsync(CancellationToken.None);
            if (pass.SweepRan) throw new InvalidOperationException("swept again within the interval");
            return pass.Swept.Count;
        });

        await Report("the job list, newest 100 (GET /api/merges, JobStore.ListAsync): whole records of every job, sorted", runs, async () =>
            (await store.ListAsync(100, CancellationToken.None)).Count - 100);
        await Report("the job list's alternative: ids and times of every job, then the newest 100 records (16 at a time)", runs, async () =>
        {
            var keys = await store.ListAllAsync([nameof(JobRecord.RowKey), nameof(JobRecord.Created)], CancellationToken.None);
            var newest = keys.OrderByDescending(j => j.Created).Take(100).ToList();
            int read = 0;
            await Parallel.ForEachAsync(newest, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (j, ct) =>
            {
                if (await store.GetAsync(j.Id, ct) is not null) Interlocked.Increment(ref read);
            });
            return read - 100;
        });

        await storage.JobsTable.DeleteAsync();
        foreach (var c in new[] { options.MergedContainer, options.CheckpointsContainer, options.RecipesContainer, options.JobsContainer, options.EvalContainer })
            await storage.Container(c).DeleteIfExistsAsync();
    }

    private static async Task Report(string what, int runs, Func<Task<int>> pass)
    {
        var ms = new List<double>();
        long bytes = 0;
        int deleted = 0;
        for (int r = 0; r < runs; r++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            var sw = Stopwatch.StartNew();
            deleted += await pass();
            ms.Add(sw.Elapsed.TotalMilliseconds);
            bytes = GC.GetTotalAllocatedBytes(precise: true) - before;
        }
        ms.Sort();
        Console.WriteLine($"| {what} | {ms[ms.Count / 2]:F0} | {bytes / 1e6:F1} | {deleted} |");
    }
}
