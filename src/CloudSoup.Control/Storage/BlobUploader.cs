// Uploads local checkpoints, recipes and data into the service's storage — the "drop" a user makes, for
// machines without the az CLI (and for Azurite, which has no portal). Files are streamed, never loaded whole.
// A folder is uploaded with its relative paths (an HF-sharded checkpoint stays a folder); a drop manifest
// (soup.yaml) in it goes last, so the intake sees the manifest after the checkpoints it lists, and a recipe in
// recipes/ is only uploaded once everything else is. Only the service's containers are accepted as targets.
using Azure.Storage.Blobs.Models;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Intake;

namespace CloudSoup.Control.Storage;

public sealed record UploadedBlob(string LocalPath, BlobPath Blob, long Bytes);

public sealed class BlobUploader(StorageClients clients)
{
    /// <summary>
    /// The uploads <paramref name="sources"/> (files or folders) become under <paramref name="destination"/>
    /// ("container/prefix/" or, for a single file, "container/name"), in upload order. Checks everything first.
    /// </summary>
    public IReadOnlyList<(string LocalPath, BlobPath Blob)> Plan(IReadOnlyList<string> sources, string destination)
    {
        if (sources.Count == 0) throw new CloudSoupException(ErrorKind.MissingInput, "nothing to upload: give at least one file or folder");
        string dest = destination.Trim();
        int slash = dest.IndexOf('/');
        string container = slash < 0 ? dest : dest[..slash];
        string prefix = slash < 0 ? "" : dest[(slash + 1)..];
        var allowed = new[] { clients.Options.CheckpointsContainer, clients.Options.RecipesContainer, clients.Options.EvalContainer };
        if (!allowed.Contains(container))
            throw new CloudSoupException(ErrorKind.InvalidRecipe, $"cannot upload to '{container}': the destination must start with one of the service's input containers ({string.Join(", ", allowed)}), e.g. {clients.Options.CheckpointsContainer}/my-experiment/");
        bool intoFolder = prefix.Length == 0 || prefix.EndsWith('/');
        var files = new List<(string Local, string Relative)>();
        foreach (var source in sources)
        {
            if (File.Exists(source)) files.Add((Path.GetFullPath(source), Path.GetFileName(source)));
            else if (Directory.Exists(source))
            {
                string root = Path.GetFullPath(source);
                string top = Path.GetFileName(root.TrimEnd(Path.DirectorySeparatorChar));
                foreach (var f in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                    files.Add((f, top + "/" + Path.GetRelativePath(root, f).Replace(Path.DirectorySeparatorChar, '/')));
            }
            else throw CloudSoupException.Missing($"local file or folder '{source}'");
        }
        if (files.Count == 0) throw new CloudSoupException(ErrorKind.MissingInput, "nothing to upload: the folders are empty");
        if (!intoFolder && (files.Count > 1 || sources.Any(Directory.Exists)))
            throw new CloudSoupException(ErrorKind.InvalidRecipe, $"'{destination}' names one blob but {files.Count} files would go there; end it with '/' to upload into a folder");
        var plan = files.Select(f =>
        {
            string name = intoFolder ? prefix + f.Relative : prefix;
            return BlobPath.TryParse($"{container}/{name}", out var blob) ? (f.Local, blob)
                : throw new CloudSoupException(ErrorKind.InvalidRecipe, $"'{container}/{name}' is not a valid blob path");
        }).ToList();
        var duplicate = plan.GroupBy(p => p.blob).FirstOrDefault(g => g.Count() > 1);
        if (duplicate != null) throw new CloudSoupException(ErrorKind.InvalidRecipe, $"two files would both become {duplicate.Key}: {string.Join(" and ", duplicate.Select(d => d.Local))}");
        // Manifests and recipes trigger jobs: they go after the files they refer to.
        return plan.OrderBy(p => IsTrigger(p.blob) ? 1 : 0).ToList();
    }

    private bool IsTrigger(BlobPath blob) =>
        blob.Container == clients.Options.RecipesContainer || blob.Name.EndsWith("/" + BlobIntake.SoupFileName, StringComparison.Ordinal) || blob.Name == BlobIntake.SoupFileName;

    /// <summary>Uploads in <see cref="Plan"/>'s order (overwriting), reporting each blob when it is done.</summary>
    public Task<IReadOnlyList<UploadedBlob>> UploadAsync(IReadOnlyList<string> sources, string destination, IProgress<UploadedBlob>? progress, CancellationToken ct) =>
        UploadAsync(Plan(sources, destination), progress, ct);

    /// <summary>Uploads a plan made by <see cref="Plan"/>, in its order (overwriting), reporting each blob when it is done.</summary>
    public async Task<IReadOnlyList<UploadedBlob>> UploadAsync(IReadOnlyList<(string LocalPath, BlobPath Blob)> plan, IProgress<UploadedBlob>? progress, CancellationToken ct)
    {
        var done = new List<UploadedBlob>();
        foreach (var container in plan.Select(p => p.Blob.Container).Distinct())
            await clients.Container(container).CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false);
        foreach (var (local, blob) in plan)
        {
            long bytes;
            await using (var file = File.OpenRead(local))
            {
                bytes = file.Length;
                await clients.Container(blob.Container).GetBlobClient(blob.Name).UploadAsync(file, new BlobUploadOptions
                {
                    TransferOptions = new Azure.Storage.StorageTransferOptions { MaximumConcurrency = 4, MaximumTransferSize = 8 << 20, InitialTransferSize = 8 << 20 },
                }, ct).ConfigureAwait(false);
            }
            var item = new UploadedBlob(local, blob, bytes);
            done.Add(item);
            progress?.Report(item);
        }
        return done;
    }
}
