using CloudSoup.Control.Errors;
using CloudSoup.Engine.Formats;
using CloudSoup.Control.Storage;
using CloudSoup.Worker.Storage;
using TorchSharp;

namespace CloudSoup.Tests.Service;

[Collection(AzuriteCollection.Name)]
public class BlobCheckpointStoreTests(AzuriteFixture azurite)
{
    [Fact]
    public async Task Reads_a_checkpoint_by_ranges_and_matches_the_uploaded_tensors()
    {
        var storage = await azurite.NewStorageAsync();
        var container = storage.Container(storage.Options.CheckpointsContainer);
        var big = torch.arange(0, 3_000_000, dtype: torch.float32);            // 12 MB: read in parallel chunks
        var model = TestBlobs.RandomModel(7);
        model["big"] = big;
        await container.UploadModelAsync("exp/a/model.safetensors", model);

        var store = new BlobCheckpointStore(storage.Blobs);
        // A folder reference resolves to model.safetensors inside it, as for local files.
        await using var ckpt = await Checkpoint.OpenAsync(store, $"{container.Name}/exp/a", CancellationToken.None);
        Assert.Equal(model.Keys.Order(), ckpt.TensorNames.Order());
        foreach (var (name, expected) in model)
        {
            using var actual = await ckpt.ReadTensorAsync(name, CancellationToken.None);
            Assert.True(expected.equal(actual).all().item<bool>(), $"tensor {name} differs");
        }
        Assert.StartsWith("\"", ckpt.Files.Single().Version);                    // the blob's ETag
    }

    [Fact]
    public async Task A_pt_checkpoint_on_blob_storage_reads_exactly_like_the_local_file()
    {
        // many_storages.pt: 48 storages, so 48 zip local headers read concurrently at open (TorchZipReader).
        string dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "pickle");
        var storage = await azurite.NewStorageAsync();
        var container = storage.Container(storage.Options.CheckpointsContainer);
        await container.GetBlobClient("exp/many.pt").UploadAsync(Path.Combine(dir, "many_storages.pt"));
        await using var local = await Checkpoint.OpenAsync(new CloudSoup.Engine.Storage.LocalCheckpointStore(dir), "many_storages.pt", CancellationToken.None);
        await using var remote = await Checkpoint.OpenAsync(new BlobCheckpointStore(storage.Blobs), $"{container.Name}/exp/many.pt", CancellationToken.None);
        Assert.Equal(local.TensorNames, remote.TensorNames);
        foreach (var name in local.TensorNames)
        {
            var (l, r) = (local.Entry(name), remote.Entry(name));
            Assert.Equal((l.DType, l.Offset, l.ByteLength), (r.DType, r.Offset, r.ByteLength));
            Assert.Equal(l.Shape, r.Shape);
            using var a = await local.ReadTensorAsync(name, CancellationToken.None);
            using var b = await remote.ReadTensorAsync(name, CancellationToken.None);
            Assert.Equal(a.dtype, b.dtype);
            Assert.True(a.equal(b).all().item<bool>(), $"tensor {name} differs");
        }
    }

    [Fact]
    public async Task Small_reads_are_coalesced_into_one_request()
    {
        var storage = await azurite.NewStorageAsync();
        var container = storage.Container(storage.Options.CheckpointsContainer);
        await container.UploadModelAsync("m.safetensors", TestBlobs.RandomModel(1));
        var store = new BlobCheckpointStore(storage.Blobs);
        await using var source = (BlobByteSource)await store.OpenAsync($"{container.Name}/m.safetensors", CancellationToken.None);
        var buffer = new byte[16];
        for (long offset = 0; offset + buffer.Length <= source.Length; offset += 64)
            await source.ReadAsync(offset, buffer, CancellationToken.None);
        Assert.Equal(1, source.Requests);
    }

    [Fact]
    public async Task A_blob_replaced_after_open_fails_with_InputChanged()
    {
        var storage = await azurite.NewStorageAsync();
        var container = storage.Container(storage.Options.CheckpointsContainer);
        await container.UploadModelAsync("m.safetensors", TestBlobs.RandomModel(1));
        var store = new BlobCheckpointStore(storage.Blobs);
        await using var source = await store.OpenAsync($"{container.Name}/m.safetensors", CancellationToken.None);
        await container.UploadModelAsync("m.safetensors", TestBlobs.RandomModel(2));
        var e = await Assert.ThrowsAsync<CloudSoupException>(async () => await source.ReadAsync(0, new byte[8], CancellationToken.None));
        Assert.Equal(ErrorKind.InputChanged, e.Kind);
        Assert.True(e.IsRetriable);
    }

    [Fact]
    public async Task Missing_blobs_and_bad_paths_are_MissingInput_naming_the_path()
    {
        var storage = await azurite.NewStorageAsync();
        var store = new BlobCheckpointStore(storage.Blobs);
        string path = $"{storage.Options.CheckpointsContainer}/nope/model.safetensors";
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => store.OpenAsync(path, CancellationToken.None));
        Assert.Equal(ErrorKind.MissingInput, e.Kind);
        Assert.Contains(path, e.Message);
        Assert.Null(await store.TryGetVersionAsync(path, CancellationToken.None));

        var folder = await Assert.ThrowsAsync<CloudSoupException>(() => Checkpoint.OpenAsync(store, $"{storage.Options.CheckpointsContainer}/nope", CancellationToken.None));
        Assert.Equal(ErrorKind.MissingInput, folder.Kind);
        Assert.Contains("not found", folder.Message);

        var bad = await Assert.ThrowsAsync<CloudSoupException>(() => store.OpenAsync("model.safetensors", CancellationToken.None));
        Assert.Contains("container/path", bad.Message);
    }
}
