using System.CommandLine;
using CloudSoup.Cli.Commands;
using CloudSoup.Cli.Download;
using CloudSoup.Control.Jobs;
using CloudSoup.Tests.Service;
using CloudSoup.Tests.Support;

namespace CloudSoup.Tests.Cli;

/// <summary>`cloudsoup download` against the standalone host (and straight from storage) with a job the real worker merged.</summary>
[Collection(AzuriteCollection.Name)]
public class DownloadCommandTests(AzuriteFixture azurite)
{
    private const string Model = "model.safetensors";

    private static async Task<(int Code, string Err)> RunAsync(params string[] args)
    {
        var stderr = new StringWriter();
        var original = Console.Error;
        Console.SetError(stderr);
        try
        {
            return (await new RootCommand { DownloadCommand.Create() }.Parse(args).InvokeAsync(), stderr.ToString());
        }
        finally
        {
            Console.SetError(original);
        }
    }

    /// <summary>Every committed file of the job, by name, as stored.</summary>
    private static async Task<Dictionary<string, byte[]>> CommittedAsync(SucceededJobHost job)
    {
        var record = (await job.Jobs.GetAsync(job.JobId, CancellationToken.None))!;
        var files = new Dictionary<string, byte[]>();
        foreach (var file in JobFiles.Committed(record, job.Options.MergedContainer))
            files[file.Name] = await job.MergedBlobAsync(file.Blob.Name);
        return files;
    }

