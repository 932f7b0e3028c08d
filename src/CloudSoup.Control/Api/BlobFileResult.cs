// One output file as the answer to GET /api/merges/{id}/files/{name}: the blob's bytes copied from a ranged blob
// download straight to the response, never held whole in memory (a shard may be many gigabytes). The download was
// started by the handler, so a blob that vanished or changed is still answered with a problem, not a broken body.
using System.Globalization;
using Azure.Storage.Blobs.Models;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace CloudSoup.Control.Api;

public sealed class BlobFileResult(StoredFile file, ByteRange range, BlobDownloadStreamingResult download) : IResult
{
    private const int CopyBufferBytes = 1 << 20;

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        using var owned = download;
        var response = httpContext.Response;
        response.StatusCode = range.Kind == ByteRangeKind.Partial ? StatusCodes.Status206PartialContent : StatusCodes.Status200OK;
        response.ContentType = JobOutputs.ContentType(file.Name);
        response.ContentLength = range.Length;
        WriteValidators(response.Headers, file);
        if (range.Kind == ByteRangeKind.Partial) response.Headers.ContentRange = range.ContentRange(file.Size);
        var disposition = new ContentDispositionHeaderValue("attachment");
        disposition.SetHttpFileName(file.Name[(file.Name.LastIndexOf('/') + 1)..]);
        response.Headers.ContentDisposition = disposition.ToString();
        await download.Content.CopyToAsync(response.Body, CopyBufferBytes, httpContext.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>The headers every answer about the file carries, 304 and 416 included: ETag, Last-Modified, Accept-Ranges.</summary>
    public static void WriteValidators(IHeaderDictionary headers, StoredFile file)
    {
        headers.ETag = file.ETag.ToString("H");
        headers.LastModified = file.LastModified.ToUniversalTime().ToString("R", CultureInfo.InvariantCulture);
        headers.AcceptRanges = "bytes";
    }
}
