using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Storage;

namespace CloudSoup.Tests.Service;

/// <summary>
/// A real store whose OpenAsync waits at a gate, so a test can act while a job is mid-run (kill the worker,
/// watch the message stay hidden). Reads still go to real blob storage.
/// </summary>
public sealed class GatedCheckpointStore(ICheckpointStore inner) : ICheckpointStore
{
    public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async Task<IByteSource> OpenAsync(string path, CancellationToken ct)
    {
        Entered.TrySetResult();
        await Release.Task.WaitAsync(ct);
        return await inner.OpenAsync(path, ct);
    }

    public Task<string?> TryGetVersionAsync(string path, CancellationToken ct) => inner.TryGetVersionAsync(path, ct);
    public Task<byte[]> ReadAllAsync(string path, long maxBytes, CancellationToken ct) => inner.ReadAllAsync(path, maxBytes, ct);
}

/// <summary>A real store that throws the exception <paramref name="fault"/> returns for the n-th ranged read (1-based, across all files).</summary>
public sealed class FaultyCheckpointStore(ICheckpointStore inner, Func<int, Exception?> fault) : ICheckpointStore
{
    private int _reads;

    private Exception? Next() => fault(Interlocked.Increment(ref _reads));

    public async Task<IByteSource> OpenAsync(string path, CancellationToken ct) => new Source(await inner.OpenAsync(path, ct), this);
    public Task<string?> TryGetVersionAsync(string path, CancellationToken ct) => inner.TryGetVersionAsync(path, ct);
    public Task<byte[]> ReadAllAsync(string path, long maxBytes, CancellationToken ct) => inner.ReadAllAsync(path, maxBytes, ct);

    private sealed class Source(IByteSource inner, FaultyCheckpointStore owner) : IByteSource
    {
        public string Name => inner.Name;
        public long Length => inner.Length;
        public string Version => inner.Version;

        public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct)
        {
            if (owner.Next() is { } e) throw e;
            return inner.ReadAsync(offset, buffer, ct);
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
