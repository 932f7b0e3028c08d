// One attempt's outputs under merged/<job-id>/<attempt>/ (the prefix it is given). Files are uploaded as
// uncommitted blocks while the merge runs; CommitAsync commits each file's block list (report.json last). Committing
// several blobs is not atomic: a worker killed in the middle leaves some files of its attempt committed. That is
// why every attempt has its own folder and readers find outputs only through the job record, which the worker
// updates after CommitAsync returned (JobStore.MarkSucceededAsync): a folder the record does not name is never a
// result, and AttemptSweeper deletes it. A failed or aborted attempt commits nothing; uncommitted blocks are
// discarded by the service about a week later.
using Azure;
using CloudSoup.Control.Jobs;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Storage;

using CloudSoup.Control.Storage;
using CloudSoup.Worker.Diagnostics;

namespace CloudSoup.Worker.Storage;

public sealed class BlobOutputSink(BlobContainerClient container, string prefix, int blockSize = BlockStagingStream.DefaultBlockSize) : IOutputSink
{
    private readonly List<BlockStagingStream> _files = [];
    private readonly string _nonce = Guid.NewGuid().ToString("N");
    private bool _done;

    public Task<Stream> CreateAsync(string relativePath, CancellationToken ct)
    {
        if (_done) throw new InvalidOperationException("the output has already been committed or aborted");
        if (string.IsNullOrEmpty(relativePath) || relativePath.StartsWith('/') || relativePath.Contains('\\')
            || relativePath.Split('/').Any(s => s is "" or "." or ".."))
            throw new ArgumentException($"output path '{relativePath}' is not a plain relative path");
        if (_files.Any(f => f.RelativePath == relativePath))
            throw new InvalidOperationException($"output '{relativePath}' is written twice");
        var stream = new BlockStagingStream(container.GetBlockBlobClient($"{prefix}/{relativePath}"), relativePath, _nonce, blockSize, ct);
        _files.Add(stream);
        return Task.FromResult<Stream>(stream);
    }

    public async Task CommitAsync(CancellationToken ct)
    {
        if (_done) throw new InvalidOperationException("the output has already been committed or aborted");
        if (_files.FirstOrDefault(f => !f.Closed) is { } open) throw new InvalidOperationException($"output '{open.RelativePath}' is still open");
        if (_files.FirstOrDefault(f => f.Failure != null) is { } failed) throw failed.Failure!;
        // report.json last, so that within a folder it still marks a complete attempt for anyone looking by hand.
        int committed = 0;
        foreach (var file in _files.OrderBy(f => f.RelativePath == JobOutputs.ReportJson ? 1 : 0))
        {
            await TestHold.AtAsync(TestHold.CommitPoint(committed++)).ConfigureAwait(false);
            try
            {
                await file.Blob.CommitBlockListAsync(file.BlockIds, new CommitBlockListOptions
                {
                    HttpHeaders = new BlobHttpHeaders { ContentType = JobOutputs.ContentType(file.RelativePath) },
                }, ct).ConfigureAwait(false);
            }
            catch (RequestFailedException e)
            {
                throw StorageErrors.Transient(e, Locate(file.RelativePath));
            }
        }
        await TestHold.AtAsync(TestHold.CommitPoint(committed)).ConfigureAwait(false);
        _done = true;
    }

    public Task AbortAsync(CancellationToken ct)
    {
        _done = true;
        foreach (var f in _files) f.Aborted = true;
        return Task.CompletedTask;
    }

    public string Locate(string relativePath) => $"{container.Name}/{prefix}/{relativePath}";

    public async ValueTask DisposeAsync()
    {
        if (!_done) await AbortAsync(CancellationToken.None).ConfigureAwait(false);
        foreach (var f in _files) await f.DisposeAsync().ConfigureAwait(false);
    }
}
