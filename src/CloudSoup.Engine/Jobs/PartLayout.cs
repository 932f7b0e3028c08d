namespace CloudSoup.Engine.Jobs;

/// <summary>
/// How a job is split: its parts (one when it runs on one worker), the output's shard count, and, when the job runs
/// in fewer parts than its recipe asked for, why (for the report).
/// </summary>
public sealed record PartLayout(IReadOnlyList<JobPart> Parts, int Shards, long InputBytes, string? Note)
{
    /// <summary>The first stage, when the job is split and needs whole-model work before merging (scope alignment, a whole-model decision).</summary>
    public FirstStage? Stage1 { get; init; }

    public bool IsSplit => Parts.Count > 1;
}
