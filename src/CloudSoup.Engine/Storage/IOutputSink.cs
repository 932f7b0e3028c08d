namespace CloudSoup.Engine.Storage;

/// <summary>
/// Where a job's outputs go. Everything written stays invisible until <see cref="CommitAsync"/>;
/// <see cref="AbortAsync"/> (or disposing without commit) leaves nothing behind that looks like a result.
/// </summary>
public interface IOutputSink : IAsyncDisposable
{
    /// <summary>Opens a new output file for sequential writes. Dispose the stream when done.</summary>
    Task<Stream> CreateAsync(string relativePath, CancellationToken ct);

    /// <summary>Makes every file written so far visible.</summary>
    Task CommitAsync(CancellationToken ct);

    /// <summary>Throws away everything written so far.</summary>
    Task AbortAsync(CancellationToken ct);

    /// <summary>Where a committed output can be found, for reports and status ("merged/ID/ATTEMPT/model.safetensors", or a local path).</summary>
    string Locate(string relativePath);
}

public static class OutputSinkExtensions
{
    public static async Task WriteAllAsync(this IOutputSink sink, string relativePath, ReadOnlyMemory<byte> bytes, CancellationToken ct)
    {
        await using var s = await sink.CreateAsync(relativePath, ct).ConfigureAwait(false);
        await s.WriteAsync(bytes, ct).ConfigureAwait(false);
    }
}
