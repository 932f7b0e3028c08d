// What `cloudsoup status ID` prints for a split job (docs/fanout.md): one line per part with where it is, who runs it,
// what it moved, and its last error while it retries; the files and the download command once the job succeeded.
using CloudSoup.Cli.Commands;
using CloudSoup.Control.Api;
using CloudSoup.Control.Jobs;

namespace CloudSoup.Tests.Cli;

public class StatusLinesTests
{
    private static readonly Uri Local = new("http://127.0.0.1:7071/");
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 9, 0, 0, TimeSpan.Zero);

    private static JobView Job(string status, string? phase, IReadOnlyList<PartView> parts, IReadOnlyList<JobFileView>? files = null) =>
        new("0123456789abcdef0123", status, phase, 0.5, T0, T0, null, null, [], files, 1, null, "soup", "linear", null, JobView.LinksFor("0123456789abcdef0123"))
        { Parts = parts };

    private static PartView Part(int index, string status, string? phase, double progress, int attempts = 1, string? lastError = null) =>
        new(index, status, phase, progress, 2, 2_500_000_000, attempts, $"worker-{index}", 2_500_000_000, 1_250_000_000, 12.34, T0, null, lastError);

    [Fact]
    public void A_running_split_job_shows_each_part_with_its_phase_progress_worker_and_retry_reason()
    {
        var lines = StatusCommand.Lines(Job(JobStatus.Running, JobPhase.Merging,
        [
            Part(0, JobStatus.Succeeded, JobPhase.Done, 1),
            Part(1, JobStatus.Running, JobPhase.Merging, 0.42, attempts: 2, lastError: "storage request failed: 503 ServerBusy"),
            Part(2, JobStatus.Queued, null, 0),
        ]), Local).ToList();

        Assert.Contains("status    running (merging, 50%)", lines);
        var parts = lines.Where(l => l.StartsWith("part ", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, parts.Count);
        Assert.Equal("part 0    succeeded, 2 shards, 2.50 GB in, worker-0, 1.25 GB out in 12.3 s", parts[0]);
        Assert.Equal("part 1    running (merging, 42%), 2 shards, 2.50 GB in, worker-1, attempts 2, last error: storage request failed: 503 ServerBusy", parts[1]);
        Assert.Equal("part 2    queued, 2 shards, 2.50 GB in, worker-2", parts[2]);
        Assert.DoesNotContain(lines, l => l.StartsWith("download", StringComparison.Ordinal));
    }

    [Fact]
    public void A_succeeded_job_lists_its_files_with_human_sizes_and_the_download_command()
    {
        var lines = StatusCommand.Lines(Job(JobStatus.Succeeded, JobPhase.Done, [Part(0, JobStatus.Succeeded, JobPhase.Done, 1)],
            [new JobFileView("model-00001-of-00002.safetensors", 4_000_000_000, null, "\"0x1\"", "/api/merges/x/files/model-00001-of-00002.safetensors")]), Local).ToList();
        Assert.Contains("status    succeeded", lines);
        Assert.Contains("file      model-00001-of-00002.safetensors  4.00 GB", lines);
        Assert.Contains("download  cloudsoup download 0123456789abcdef0123 --out DIR", lines);
        Assert.Contains("report    http://127.0.0.1:7071/api/merges/0123456789abcdef0123/report", lines);

        // Against another API the hints name it, so they work as printed.
        var remote = StatusCommand.Lines(Job(JobStatus.Succeeded, JobPhase.Done, []), new Uri("https://soup.example.com/")).ToList();
        Assert.Contains("download  cloudsoup download 0123456789abcdef0123 --out DIR --api https://soup.example.com/", remote);
        Assert.Contains("report    https://soup.example.com/api/merges/0123456789abcdef0123/report", remote);
    }
}
