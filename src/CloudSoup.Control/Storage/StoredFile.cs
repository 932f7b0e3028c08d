using Azure;

namespace CloudSoup.Control.Storage;

/// <summary>
/// A committed output file as stored: its size, ETag and the MD5 the blob service keeps when one was computed
/// (single-request uploads; a block list committed without one has none).
/// </summary>
public sealed record StoredFile(string Name, BlobPath Blob, long Size, ETag ETag, byte[]? Md5, DateTimeOffset LastModified);
