using CloudSoup.Control.Errors;

namespace CloudSoup.Engine.Formats;

/// <summary>A local file opened for positional reads (no shared file pointer, safe for parallel reads).</summary>
public sealed class FileByteSource : IByteSource
{
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _handle;

    private FileByteSource(string path, Microsoft.Win32.SafeHandles.SafeFileHandle handle, long length, string version)
    {
        Name = path;
        _handle = handle;
        Length = length;
        Version = version;
    }

    public string Name { get; }
    public long Length { get; }
    public string Version { get; }

    /// <summary>
    /// A path that opens this same file (the inode this source opened, even if the name was since replaced), for
    /// memory-mapping it (MappedTensors); null where there is none (not Linux).
    /// </summary>
    public string? MapPath => OperatingSystem.IsLinux() && !_handle.IsClosed ? $"/proc/self/fd/{_handle.DangerousGetHandle()}" : null;

    public static FileByteSource Open(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw CloudSoupException.Missing($"file '{path}'");
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        return new FileByteSource(path, handle, info.Length, $"{info.Length:x}-{info.LastWriteTimeUtc.Ticks:x}");
    }

    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct)
    {
        if (offset < 0 || offset + buffer.Length > Length)
            throw CloudSoupException.Checkpoint(Name, $"read of {buffer.Length} bytes at {offset} runs past the end of the file ({Length} bytes)");
        int done = 0;
        while (done < buffer.Length)
        {
            int n = RandomAccess.Read(_handle, buffer.Span[done..], offset + done);
            if (n <= 0) throw CloudSoupException.Checkpoint(Name, "file ended early while reading");
            done += n;
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _handle.Dispose();
        return ValueTask.CompletedTask;
    }
}
