// Appends output tensors to a stream while the next tensor merges. A write is a copy into the page cache or into
// upload blocks, done by one thread; merging the next tensor meanwhile keeps the other core busy instead of
// waiting (bench/README.md, "The engine at the speed of its inputs"). At most one write is in flight, so the stream
// sees the same writes in the same order as before, and one extra output tensor is alive at a time.
using CloudSoup.Engine.Formats;
using TorchSharp;

namespace CloudSoup.Engine.Merging;

internal sealed class OverlappedTensorWriter(Stream stream, OutputBuffers? buffers = null) : IAsyncDisposable
{
    private Task<long>? _pending;
    private torch.Tensor? _writing;
    private long _recycleElements;

    /// <summary>
    /// Waits for the previous write, then starts writing <paramref name="tensor"/> (contiguous; this writer disposes it
    /// once written, or gives its memory back to the output buffers when <paramref name="recycleElements"/> is the
    /// length <see cref="OutputBuffers.TakeBack"/> returned). Returns the bytes the previous write wrote.
    /// </summary>
    public async Task<long> WriteAsync(torch.Tensor tensor, CancellationToken ct, long recycleElements = 0)
    {
        long previous;
        try
        {
            previous = await FlushAsync().ConfigureAwait(false);
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        _writing = tensor;
        _recycleElements = recycleElements;
        _pending = Task.Run(() => WriteBytesAsync(tensor, ct), ct);
        return previous;
    }

    /// <summary>Waits for the write in flight, if any, and frees its tensor; returns the bytes it wrote.</summary>
    public async Task<long> FlushAsync()
    {
        if (_pending is null) return 0;
        try
        {
            return await _pending.ConfigureAwait(false);
        }
        finally
        {
            _pending = null;
            if (_writing is not null && buffers is not null && _recycleElements > 0) buffers.Recycle(_writing, _recycleElements);
            else _writing?.Dispose();
            _writing = null;
            _recycleElements = 0;
        }
    }

    private async Task<long> WriteBytesAsync(torch.Tensor tensor, CancellationToken ct)
    {
        if (tensor.NumberOfElements == 0) return 0;
        using var native = new NativeMemory(tensor.bytes);
        await stream.WriteAsync(native.Memory, ct).ConfigureAwait(false);
        return native.Memory.Length;
    }

    /// <summary>Waits for a write in flight (its failure is the caller's own failure by then) and frees its tensor.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await FlushAsync().ConfigureAwait(false);
        }
        catch
        {
            // Only reached while an earlier failure is propagating; the tensor is freed either way.
        }
    }
}
