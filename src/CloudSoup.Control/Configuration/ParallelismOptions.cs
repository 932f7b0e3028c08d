namespace CloudSoup.Control.Configuration;

/// <summary>
/// The worker's settings for splitting a job over several workers (CloudSoup__Parallelism__*; docs/fanout.md).
/// </summary>
public sealed class ParallelismOptions
{
    /// <summary>
    /// With <c>parallelism: {parts: auto}</c>: one part per this many bytes of input read (rounded up, at most the
    /// output's shard count and RecipeLimits.MaxParts). The default, 20 GB, keeps a part's fixed cost (start-up,
    /// header reads, commit; bench/README.md "Fan-out") small beside its reading time.
    /// </summary>
    public long PartBytes { get; set; } = 20_000_000_000;
}
