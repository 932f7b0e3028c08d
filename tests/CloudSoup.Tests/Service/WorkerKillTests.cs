using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CloudSoup.Control.Api;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Control.Recipes;
using CloudSoup.Control.Storage;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Cli;
using CloudSoup.Tests.Support;
using CloudSoup.Worker.Diagnostics;
using Microsoft.Extensions.Logging;
using TorchSharp;
using Xunit.Abstractions;

namespace CloudSoup.Tests.Service;

/// <summary>
/// Issue 15, "a result is all or nothing", with real worker processes (`cloudsoup worker`) killed with SIGKILL at
/// points of the commit (TestHold), while the test reads the job the way users do (GET /api/merges/{id}, the job
/// list, the report route, the blobs the record lists) without pause: no read may ever see a partial result.
/// </summary>
[Collection(AzuriteCollection.Name)]
public class WorkerKillTests(AzuriteFixture azurite, CliBuildFixture _, ITestOutputHelper output) : IClassFixture<CliBuildFixture>
{
    private const int Shards = 6;
    /// <summary>What a job writes: 6 shards, the index, the resolved recipe, report.html, report.json (committed in this order).</summary>
    private static readonly string[] Files =
        [.. Enumerable.Range(1, Shards).Select(i => $"model-{i:D5}-of-{Shards:D5}.safetensors"), "model.safetensors.index.json",
         JobOutputs.ResolvedRecipe, JobOutputs.ReportHtml, JobOutputs.ReportJson, ModelFolderFiles.ModelCard];

