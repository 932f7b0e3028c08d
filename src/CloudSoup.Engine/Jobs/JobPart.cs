namespace CloudSoup.Engine.Jobs;

/// <summary>
/// One part of a job split over several workers: a contiguous run of the output's shards, planned by
/// <see cref="PartPlanner"/>. The part writes exactly those shards; the shards' names and contents are the ones the
/// whole job would write, so the result does not depend on how many parts there are (docs/fanout.md).
/// </summary>
/// <param name="InputBytes">Bytes of input the part reads (the planner balances parts by this).</param>
public sealed record JobPart(int Index, int FirstShard, int ShardCount, long InputBytes);
