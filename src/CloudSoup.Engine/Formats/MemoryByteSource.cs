using CloudSoup.Control.Errors;

namespace CloudSoup.Engine.Formats;

/// <summary>Bytes already in memory (e.g. a Fisher computed inside a job), read like any checkpoint file.</summary>
public sealed class MemoryByteSource(string name, byte[] bytes) : IByteSource
{
    public string Name { get; } = name;
    public long Length => bytes.LongLength;
    public string Version { get; } = $"mem-{bytes.LongLength:x}";

    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct)
    {
        if (offset < 0 || offset + buffer.Length > bytes.LongLength)
            throw CloudSoupException.Checkpoint(Name, $"read of {buffer.Length} bytes at {offset} runs past the end ({bytes.LongLength} bytes)");
        bytes.AsMemory((int)offset, buffer.Length).CopyTo(buffer);
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
