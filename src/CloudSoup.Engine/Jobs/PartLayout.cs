namespace CloudSoup.Engine.Jobs;

/// <summary>
/// How a job is split: its parts (one when it runs on one worker), the output's shard count, and, when the job runs
/// in fewer parts than its recipe asked for, why (for the report).
/// </summary>
public sealed record PartLayout(IReadOnlyList<JobPart> Parts, int Shards, long InputBytes, string? Note)
{
    /// <summary>The first stage's decision when the method decides over the whole model first and the job is split.</summary>
    public PrepassDecision? Stage1 { get; init; }

    public bool IsSplit => Parts.Count > 1;
}
