using CloudSoup.Engine.Formats;
using CloudSoup.Control.Errors;

namespace CloudSoup.Engine.Storage;

/// <summary>Local files. Relative references are resolved against <see cref="BaseDirectory"/>.</summary>
public sealed class LocalCheckpointStore(string baseDirectory) : ICheckpointStore
{
    public string BaseDirectory { get; } = Path.GetFullPath(baseDirectory);

    public string Resolve(string path) => Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(BaseDirectory, path));

    public Task<IByteSource> OpenAsync(string path, CancellationToken ct) =>
        Task.FromResult<IByteSource>(FileByteSource.Open(Resolve(path)));

    public Task<string?> TryGetVersionAsync(string path, CancellationToken ct)
    {
        var info = new FileInfo(Resolve(path));
        return Task.FromResult(info.Exists ? $"{info.Length:x}-{info.LastWriteTimeUtc.Ticks:x}" : null);
    }

    public async Task<byte[]> ReadAllAsync(string path, long maxBytes, CancellationToken ct)
    {
        var full = Resolve(path);
        var info = new FileInfo(full);
        if (!info.Exists) throw CloudSoupException.Missing($"file '{full}'");
        if (info.Length > maxBytes) throw new CloudSoupException(ErrorKind.InvalidCheckpoint, $"{full}: {info.Length} bytes is larger than the {maxBytes} allowed here");
        return await File.ReadAllBytesAsync(full, ct).ConfigureAwait(false);
    }
}
