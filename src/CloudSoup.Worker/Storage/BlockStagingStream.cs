// A write-only stream that uploads a blob as staged blocks (Put Block) and never commits: the blob stays
// invisible until BlobOutputSink commits every file's block list (Put Block List). Block ids are base64 of
// "<nonce>-<index>", all the same length as the service requires; the nonce keeps two attempts of one job
// from ever sharing a block id. Up to MaxInFlight blocks upload while the merge keeps producing the next
// one, so memory stays at (MaxInFlight + 1) × block size: the stream recycles its own buffers (the shared
// ArrayPool keeps returned buffers per thread, and uploads finish on many threads, so it grew with the job).
using System.Collections.Concurrent;
using System.Text;
using Azure;
using Azure.Storage.Blobs.Specialized;

using CloudSoup.Control.Storage;

namespace CloudSoup.Worker.Storage;

internal sealed class BlockStagingStream : Stream
{
    public const int DefaultBlockSize = 8 << 20;
    private const int MaxInFlight = 3;

    private readonly BlockBlobClient _blob;
    private readonly string _nonce;
    private readonly int _blockSize;
    private readonly CancellationToken _ct;
    private readonly List<string> _blockIds = [];
    private readonly List<Task> _inFlight = [];
    private readonly ConcurrentStack<byte[]> _spare = new();
    private byte[]? _buffer;
    private int _filled;
    private long _written;

    public BlockStagingStream(BlockBlobClient blob, string relativePath, string nonce, int blockSize, CancellationToken ct)
    {
        _blob = blob;
        RelativePath = relativePath;
        _nonce = nonce;
        _blockSize = blockSize;
        _ct = ct;
    }

    public string RelativePath { get; }
    public BlockBlobClient Blob => _blob;
    public IReadOnlyList<string> BlockIds => _blockIds;
    public bool Closed { get; private set; }

    /// <summary>Set when staging failed (also when it failed while closing, where throwing would hide the original error).</summary>
    public Exception? Failure { get; private set; }

    /// <summary>Set by the sink on abort: closing then stages nothing more.</summary>
    public bool Aborted { get; set; }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => !Closed;
    public override long Length => _written;
    public override long Position { get => _written; set => throw new NotSupportedException(); }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        EnsureWritable();
        while (!source.IsEmpty)
        {
            _buffer ??= _spare.TryPop(out var spare) ? spare : GC.AllocateUninitializedArray<byte>(_blockSize);
            int n = Math.Min(source.Length, _blockSize - _filled);
            source[..n].CopyTo(_buffer.AsMemory(_filled));
            _filled += n;
            _written += n;
            source = source[n..];
            if (_filled == _blockSize) await StageAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) =>
        WriteAsync(buffer.AsMemory(offset, count), _ct).AsTask().GetAwaiter().GetResult();

    public override void Flush() { }                 // blocks are staged when full; nothing is visible before commit anyway
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <summary>Hands the full buffer to an upload task; waits only when MaxInFlight uploads are already running.</summary>
    private async Task StageAsync(CancellationToken ct)
    {
        await ReapAsync(waitForOne: _inFlight.Count >= MaxInFlight).ConfigureAwait(false);
        string id = Convert.ToBase64String(Encoding.ASCII.GetBytes($"{_nonce}-{_blockIds.Count:D6}"));
        _blockIds.Add(id);
        var buffer = _buffer!;
        int length = _filled;
        _buffer = null;
        _filled = 0;
        _inFlight.Add(UploadAsync(id, buffer, length, ct));
    }

    private async Task UploadAsync(string id, byte[] buffer, int length, CancellationToken ct)
    {
        try
        {
            using var block = new MemoryStream(buffer, 0, length, writable: false);
            await _blob.StageBlockAsync(id, block, cancellationToken: ct).ConfigureAwait(false);
        }
        catch (RequestFailedException e)
        {
            throw StorageErrors.Transient(e, $"{_blob.BlobContainerName}/{_blob.Name}");
        }
        finally
        {
            _spare.Push(buffer);
        }
    }

    /// <summary>Drops finished uploads (optionally waiting for one) and surfaces the first failure.</summary>
    private async Task ReapAsync(bool waitForOne)
    {
        if (waitForOne && _inFlight.Count > 0) await Task.WhenAny(_inFlight).ConfigureAwait(false);
        foreach (var done in _inFlight.Where(t => t.IsCompleted).ToList())
        {
            _inFlight.Remove(done);
            if (done.Exception?.InnerException is { } e) Failure ??= e;
            else if (done.IsCanceled) Failure ??= new OperationCanceledException("block upload was cancelled");
        }
        if (Failure != null) throw Failure;
    }

    private void EnsureWritable()
    {
        if (Closed) throw new ObjectDisposedException(nameof(BlockStagingStream));
        if (Failure != null) throw Failure;
    }

    public override async ValueTask DisposeAsync()
    {
        if (Closed) return;
        Closed = true;
        try
        {
            if (!Aborted && Failure is null && _filled > 0) await StageAsync(_ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Failure ??= e;  // reported by CommitAsync; throwing here would hide the error that ended the writing
        }
        try
        {
            await Task.WhenAll(_inFlight).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Failure ??= e;
        }
        _inFlight.Clear();
        _buffer = null;
        _spare.Clear();
        GC.SuppressFinalize(this);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) DisposeAsync().AsTask().GetAwaiter().GetResult();
        base.Dispose(disposing);
    }
}
