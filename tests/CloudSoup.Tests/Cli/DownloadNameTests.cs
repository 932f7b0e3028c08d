using CloudSoup.Cli.Download;
using CloudSoup.Control.Errors;
using CloudSoup.Tests.Support;

namespace CloudSoup.Tests.Cli;

/// <summary>
/// A listing `cloudsoup download` must not follow: names from a server (or a tampered job record) that would write
/// outside --out. The source here is a fixed listing, not storage: the check happens before anything is read.
/// </summary>
public class DownloadNameTests
{
    private sealed class Listing(params RemoteFile[] files) : IJobFileSource
    {
        public Task<IReadOnlyList<RemoteFile>> ListAsync(string jobId, CancellationToken ct) => Task.FromResult<IReadOnlyList<RemoteFile>>(files);
        public Task<RemoteRead> OpenAsync(string jobId, RemoteFile file, long offset, CancellationToken ct) => throw new InvalidOperationException("nothing may be read");
        public void Dispose() { }
    }

    [Theory]
    [InlineData("../escaped.bin")]
    [InlineData("/tmp/escaped.bin")]
    [InlineData("a/../../escaped.bin")]
    [InlineData("a\\..\\escaped.bin")]
    [InlineData("evil\u001b[2Jname")]
    public async Task A_listed_name_that_would_leave_the_output_folder_is_refused_before_anything_is_written(string name)
    {
        using var dir = new TempDir();
        string outDir = dir["out"];
        var source = new Listing(new RemoteFile("model.safetensors", 10, null, null, "x"), new RemoteFile(name, 10, null, null, "y"));
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => new JobDownloader(source).DownloadAsync("0123456789abcdef0123", outDir, progress: null, CancellationToken.None));
        Assert.Contains("would not stay inside the output folder", e.Message);
        Assert.False(e.IsRetriable);
        Assert.DoesNotContain('\u001b', e.Message);
        Assert.False(Directory.Exists(outDir));
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }

    [Fact]
    public async Task A_listed_file_whose_blob_is_gone_is_refused_before_anything_is_written()
    {
        using var dir = new TempDir();
        var source = new Listing(new RemoteFile("model.safetensors", 10, null, null, "x"), new RemoteFile("report.json", null, null, null, "y"));
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => new JobDownloader(source).DownloadAsync("0123456789abcdef0123", dir["out"], progress: null, CancellationToken.None));
        Assert.Contains("'report.json', but its blob does not exist", e.Message);
        Assert.False(Directory.Exists(dir["out"]));
    }
}
