// `cloudsoup upload` (BlobUploader) against a real Azurite: bytes arrive intact, folders keep their relative
// paths, the manifest goes last so the intake starts the job from the upload alone, and bad targets fail first.
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Formats;
using CloudSoup.Control.Intake;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Storage;
using CloudSoup.Worker.Storage;
using CloudSoup.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSoup.Tests.Service;

[Collection(AzuriteCollection.Name)]
public class BlobUploaderTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Uploaded_checkpoints_and_manifest_start_one_job_and_arrive_byte_for_byte()
    {
        var storage = await azurite.NewStorageAsync();
        var o = storage.Options;
        using var dir = new TempDir();
        SafetensorsFiles.Write(dir["a.safetensors"], TestBlobs.RandomModel(1));
        SafetensorsFiles.Write(dir["b.safetensors"], TestBlobs.RandomModel(2));
        File.WriteAllText(dir["soup.yaml"], "merge_method: linear\nmodels: [{model: a.safetensors}, {model: b.safetensors}]\n");

        var uploader = new BlobUploader(storage);
        // Given first, the manifest is still uploaded last.
        var sources = new[] { dir["soup.yaml"], dir["a.safetensors"], dir["b.safetensors"] };
        Assert.Equal($"{o.CheckpointsContainer}/exp/soup.yaml", uploader.Plan(sources, $"{o.CheckpointsContainer}/exp/")[^1].Blob.ToString());
        var seen = new List<UploadedBlob>();
        var done = await uploader.UploadAsync(sources, $"{o.CheckpointsContainer}/exp/", new SyncProgress<UploadedBlob>(seen.Add), CancellationToken.None);
        Assert.Equal(3, done.Count);
        Assert.Equal(done, seen);
        foreach (var u in done)
        {
            var bytes = (await storage.Container(u.Blob.Container).GetBlobClient(u.Blob.Name).DownloadContentAsync()).Value.Content.ToArray();
            Assert.Equal(File.ReadAllBytes(u.LocalPath), bytes);
        }

        var jobs = new JobStore(storage.JobsTable);
        var intake = new BlobIntake(storage, new MergeSubmitter(storage, jobs, NullLogger<MergeSubmitter>.Instance), jobs, NullLogger<BlobIntake>.Instance);
        var results = await new BlobDropWatcher(storage, intake, NullLogger<BlobDropWatcher>.Instance).ScanOnceAsync(CancellationToken.None);
        Assert.Single(results, r => r.Action == IntakeAction.Submitted);
    }

    [Fact]
    public async Task A_folder_keeps_its_name_and_relative_paths()
    {
        var storage = await azurite.NewStorageAsync();
        var o = storage.Options;
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["sharded/sub"]);
        File.WriteAllText(dir["sharded/model.safetensors.index.json"], "{}");
        File.WriteAllBytes(dir["sharded/sub/x.bin"], [1, 2, 3]);
        var done = await new BlobUploader(storage).UploadAsync([dir["sharded"]], $"{o.CheckpointsContainer}/run7/", null, CancellationToken.None);
        Assert.Equal(new[] { $"{o.CheckpointsContainer}/run7/sharded/model.safetensors.index.json", $"{o.CheckpointsContainer}/run7/sharded/sub/x.bin" },
            done.Select(d => d.Blob.ToString()).Order(StringComparer.Ordinal));
        Assert.Equal(new byte[] { 1, 2, 3 }, (await storage.Container(o.CheckpointsContainer).GetBlobClient("run7/sharded/sub/x.bin").DownloadContentAsync()).Value.Content.ToArray());
        // One file to an explicit blob name.
        var single = await new BlobUploader(storage).UploadAsync([dir["sharded/sub/x.bin"]], $"{o.EvalContainer}/data/held-out.bin", null, CancellationToken.None);
        Assert.Equal($"{o.EvalContainer}/data/held-out.bin", Assert.Single(single).Blob.ToString());
    }

    [Theory]
    [InlineData("merged", "cannot upload to 'merged-")]
    [InlineData("one-blob", "end it with '/'")]
    [InlineData("missing", "local file or folder")]
    public async Task Bad_targets_and_missing_files_fail_before_anything_is_uploaded(string case_, string expected)
    {
        var storage = await azurite.NewStorageAsync();
        var o = storage.Options;
        using var dir = new TempDir();
        File.WriteAllText(dir["a.txt"], "a");
        File.WriteAllText(dir["b.txt"], "b");
        string[] sources = case_ == "missing" ? [dir["a.txt"], dir["nope.safetensors"]] : [dir["a.txt"], dir["b.txt"]];
        string destination = case_ switch
        {
            "merged" => $"{o.MergedContainer}/x/",
            "one-blob" => $"{o.CheckpointsContainer}/one-name.safetensors",
            _ => $"{o.CheckpointsContainer}/x/",
        };
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => new BlobUploader(storage).UploadAsync(sources, destination, null, CancellationToken.None));
        Assert.Contains(expected, e.Message);
        await foreach (var _ in storage.Container(storage.Options.CheckpointsContainer).GetBlobsAsync()) Assert.Fail("something was uploaded");
    }
}

/// <summary>IProgress that reports on the caller's thread (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
