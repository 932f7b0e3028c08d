namespace CloudSoup.Engine.Jobs;

/// <summary>
/// One part of a job split over several workers, planned by <see cref="PartPlanner"/>. Usually a contiguous run of the
/// output's shards: the part writes exactly those shards, whose names and contents are the ones the whole job would
/// write, so the result does not depend on how many parts there are (docs/fanout.md). A soup's part instead evaluates a
/// contiguous run of its ingredients alone on the held-out data (<see cref="IngredientCount"/> &gt; 0) and writes no
/// shard: the part that completes the job searches and merges with those scores.
/// </summary>
/// <param name="InputBytes">Bytes of input the part reads (the planner balances parts by this).</param>
/// <param name="FirstIngredient">A soup's part: the first ingredient (recipe order, from 0) it evaluates.</param>
/// <param name="IngredientCount">A soup's part: how many ingredients it evaluates; 0 for a part that merges shards.</param>
public sealed record JobPart(int Index, int FirstShard, int ShardCount, long InputBytes, int FirstIngredient = 0, int IngredientCount = 0)
{
    public bool EvaluatesIngredients => IngredientCount > 0;
}
