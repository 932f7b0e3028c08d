namespace CloudSoup.Control.Api;

/// <summary>How a file is answered given its Range header (<see cref="ByteRange"/>).</summary>
public enum ByteRangeKind
{
    /// <summary>No usable Range header: 200 with the whole file.</summary>
    Whole,
    /// <summary>206 with Content-Range.</summary>
    Partial,
    /// <summary>416 with "Content-Range: bytes */size".</summary>
    Unsatisfiable,
}
