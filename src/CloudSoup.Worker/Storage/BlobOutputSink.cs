using CloudSoup.Control.Jobs;
// A job's outputs under merged/<job-id>/. Files are uploaded as uncommitted blocks while the merge runs;
// CommitAsync commits each file's block list, report.json last, so a visible report.json means the whole
// output is there. A failed, aborted or killed job commits nothing, and the service garbage-collects
// uncommitted blocks (about a week later), so nothing half-written ever shows up under merged/.
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Storage;

using CloudSoup.Control.Storage;

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
        // report.json goes last: readers treat it as the marker that the output is complete.
        foreach (var file in _files.OrderBy(f => f.RelativePath == JobOutputs.ReportJson ? 1 : 0))
        {
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
