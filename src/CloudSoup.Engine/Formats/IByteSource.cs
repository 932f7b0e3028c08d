using CloudSoup.Control.Errors;

namespace CloudSoup.Engine.Formats;

/// <summary>
/// Random access to the bytes of one file, wherever it lives (local disk, a ranged blob read).
/// Readers ask for exactly the ranges they need; nothing assumes the whole file fits in memory.
/// </summary>
public interface IByteSource : IAsyncDisposable
{
    /// <summary>Where the bytes come from, for messages ("checkpoints/demo/a.safetensors").</summary>
    string Name { get; }

    long Length { get; }

    /// <summary>A version stamp (blob ETag, file mtime+size) used for job ids and change detection.</summary>
    string Version { get; }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/>; throws if the range runs past the end.</summary>
    ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct);

    /// <summary>
    /// Fills <paramref name="buffer"/> from <paramref name="offset"/> without read-ahead: a small record far from the
    /// others (a zip member's local header), read concurrently with others. Sources that do not read ahead just read.
    /// </summary>
    ValueTask ReadUnbufferedAsync(long offset, Memory<byte> buffer, CancellationToken ct) => ReadAsync(offset, buffer, ct);
}
