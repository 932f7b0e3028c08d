using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Storage;

using CloudSoup.Control.Storage;

namespace CloudSoup.Worker.Storage;

/// <summary>
/// Model references in the service are blob paths ("checkpoints/exp/model.safetensors"). Each file is pinned
/// to the ETag seen when it is opened; see <see cref="BlobByteSource"/>. With <paramref name="sources"/>, every read
/// outside the allowed input locations is refused before storage is asked (the worker's second check after the
/// recipe's; docs/security.md).
/// </summary>
public sealed class BlobCheckpointStore(BlobServiceClient blobs, InputSources? sources = null) : ICheckpointStore
{
    public async Task<IByteSource> OpenAsync(string path, CancellationToken ct)
    {
        var client = Client(path);
        var props = await PropertiesAsync(client, path, ct).ConfigureAwait(false);
        return new BlobByteSource(client, path, props.ContentLength, props.ETag);
    }

    public async Task<string?> TryGetVersionAsync(string path, CancellationToken ct)
    {
        if (!BlobPath.TryParse(path, out var p)) return null;
        RequireAllowed(path);
        try
        {
            var props = await blobs.GetBlobContainerClient(p.Container).GetBlobClient(p.Name).GetPropertiesAsync(cancellationToken: ct).ConfigureAwait(false);
            return props.Value.ETag.ToString();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
        catch (RequestFailedException e)
        {
            throw StorageErrors.Map(e, path);
        }
    }

    public async Task<byte[]> ReadAllAsync(string path, long maxBytes, CancellationToken ct)
    {
        var client = Client(path);
        var props = await PropertiesAsync(client, path, ct).ConfigureAwait(false);
        if (props.ContentLength > maxBytes)
            throw new CloudSoupException(ErrorKind.InvalidCheckpoint, $"{path}: {props.ContentLength} bytes is larger than the {maxBytes} allowed here");
        try
        {
            var content = await client.DownloadContentAsync(new BlobDownloadOptions { Conditions = new BlobRequestConditions { IfMatch = props.ETag } }, ct).ConfigureAwait(false);
            return content.Value.Content.ToArray();
        }
        catch (RequestFailedException e)
        {
            throw StorageErrors.Map(e, path);
        }
    }

    private void RequireAllowed(string path)
    {
        if (sources != null && !sources.AllowsAny(path))
            throw new CloudSoupException(ErrorKind.InvalidRecipe, $"'{path}' is not in a location this worker reads inputs from ({sources.Describe()})");
    }

    private BlobClient Client(string path)
    {
        var p = BlobPath.Parse(path);
        RequireAllowed(path);
        return blobs.GetBlobContainerClient(p.Container).GetBlobClient(p.Name);
    }

    private static async Task<BlobProperties> PropertiesAsync(BlobClient client, string path, CancellationToken ct)
    {
        try
        {
            return (await client.GetPropertiesAsync(cancellationToken: ct).ConfigureAwait(false)).Value;
        }
        catch (RequestFailedException e)
        {
            throw StorageErrors.Map(e, path);
        }
    }
}