    private static void AssertFolderHolds(string dir, Dictionary<string, byte[]> expected)
    {
        Assert.Equal(expected.Keys.Order(), Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order());
        foreach (var (name, bytes) in expected)
        {
            Assert.Equal(bytes.Length, new FileInfo(Path.Combine(dir, name)).Length);
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(dir, name)));
        }
    }

    [Fact]
    public async Task Download_writes_every_committed_file_with_the_listed_sizes_and_resumes_a_partial_file()
    {
        await using var job = await SucceededJobHost.StartAsync(azurite);
        var expected = await CommittedAsync(job);
        Assert.Contains(Model, expected.Keys);
        using var dir = new TempDir();
        string outDir = dir["out"];
        string api = job.Host.Url.ToString();

        var (code, err) = await RunAsync("download", job.JobId, "--out", outDir, "--api", api);
        Assert.True(code == 0, err);
        AssertFolderHolds(outDir, expected);

        // An interrupted download: the model is only partly there; the next run asks for the rest with a Range request.
        byte[] model = expected[Model];
        File.Delete(Path.Combine(outDir, Model));
        File.WriteAllBytes(Path.Combine(outDir, Model + JobDownloader.PartialSuffix), model[..(model.Length / 3)]);
        (code, err) = await RunAsync("download", job.JobId, "--out", outDir, "--api", api);
        Assert.True(code == 0, err);
        AssertFolderHolds(outDir, expected);
    }

    [Fact]
    public async Task The_downloader_resumes_from_the_partial_length_and_keeps_complete_files_through_the_api_and_straight_from_storage()
    {
        await using var job = await SucceededJobHost.StartAsync(azurite);
        var expected = await CommittedAsync(job);
        byte[] model = expected[Model];
        IJobFileSource[] sources =
        [
            new ApiFileSource(new ApiClient(job.Host.Url)),
            new StorageFileSource(job.Storage),
        ];
        foreach (var source in sources)
        {
            using var _ = source;
            using var dir = new TempDir();
            var downloader = new JobDownloader(source);
            var first = await downloader.DownloadAsync(job.JobId, dir.Path, progress: null, CancellationToken.None);
            Assert.All(first, f => Assert.False(f.AlreadyPresent));
            AssertFolderHolds(dir.Path, expected);

            File.Delete(dir[Model]);
            File.WriteAllBytes(dir[Model + JobDownloader.PartialSuffix], model[..100]);
            var second = await downloader.DownloadAsync(job.JobId, dir.Path, progress: null, CancellationToken.None);
            Assert.Equal(100, second.Single(f => f.Name == Model).ResumedFrom);
            Assert.All(second.Where(f => f.Name != Model), f => Assert.True(f.AlreadyPresent, f.Name));
            AssertFolderHolds(dir.Path, expected);

            // A .partial longer than the file is not a prefix of it: downloaded again from the start.
            File.Delete(dir[Model]);
            File.WriteAllBytes(dir[Model + JobDownloader.PartialSuffix], new byte[model.Length + 10]);
            var third = await downloader.DownloadAsync(job.JobId, dir.Path, progress: null, CancellationToken.None);
            Assert.Equal(0, third.Single(f => f.Name == Model).ResumedFrom);
            AssertFolderHolds(dir.Path, expected);
        }
    }

    [Fact]
    public async Task A_stored_md5_is_checked_and_a_mismatch_fails_without_leaving_the_file_or_its_partial()
    {
        await using var job = await SucceededJobHost.StartAsync(azurite);
        var expected = await CommittedAsync(job);
        var record = (await job.Jobs.GetAsync(job.JobId, CancellationToken.None))!;
        var blob = job.Storage.Container(job.Options.MergedContainer).GetBlobClient(JobFiles.CommittedFolder(record) + Model);
        string contentType = (await blob.GetPropertiesAsync()).Value.ContentType;
        async Task SetMd5Async(byte[] md5) => await blob.SetHttpHeadersAsync(new Azure.Storage.Blobs.Models.BlobHttpHeaders { ContentType = contentType, ContentHash = md5 });

        IJobFileSource[] sources = [new ApiFileSource(new ApiClient(job.Host.Url)), new StorageFileSource(job.Storage)];
        foreach (var source in sources)
        {
            using var _ = source;
            await SetMd5Async(System.Security.Cryptography.MD5.HashData(expected[Model]));
            Assert.NotNull((await source.ListAsync(job.JobId, CancellationToken.None)).Single(f => f.Name == Model).Md5);
            using (var good = new TempDir())
            {
                // Resumed from a partial, so the hash covers the bytes already on disk as well as the ones downloaded.
                File.WriteAllBytes(good[Model + JobDownloader.PartialSuffix], expected[Model][..50]);
                await new JobDownloader(source).DownloadAsync(job.JobId, good.Path, progress: null, CancellationToken.None);
                AssertFolderHolds(good.Path, expected);
            }

            await SetMd5Async(new byte[16]);
            using var bad = new TempDir();
            var e = await Assert.ThrowsAsync<CloudSoup.Control.Errors.CloudSoupException>(() => new JobDownloader(source).DownloadAsync(job.JobId, bad.Path, progress: null, CancellationToken.None));
            Assert.Contains("MD5", e.Message);
            Assert.True(e.IsRetriable);   // exit 1: a transfer problem, not bad input
            Assert.False(File.Exists(bad[Model]) || File.Exists(bad[Model + JobDownloader.PartialSuffix]));
        }
    }

    [Fact]
    public async Task Download_exits_2_with_one_line_for_an_unknown_job_and_a_job_that_has_not_succeeded_and_writes_nothing()
    {
        await using var job = await SucceededJobHost.SubmitAsync(azurite);
        using var dir = new TempDir();
        string api = job.Host.Url.ToString();

        var (code, err) = await RunAsync("download", "0123456789abcdef0123", "--out", dir["a"], "--api", api);
        Assert.Equal(2, code);
        Assert.Equal("error: job '0123456789abcdef0123' does not exist", err.Trim());

        (code, err) = await RunAsync("download", job.JobId, "--out", dir["b"], "--api", api);
        Assert.Equal(2, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains($"job {job.JobId} is queued", err);
        Assert.Contains("cloudsoup status", err);

        (code, err) = await RunAsync("download", job.JobId, "--out", dir["c"], "--storage", azurite.ConnectionString);
        Assert.Equal(2, code);
        Assert.Contains("does not exist", err);   // the default jobs table of that account has no such job

        Assert.False(Directory.Exists(dir["a"]) || Directory.Exists(dir["b"]) || Directory.Exists(dir["c"]));
    }
}
