using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using CloudSoup.Engine.Storage;
using CloudSoup.Control.Storage;
using CloudSoup.Worker.Storage;

namespace CloudSoup.Tests.Service;

[Collection(AzuriteCollection.Name)]
public class BlobOutputSinkTests(AzuriteFixture azurite)
{
    private static byte[] Bytes(int n, int seed) { var b = new byte[n]; new Random(seed).NextBytes(b); return b; }

    [Fact]
    public async Task Files_stay_invisible_until_commit_then_appear_whole_with_report_last()
    {
        var storage = await azurite.NewStorageAsync();
        var merged = storage.Container(storage.Options.MergedContainer);
        var model = Bytes(10_000, 1);
        await using var sink = new BlobOutputSink(merged, "job1", blockSize: 1024);
        await using (var s = await sink.CreateAsync("model.safetensors", CancellationToken.None))
        {
            // odd-sized writes across block boundaries
            for (int at = 0; at < model.Length; at += 777)
                await s.WriteAsync(model.AsMemory(at, Math.Min(777, model.Length - at)));
        }
        await sink.WriteAllAsync("report.json", "{}"u8.ToArray(), CancellationToken.None);
        await sink.WriteAllAsync("empty.txt", ReadOnlyMemory<byte>.Empty, CancellationToken.None);

        Assert.Empty(await merged.ListAsync("job1/"));
        await sink.CommitAsync(CancellationToken.None);

        Assert.Equal(new[] { "job1/empty.txt", "job1/model.safetensors", "job1/report.json" }, (await merged.ListAsync("job1/")).Order());
        var downloaded = (await merged.GetBlobClient("job1/model.safetensors").DownloadContentAsync()).Value.Content.ToArray();
        Assert.Equal(model, downloaded);
        var blocks = await merged.GetBlockBlobClient("job1/model.safetensors").GetBlockListAsync();
        Assert.Equal(10, blocks.Value.CommittedBlocks.Count());                    // 10,000 bytes in 1 KiB blocks
        var reportTime = (await merged.GetBlobClient("job1/report.json").GetPropertiesAsync()).Value.LastModified;
        var modelTime = (await merged.GetBlobClient("job1/model.safetensors").GetPropertiesAsync()).Value.LastModified;
        Assert.True(reportTime >= modelTime);
        Assert.Equal("merged-", sink.Locate("model.safetensors")[..7]);
        Assert.EndsWith("/job1/model.safetensors", sink.Locate("model.safetensors"));
    }

    [Fact]
    public async Task Abort_leaves_nothing_visible_even_after_blocks_were_staged()
    {
        var storage = await azurite.NewStorageAsync();
        var merged = storage.Container(storage.Options.MergedContainer);
        var sink = new BlobOutputSink(merged, "job2", blockSize: 1024);
        await using (var s = await sink.CreateAsync("model.safetensors", CancellationToken.None))
            await s.WriteAsync(Bytes(5000, 2));
        var staged = await merged.GetBlockBlobClient("job2/model.safetensors").GetBlockListAsync(BlockListTypes.Uncommitted);
        Assert.Equal(5, staged.Value.UncommittedBlocks.Count());                   // the bytes did go up
        await sink.AbortAsync(CancellationToken.None);
        await sink.DisposeAsync();
        Assert.Empty(await merged.ListAsync("job2/"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => sink.CommitAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Paths_that_escape_the_job_folder_are_refused()
    {
        var storage = await azurite.NewStorageAsync();
        await using var sink = new BlobOutputSink(storage.Container(storage.Options.MergedContainer), "job3");
        await Assert.ThrowsAsync<ArgumentException>(() => sink.CreateAsync("../other/x", CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentException>(() => sink.CreateAsync("/abs", CancellationToken.None));
    }
}
