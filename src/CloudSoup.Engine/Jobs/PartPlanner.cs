// Splits a planned job into parts for several workers (docs/fanout.md). A part is a contiguous run of the output's
// shards, so every part writes whole files whose names and bytes the shard layout already fixed: the layout comes from
// output.shard_size alone, never from the number of parts, and each tensor is merged with its own seed (Seeds.cs), so
// any split and any order of completion gives the same files. Parts are balanced by the bytes they read.
// A soup's parts are runs of its ingredients instead, each evaluated alone on the held-out data (SplitIngredients).
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Merging;

namespace CloudSoup.Engine.Jobs;

public static class PartPlanner
{
    /// <summary>
    /// Why this job must run on one worker whatever its recipe asks, or null when it can be split: everything that
    /// needs the whole merged model in one process (evaluation, BatchNorm re-estimation) or that writes outputs besides
    /// the shards (computed Fishers). Permutation alignment (without evaluation, which measures its loss barriers),
    /// weight scope alignment and methods that decide over the whole model first (IWholeModelPrepass) are split: the
    /// permutations, scopes or decision are found once, the first stage (FirstStage). A soup is split too, differently:
    /// its parts evaluate the ingredients alone (the search's independent first step) and the part that completes the
    /// job runs the rest of the search, the merge, the evaluation and the report as one worker would
    /// (<see cref="SplitIngredients"/>); unless it searches over aligned or re-scoped weights, which only a process
    /// that aligned them holds.
    /// </summary>
    public static string? WhyWhole(JobContext job)
    {
        var r = job.Recipe;
        if (IsSoup(job))
        {
            if (r.Fisher != null) return "the fisher section computes Fishers in one process before merging";
            if (r.Alignment != null) return "a soup over aligned models searches the permuted weights, which one process holds";
            if (r.ScopeAlignment != null) return "a soup over re-scoped models searches the re-scoped weights, which one process holds";
            return null;
        }
        if (r.Evaluation != null) return "evaluation measures the whole merged model in one process";
        if (r.Fisher != null) return "the fisher section computes Fishers in one process before merging";
        return null;
    }

    private static bool IsSoup(JobContext job) => Soups.Soups.TryGet(job.Signature, out _);

    /// <summary>
    /// The parts of <paramref name="job"/> (planned already): as many as the recipe's parallelism asks (auto: one per
    /// <paramref name="partBytes"/> of input), at most one per output shard (a soup: one per ingredient).
    /// </summary>
    public static PartLayout Decide(JobContext job, long partBytes)
    {
        var plan = job.Plan;
        var shardBytes = ShardInputBytes(plan);
        long total = shardBytes.Sum();
        int shards = plan.Shards.Count;
        var asked = job.Recipe.Parallelism;
        if (asked is null) return Whole(null);
        if (WhyWhole(job) is { } why) return Whole($"ran as one part: {why}");
        // A soup's parts read its ingredients (and the evaluation data), not shards.
        bool soup = IsSoup(job);
        long[] ingredientBytes = soup ? [.. job.Inputs.Select(c => c.TotalBytes)] : [];
        if (soup) total = ingredientBytes.Sum();
        int wanted = asked.Parts ?? (int)Math.Clamp((total + partBytes - 1) / Math.Max(1, partBytes), 1, RecipeLimits.MaxParts);
        int most = soup ? ingredientBytes.Length : shards;
        int k = Math.Min(wanted, most);
        string? note = null;
        if (k < wanted)
            note = soup
                ? $"ran as {k} part{(k == 1 ? "" : "s")} instead of {wanted}: a soup's part evaluates whole ingredients and this soup has {most}"
                : $"ran as {k} part{(k == 1 ? "" : "s")} instead of {wanted}: a part writes whole output files and this output has {shards} (output.shard_size sets how many)";
        else if (asked.Auto && k == 1)
            note = $"ran as one part: {total} bytes of input is within one part's share (CloudSoup:Parallelism:PartBytes = {partBytes})";
        if (k == 1) return Whole(note);
        return new PartLayout(soup ? SplitIngredients(ingredientBytes, k) : Split(shardBytes, k), shards, total, note);

        PartLayout Whole(string? n) => new([new JobPart(0, 0, shards, total)], shards, total, n);
    }

    /// <summary>
    /// A soup's parts: <paramref name="parts"/> contiguous runs of its ingredients (recipe order), as even in number as
    /// they can be (each evaluation costs the same), part p taking ingredients [p·n/parts, (p + 1)·n/parts). Each part
    /// writes no shard: the part that completes the job merges them all (docs/fanout.md).
    /// </summary>
    public static IReadOnlyList<JobPart> SplitIngredients(IReadOnlyList<long> ingredientBytes, int parts)
    {
        int n = ingredientBytes.Count;
        if (parts < 1 || parts > n) throw new ArgumentOutOfRangeException(nameof(parts), $"{parts} parts of {n} ingredients");
        return Enumerable.Range(0, parts).Select(p =>
        {
            int first = (int)((long)p * n / parts), end = (int)((long)(p + 1) * n / parts);
            return new JobPart(p, 0, 0, ingredientBytes.Skip(first).Take(end - first).Sum(), first, end - first);
        }).ToList();
    }

    /// <summary>Bytes each output shard's tensors read from the inputs (auxiliary checkpoints aside).</summary>
    public static long[] ShardInputBytes(MergePlan plan)
    {
        var tasks = plan.Tensors.ToDictionary(t => t.Name);
        return plan.Shards.Select(s => s.Tensors.Sum(o => tasks[o.Name].Sources.Sum(i => plan.Inputs[i].Entry(o.Name).ByteLength))).ToArray();
    }

    /// <summary>
    /// Cuts the shards into <paramref name="parts"/> contiguous runs of about equal input bytes: part p ends at the
    /// first shard where the running total reaches (p + 1) / parts of the whole, leaving at least one shard for each
    /// later part. Deterministic: the same shards always give the same cut.
    /// </summary>
    public static IReadOnlyList<JobPart> Split(IReadOnlyList<long> shardBytes, int parts)
    {
        int n = shardBytes.Count;
        if (parts < 1 || parts > n) throw new ArgumentOutOfRangeException(nameof(parts), $"{parts} parts of {n} shards");
        long total = shardBytes.Sum();
        var result = new List<JobPart>(parts);
        int next = 0;
        long running = 0;
        for (int p = 0; p < parts; p++)
        {
            int first = next;
            long bytes = 0;
            int lastAllowed = n - (parts - p);   // leave a shard for each later part
            // Take at least one shard, then more while the running total is short of this part's boundary.
            decimal boundary = (decimal)total * (p + 1) / parts;
            do
            {
                bytes += shardBytes[next];
                running += shardBytes[next];
                next++;
            } while (next <= lastAllowed && (p == parts - 1 || running + shardBytes[next] / 2m <= boundary));
            result.Add(new JobPart(p, first, next - first, bytes));
        }
        return result;
    }
}
