// The version of every input a job reads, resolved at submit time and hashed into the job id. A reference
// is a blob (its ETag) or a folder holding a checkpoint (model.safetensors, or an index plus shards):
// then the names and ETags of its weight, JSON and tokenizer files (ModelFolderFiles), hashed. A reference that does not exist gets
// the marker "missing", so the job is still created and the worker fails it with a readable reason.
using System.Security.Cryptography;
using System.Text;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Storage;

namespace CloudSoup.Control.Intake;

public sealed class InputVersions(BlobServiceClient blobs)
{
    /// <summary>
    /// Lookups in flight at once. A recipe names at most RecipeLimits.MaxModels models (plus a few auxiliary files),
    /// so resolving one costs a bounded number of requests, made a few at a time rather than one after another.
    /// </summary>
    public const int MaxConcurrentLookups = 16;

    public async Task<IReadOnlyDictionary<string, string>> ResolveAsync(IEnumerable<string> references, CancellationToken ct)
    {
        var distinct = references.Distinct(StringComparer.Ordinal).ToList();
        var found = new string[distinct.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, distinct.Count), new ParallelOptions { MaxDegreeOfParallelism = MaxConcurrentLookups, CancellationToken = ct },
            async (i, token) => found[i] = await VersionOfAsync(distinct[i], token).ConfigureAwait(false)).ConfigureAwait(false);
        var versions = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < distinct.Count; i++) versions[distinct[i]] = found[i];
        return versions;
    }

    public async Task<string> VersionOfAsync(string reference, CancellationToken ct)
    {
        if (!BlobPath.TryParse(reference.TrimEnd('/'), out var path)) return JobIds.MissingVersion;
        var container = blobs.GetBlobContainerClient(path.Container);
        try
        {
            var props = await container.GetBlobClient(path.Name).GetPropertiesAsync(cancellationToken: ct).ConfigureAwait(false);
            return props.Value.ETag.ToString();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            // not a single blob: maybe a folder
        }
        catch (RequestFailedException e)
        {
            throw StorageErrors.Transient(e, reference);
        }
        try
        {
            var files = new List<string>();
            await foreach (var item in container.GetBlobsAsync(new GetBlobsOptions { Prefix = path.Name + "/" }, ct).ConfigureAwait(false))
                if (IsModelFile(item.Name)) files.Add($"{item.Name}\t{item.Properties.ETag}");
            if (files.Count == 0) return JobIds.MissingVersion;
            files.Sort(StringComparer.Ordinal);
            return "folder:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', files))))[..16];
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return JobIds.MissingVersion; // the container does not exist
        }
        catch (RequestFailedException e)
        {
            throw StorageErrors.Transient(e, reference);
        }
    }

    /// <summary>The files of a model folder a job reads: weights (safetensors or PyTorch), index and config JSON, and the tokenizer's files.</summary>
    private static bool IsModelFile(string name) =>
        name.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
        || name.EndsWith(".bin", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".pt", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".pth", StringComparison.OrdinalIgnoreCase)
        || ModelFolderFiles.All.Contains(name[(name.LastIndexOf('/') + 1)..]);
}
