using CloudSoup.Engine.Formats;

using CloudSoup.Control.Errors;

namespace CloudSoup.Engine.Storage;

/// <summary>
/// Where model references point: the local file system for <c>cloudsoup merge</c>, Blob Storage in the
/// service ("container/path"). Paths use '/' separators.
/// </summary>
public interface ICheckpointStore
{
    /// <summary>Opens a file for ranged reads; throws a MissingInput error when it does not exist.</summary>
    Task<IByteSource> OpenAsync(string path, CancellationToken ct);

    /// <summary>The version stamp (ETag) of a file, or null when it does not exist.</summary>
    Task<string?> TryGetVersionAsync(string path, CancellationToken ct);

    /// <summary>Reads a small file whole (recipes, index JSON); throws a MissingInput error when absent.</summary>
    Task<byte[]> ReadAllAsync(string path, long maxBytes, CancellationToken ct);
}
