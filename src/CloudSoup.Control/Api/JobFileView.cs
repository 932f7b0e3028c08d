namespace CloudSoup.Control.Api;

/// <summary>
/// One file of a succeeded job in the job view: its name relative to the committed folder, its size in bytes (null
/// when the record names a blob that is gone), its MD5 (base64) when the blob service keeps one, and the route that
/// streams it, and its ETag (the value an If-Range header resuming a download sends back).
/// </summary>
public sealed record JobFileView(string Name, long? Size, string? Md5, string? ETag, string Url);
