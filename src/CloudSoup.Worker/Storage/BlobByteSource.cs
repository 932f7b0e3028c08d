// Ranged reads of one blob version. Every request carries If-Match with the ETag seen at open, so a
// checkpoint replaced mid-job fails with 412 (InputChanged) instead of mixing two versions.
// Small reads (headers, small tensors: under 1 MiB) go through one 4 MiB read-ahead window per blob, which
// turns hundreds of tiny requests into a few (except ReadUnbufferedAsync: isolated records read concurrently); larger reads go straight to the blob, split into 8 MiB chunks
// fetched in parallel. Memory stays bounded:
// one window per open blob plus the caller's own buffer.
using System.Buffers;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Formats;

using CloudSoup.Control.Storage;

namespace CloudSoup.Worker.Storage;

internal sealed class BlobByteSource(BlobClient blob, string name, long length, ETag etag) : IByteSource
{
    internal const int ReadAheadBytes = 4 << 20;
    internal const int DirectReadBytes = 1 << 20;
    internal const int ChunkBytes = 8 << 20;
    private const int MaxParallelChunks = 4;
    private const int StagingBytes = 256 << 10;

    private readonly SemaphoreSlim _windowLock = new(1, 1);
    private byte[]? _window;
    private long _windowStart;
    private int _windowLength;

    public string Name { get; } = name;
    public long Length { get; } = length;
    public string Version { get; } = etag.ToString();

    /// <summary>Number of HTTP range requests made so far (tests check that read-ahead coalesces).</summary>
    public int Requests => _requests;
    private int _requests;

    public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct)
    {
        if (offset < 0 || offset + buffer.Length > Length)
            throw CloudSoupException.Checkpoint(Name, $"read of {buffer.Length} bytes at {offset} runs past the end of the blob ({Length} bytes)");
        if (buffer.Length == 0) return;
        if (buffer.Length >= DirectReadBytes)
        {
            await ReadChunkedAsync(offset, buffer, ct).ConfigureAwait(false);
            return;
        }
        await _windowLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_window is null || offset < _windowStart || offset + buffer.Length > _windowStart + _windowLength)
            {
                _window ??= new byte[ReadAheadBytes];
                _windowStart = offset;
                _windowLength = (int)Math.Min(ReadAheadBytes, Length - offset);
                await ReadRangeAsync(offset, _window.AsMemory(0, _windowLength), ct).ConfigureAwait(false);
            }
            _window.AsMemory((int)(offset - _windowStart), buffer.Length).CopyTo(buffer);
        }
        catch
        {
            _windowLength = 0; // a failed fill leaves no stale bytes behind
            throw;
        }
        finally
        {
            _windowLock.Release();
        }
    }

    /// <summary>
    /// Exactly the requested range, bypassing the read-ahead window: many small records far apart (a .pt's local
    /// headers, one per storage) would otherwise each fill, and wait for, the one 4 MiB window in turn.
    /// </summary>
    public async ValueTask ReadUnbufferedAsync(long offset, Memory<byte> buffer, CancellationToken ct)
    {
        if (offset < 0 || offset + buffer.Length > Length)
            throw CloudSoupException.Checkpoint(Name, $"read of {buffer.Length} bytes at {offset} runs past the end of the blob ({Length} bytes)");
        if (buffer.Length == 0) return;
        if (buffer.Length >= DirectReadBytes) await ReadChunkedAsync(offset, buffer, ct).ConfigureAwait(false);
        else await ReadRangeAsync(offset, buffer, ct).ConfigureAwait(false);
    }

    private async Task ReadChunkedAsync(long offset, Memory<byte> buffer, CancellationToken ct)
    {
        int chunks = (int)((buffer.Length + (long)ChunkBytes - 1) / ChunkBytes);
        await Parallel.ForEachAsync(Enumerable.Range(0, chunks), new ParallelOptions { MaxDegreeOfParallelism = MaxParallelChunks, CancellationToken = ct },
            async (i, token) =>
            {
                int start = i * ChunkBytes;
                int len = Math.Min(ChunkBytes, buffer.Length - start);
                await ReadRangeAsync(offset + start, buffer.Slice(start, len), token).ConfigureAwait(false);
            }).ConfigureAwait(false);
    }

    private async Task ReadRangeAsync(long offset, Memory<byte> destination, CancellationToken ct)
    {
        Interlocked.Increment(ref _requests);
        try
        {
            var response = await blob.DownloadStreamingAsync(new BlobDownloadOptions
            {
                Range = new HttpRange(offset, destination.Length),
                Conditions = new BlobRequestConditions { IfMatch = etag },
            }, ct).ConfigureAwait(false);
            await using var content = response.Value.Content;
            // Through a small array: the SDK's stream only reads into arrays, and Stream's Memory overload would
            // rent a pooled array as large as the whole chunk for every read (the destination is native memory).
            var staging = ArrayPool<byte>.Shared.Rent(Math.Min(destination.Length, StagingBytes));
            try
            {
                int done = 0;
                while (done < destination.Length)
                {
                    int n = await content.ReadAsync(staging.AsMemory(0, Math.Min(staging.Length, destination.Length - done)), ct).ConfigureAwait(false);
                    if (n == 0) throw CloudSoupException.Checkpoint(Name, $"blob ended early: expected {destination.Length} bytes at {offset}, got {done}");
                    staging.AsMemory(0, n).CopyTo(destination[done..]);
                    done += n;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(staging);
            }
        }
        catch (RequestFailedException e)
        {
            throw StorageErrors.Map(e, Name);
        }
        catch (IOException e)
        {
            throw StorageErrors.Transient(e, Name);
        }
    }

    public ValueTask DisposeAsync()
    {
        _window = null;
        _windowLock.Dispose();
        return ValueTask.CompletedTask;
    }
}