    private sealed record Setup(CloudSoupOptions Options, StorageClients Storage, CloudSoupHost Host, HttpClient Http, string JobId, string Reference) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await Host.DisposeAsync();
        }
    }

    /// <summary>
    /// Three models of six 64×64 tensors, a linear recipe writing one shard per tensor, submitted through the API of a
    /// host without a worker; the same merge run locally first gives the reference output.
    /// </summary>
    private async Task<Setup> SubmitAsync(TempDir dir)
    {
        var options = azurite.NewOptions();
        options.MaxAttempts = 3;
        options.ReconcileInterval = TimeSpan.Zero;        // only the workers act on the job here
        var host = await CloudSoupHost.StartAsync(options, new CloudSoupHostOptions { RunWatcher = false, MinimumLogLevel = LogLevel.Warning }, CancellationToken.None);
        var storage = new StorageClients(options);
        var ckpt = storage.Container(options.CheckpointsContainer);
        var local = new StringBuilder("merge_method: linear\nmodels:\n");
        var remote = new StringBuilder("merge_method: linear\nmodels:\n");
        for (int m = 0; m < 3; m++)
        {
            var gen = new torch.Generator((ulong)(500 + m));
            var tensors = Enumerable.Range(0, Shards).ToDictionary(i => $"layers.{i}.weight", _ => torch.randn(new long[] { 64, 64 }, generator: gen));
            SafetensorsFiles.Write(dir[$"in/m{m}.safetensors"], tensors);
            await ckpt.GetBlobClient($"kill/m{m}.safetensors").UploadAsync(dir[$"in/m{m}.safetensors"], overwrite: true);
            local.Append($"  - model: m{m}.safetensors\n    parameters: {{weight: {m + 1}}}\n");
            remote.Append($"  - model: {options.CheckpointsContainer}/kill/m{m}.safetensors\n    parameters: {{weight: {m + 1}}}\n");
        }
        const string output = "output: {shard_size: 20000}\n";                      // 16 KiB per tensor: one tensor per shard
        await using (var sink = new LocalDirectorySink(dir["reference"]))
            await new MergeJobRunner(new LocalCheckpointStore(dir["in"])).RunAsync(RecipeParser.Parse(local + output), sink, null, CancellationToken.None);
        Assert.Equal(Shards, Directory.GetFiles(dir["reference"], "model-*.safetensors").Length);

        var http = new HttpClient { BaseAddress = host.Url };
        var post = await http.PostAsync("/api/merges", new StringContent(remote + output, Encoding.UTF8, "application/yaml"));
        Assert.Equal(HttpStatusCode.Accepted, post.StatusCode);
        var id = (await post.Content.ReadFromJsonAsync<SubmitView>(JobView.Json))!.Id;
        return new Setup(options, storage, host, http, id, dir["reference"]);
    }

    /// <summary>
    /// Reads the job as users do, over and over, until stopped, and records every read that shows part of a result:
    /// a job that is not succeeded must list no outputs and have no report; a succeeded one must list every file,
    /// all in one attempt folder, each there in full.
    /// </summary>
    private sealed class Reader(Setup s)
    {
        public ConcurrentQueue<string> Violations { get; } = new();
        public int Polls;

        public async Task RunAsync(CancellationToken stop)
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await PollAsync();
                }
                catch (Exception e) when (!stop.IsCancellationRequested)
                {
                    Violations.Enqueue($"a read failed: {e.GetType().Name}: {e.Message}");
                }
                Interlocked.Increment(ref Polls);
            }
        }

        /// <summary>Waits until at least <paramref name="more"/> further complete rounds of reads happened.</summary>
        public async Task ReadSomeMoreAsync(int more = 3)
        {
            int target = Volatile.Read(ref Polls) + more;
            await TestBlobs.EventuallyAsync(() => Task.FromResult<object?>(Volatile.Read(ref Polls) >= target ? new object() : null), "the reader to poll");
        }

        private async Task PollAsync()
        {
            var view = (await s.Http.GetFromJsonAsync<JobView>($"/api/merges/{s.JobId}", JobView.Json))!;
            await CheckAsync("GET /api/merges/{id}", view.Status, view.Outputs);
            var listed = (await s.Http.GetFromJsonAsync<JobListView>("/api/merges", JobView.Json))!.Jobs.Single(j => j.Id == s.JobId);
            await CheckAsync("GET /api/merges", listed.Status, listed.Outputs);
            using var report = await s.Http.GetAsync($"/api/merges/{s.JobId}/report?format=json");
            if (report.StatusCode == HttpStatusCode.OK)
            {
                var json = JsonDocument.Parse(await report.Content.ReadAsStringAsync()).RootElement;
                var outputs = json.GetProperty("outputs").EnumerateArray().Select(o => o.GetString()!).ToList();
                await CheckAsync("the report's outputs", JobStatus.Succeeded, outputs);
            }
            else if (report.StatusCode != HttpStatusCode.Conflict)
            {
                Violations.Enqueue($"the report route answered {(int)report.StatusCode}");
            }
        }

        private async Task CheckAsync(string what, string status, IReadOnlyList<string> outputs)
        {
            if (status != JobStatus.Succeeded)
            {
                if (outputs.Count > 0) Violations.Enqueue($"{what}: {status} but lists {outputs.Count} outputs");
                return;
            }
            var folders = outputs.Select(o => o[..o.LastIndexOf('/')]).Distinct().ToList();
            if (folders.Count != 1) Violations.Enqueue($"{what}: outputs in {folders.Count} folders");
            var names = outputs.Select(o => o[(o.LastIndexOf('/') + 1)..]).Order().ToList();
            if (!names.SequenceEqual(Files.Order())) Violations.Enqueue($"{what}: lists {string.Join(", ", names)}");
            foreach (var o in outputs)
            {
                var path = BlobPath.Parse(o);
                var blob = s.Storage.Container(path.Container).GetBlobClient(path.Name);
                if (!(await blob.ExistsAsync()).Value) { Violations.Enqueue($"{what}: lists {o}, which does not exist"); continue; }
                var reference = Path.Combine(s.Reference, Path.GetFileName(path.Name));
                if (path.Name.EndsWith(".safetensors", StringComparison.Ordinal) && (await blob.GetPropertiesAsync()).Value.ContentLength != new FileInfo(reference).Length)
                    Violations.Enqueue($"{what}: {o} is not whole");
            }
        }
    }

    /// <summary>Since the last kill: how long a retry takes to get back to the same point (reported, never asserted).</summary>
    private System.Diagnostics.Stopwatch? _sinceKill;

    /// <summary>Runs a worker armed at <paramref name="point"/> until it stands there, lets the reader read, checks storage really holds a partial commit, kills it.</summary>
    private async Task KillAtAsync(Setup s, Reader reader, string point)
    {
        using var worker = WorkerProcess.Start(s.Options, point);
        Assert.Equal(point, await worker.WaitUntilHeldAsync());
        string recovered = _sinceKill is { } since ? $"; the retry got there {since.Elapsed.TotalSeconds:0.0} s after the previous kill" : "";
        var job = (await new JobStore(s.Storage.JobsTable).GetAsync(s.JobId, CancellationToken.None))!;
        var folders = await new AttemptFolders(s.Storage.Container(s.Options.MergedContainer)).ListAsync(s.JobId, CancellationToken.None);
        int committed = folders.SingleOrDefault(f => f.Attempt == job.Attempt)?.Blobs.Count ?? 0;
        if (point.StartsWith("commit:", StringComparison.Ordinal))
            Assert.Equal(int.Parse(point["commit:".Length..]), committed);                   // committed files of the attempt: really half there
        else
            Assert.Equal(Files.Length, committed);
        await reader.ReadSomeMoreAsync();
        worker.Kill();
        _sinceKill = System.Diagnostics.Stopwatch.StartNew();
        output.WriteLine($"killed {job.Attempt} at {point} ({committed} of {Files.Length} files committed){recovered}; {reader.Polls} reads so far");
    }

    [Fact]
    public async Task Workers_killed_at_random_points_of_the_commit_never_show_a_partial_result_and_the_retry_commits_once()
    {
        using var dir = new TempDir();
        await using var s = await SubmitAsync(dir);
        var reader = new Reader(s);
        using var stop = new CancellationTokenSource();
        var reading = reader.RunAsync(stop.Token);
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        output.WriteLine($"seed {seed}");

        // Attempts 1 and 2 die while committing (any of 0..10 files committed); attempt 3 dies after publishing, before
        // deleting its message; a fourth worker then finds the job finished and only deletes that message.
        await KillAtAsync(s, reader, TestHold.CommitPoint(rng.Next(0, Files.Length + 1)));
        await KillAtAsync(s, reader, TestHold.CommitPoint(rng.Next(0, Files.Length + 1)));
        await KillAtAsync(s, reader, TestHold.PublishedPoint);
        using (var last = WorkerProcess.Start(s.Options))
        {
            await TestBlobs.EventuallyAsync(async () => (await s.Storage.JobsQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount == 0 ? new object() : null,
                "the duplicate message to be deleted");
            output.WriteLine($"the message left by the last kill was deleted unrun {_sinceKill!.Elapsed.TotalSeconds:0.0} s after it");
            await reader.ReadSomeMoreAsync();
            last.Kill();
        }
        stop.Cancel();
        await reading;

        Assert.True(reader.Violations.IsEmpty, string.Join("\n", reader.Violations.Distinct()));
        var job = (await new JobStore(s.Storage.JobsTable).GetAsync(s.JobId, CancellationToken.None))!;
        Assert.Equal(JobStatus.Succeeded, job.Status);
        Assert.Equal(3, job.Attempts);                                                 // the fourth delivery ran nothing
        Assert.StartsWith("attempt-3-", job.CommittedAttempt);
        var folder = Assert.Single(await new AttemptFolders(s.Storage.Container(s.Options.MergedContainer)).ListAsync(s.JobId, CancellationToken.None));
        Assert.Equal(job.CommittedAttempt, folder.Attempt);                           // the killed attempts' files are gone
        Assert.Equal(Files.Order(), folder.Blobs.Select(Path.GetFileName).Order());
        foreach (var file in Files.Where(f => f.StartsWith("model", StringComparison.Ordinal)))
        {
            var blob = s.Storage.Container(s.Options.MergedContainer).GetBlobClient($"{folder.Prefix}{file}");
            Assert.Equal(File.ReadAllBytes(Path.Combine(s.Reference, file)), (await blob.DownloadContentAsync()).Value.Content.ToArray());
        }
        output.WriteLine($"{reader.Polls} rounds of reads, none saw a partial result");
    }

    [Fact]
    public async Task Three_kills_during_the_commit_fail_the_job_and_leave_nothing_of_it()
    {
        using var dir = new TempDir();
        await using var s = await SubmitAsync(dir);
        var reader = new Reader(s);
        using var stop = new CancellationTokenSource();
        var reading = reader.RunAsync(stop.Token);
        int seed = Environment.TickCount;
        var rng = new Random(seed);
        output.WriteLine($"seed {seed}");

        // The issue's case: every attempt dies with some of its files committed (1..9 of 10).
        for (int kill = 0; kill < 3; kill++) await KillAtAsync(s, reader, TestHold.CommitPoint(rng.Next(1, Files.Length)));
        var jobs = new JobStore(s.Storage.JobsTable);
        using (var last = WorkerProcess.Start(s.Options))
        {
            await jobs.WaitForJobAsync(s.JobId, j => j.Status == JobStatus.Failed, "the fourth delivery to give up");
            output.WriteLine($"the fourth delivery gave up {_sinceKill!.Elapsed.TotalSeconds:0.0} s after the last kill");
            await TestBlobs.EventuallyAsync(async () => (await s.Storage.PoisonQueue.GetPropertiesAsync()).Value.ApproximateMessagesCount == 1 ? new object() : null,
                "the message to be parked");
            await reader.ReadSomeMoreAsync();
            last.Kill();
        }
        stop.Cancel();
        await reading;

        Assert.True(reader.Violations.IsEmpty, string.Join("\n", reader.Violations.Distinct()));
        var job = (await jobs.GetAsync(s.JobId, CancellationToken.None))!;
        Assert.StartsWith("gave up after 3 attempts", job.Error);
        Assert.Empty(job.Outputs);
        Assert.Null(job.CommittedAttempt);
        Assert.Empty(await s.Storage.Container(s.Options.MergedContainer).ListAsync($"{s.JobId}/"));   // nothing of it, in any folder
        Assert.Equal(HttpStatusCode.Conflict, (await s.Http.GetAsync($"/api/merges/{s.JobId}/report")).StatusCode);
    }
}
