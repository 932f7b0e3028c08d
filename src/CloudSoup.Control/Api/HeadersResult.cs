using Microsoft.AspNetCore.Http;

namespace CloudSoup.Control.Api;

/// <summary>Another result with response headers set first (a 416 problem's Content-Range, a 304's ETag).</summary>
public sealed class HeadersResult(IResult inner, Action<IHeaderDictionary> headers) : IResult
{
    public Task ExecuteAsync(HttpContext httpContext)
    {
        headers(httpContext.Response.Headers);
        return inner.ExecuteAsync(httpContext);
    }
}
