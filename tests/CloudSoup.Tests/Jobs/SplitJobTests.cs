using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Jobs;

/// <summary>
/// Splitting a job into parts in the engine (docs/fanout.md), in this process on local files: how the shards are cut,
/// and that any number of parts finished in any order writes the same files as the whole job.
/// </summary>
public class SplitJobTests
{
    private const int Tensors = 8;

    [Theory]
    [InlineData(new long[] { 10, 10, 10, 10, 10, 10, 10, 10 }, 4, new[] { 2, 2, 2, 2 })]
    [InlineData(new long[] { 10, 10, 10, 10, 10, 10, 10, 10 }, 3, new[] { 3, 2, 3 })]
    [InlineData(new long[] { 70, 10, 10, 10 }, 2, new[] { 1, 3 })]
    [InlineData(new long[] { 10, 10, 10, 70 }, 2, new[] { 3, 1 })]
    [InlineData(new long[] { 100, 1, 1, 1 }, 4, new[] { 1, 1, 1, 1 })]
    [InlineData(new long[] { 5 }, 1, new[] { 1 })]
    public void Parts_are_contiguous_runs_of_whole_shards_balanced_by_bytes(long[] shardBytes, int parts, int[] shardsPerPart)
    {
        var split = PartPlanner.Split(shardBytes, parts);
        Assert.Equal(shardsPerPart, split.Select(p => p.ShardCount));
        Assert.Equal(Enumerable.Range(0, parts), split.Select(p => p.Index));
        int next = 0;
        foreach (var p in split)
        {
            Assert.Equal(next, p.FirstShard);                                          // contiguous, in order
            Assert.Equal(shardBytes.Skip(p.FirstShard).Take(p.ShardCount).Sum(), p.InputBytes);
            next += p.ShardCount;
        }
        Assert.Equal(shardBytes.Length, next);                                        // every shard, once
        Assert.Equal(split, PartPlanner.Split(shardBytes, parts));                    // deterministic
    }

    [Fact]
    public void Balance_holds_over_many_random_layouts()
    {
        var rng = new Random(16);
        for (int trial = 0; trial < 500; trial++)
        {
            var bytes = Enumerable.Range(0, rng.Next(1, 200)).Select(_ => (long)rng.Next(1, 1000)).ToArray();
            int parts = rng.Next(1, bytes.Length + 1);
            var split = PartPlanner.Split(bytes, parts);
            Assert.Equal(parts, split.Count);
            Assert.All(split, p => Assert.True(p.ShardCount >= 1));
            Assert.Equal(bytes.Sum(), split.Sum(p => p.InputBytes));
            // No part exceeds its fair share by more than the largest shard twice over (a shard is never cut).
            Assert.All(split, p => Assert.True(p.InputBytes <= bytes.Sum() / (double)parts + 2 * bytes.Max(), $"trial {trial}: part {p.Index} has {p.InputBytes}"));
        }
    }

    private static string Models(TempDir dir)
    {
        for (int m = 0; m < 4; m++)
        {
            var gen = new torch.Generator((ulong)(900 + m));
            SafetensorsFiles.Write(dir[$"in/m{m}.safetensors"], Enumerable.Range(0, Tensors).ToDictionary(i => $"layers.{i}.weight", _ => torch.randn(new long[] { 32, 32 }, generator: gen)));
        }
        return dir["in"];
    }

    private const string Output = "output: {shard_size: 5000}\n";   // 4 KiB per 32×32 tensor: one tensor per shard

    [Theory]
    [InlineData("merge_method: linear\nmodels:\n  - {model: m0.safetensors, parameters: {weight: 1}}\n  - {model: m1.safetensors, parameters: {weight: 2}}\n  - {model: m2.safetensors, parameters: {weight: 3}}\n")]
    // per-tensor seeds: a random method draws the same masks whichever part merges a tensor
    [InlineData("merge_method: dare_ties\nbase_model: m0.safetensors\nseed: 7\nmodels:\n  - {model: m1.safetensors, parameters: {weight: 1, density: 0.5}}\n  - {model: m2.safetensors, parameters: {weight: 1, density: 0.5}}\n")]
    // two stages: the whole-model decision is made once and handed to every part
    [InlineData("merge_method: ties\nbase_model: m0.safetensors\nparameters: {topk_scope: model}\nmodels:\n  - {model: m1.safetensors, parameters: {weight: 1, density: 0.3}}\n  - {model: m2.safetensors, parameters: {weight: 1, density: 0.3}}\n")]
    // two stages, both passes: scopes measured, then the whole-model thresholds taken on the re-scoped inputs
    [InlineData("merge_method: ties\nbase_model: m0.safetensors\nparameters: {topk_scope: model}\nscope_alignment: {enabled: true}\nmodels:\n  - {model: m1.safetensors, parameters: {weight: 1, density: 0.3}}\n  - {model: m2.safetensors, parameters: {weight: 1, density: 0.3}}\n  - {model: m3.safetensors, parameters: {weight: 1, density: 0.3}}\n")]
    [InlineData("merge_method: linear\nscope_alignment: {enabled: true, fusion: mean}\nmodels: [m0.safetensors, m1.safetensors, m2.safetensors]\n")]
    // two stages, all three passes: permutations found, scopes measured on the permuted inputs, then the thresholds
    [InlineData("merge_method: ties\nbase_model: m0.safetensors\nparameters: {topk_scope: model}\nalignment: {method: weight_matching, spec: mlp, seed: 5}\nscope_alignment: {enabled: true}\nmodels:\n  - {model: m1.safetensors, parameters: {weight: 1, density: 0.3}}\n  - {model: m2.safetensors, parameters: {weight: 1, density: 0.3}}\n  - {model: m3.safetensors, parameters: {weight: 1, density: 0.3}}\n")]
    public async Task Any_number_of_parts_finished_in_any_order_writes_the_same_files_as_the_whole_job(string recipeText)
    {
        using var dir = new TempDir();
        var store = new LocalCheckpointStore(Models(dir));
        var runner = new MergeJobRunner(store);
        await using (var sink = new LocalDirectorySink(dir["whole"]))
            await runner.RunAsync(RecipeParser.Parse(recipeText + Output), sink, null, CancellationToken.None);
        var files = Directory.GetFiles(dir["whole"], "model*").Select(Path.GetFileName).Order().ToList();
        Assert.Equal(Tensors + 1, files.Count);                                         // 8 shards and the index

        var rng = new Random(3);
        foreach (int k in new[] { 1, 2, 3, 5, 8 })
        {
            var recipe = RecipeParser.Parse(recipeText + Output + $"parallelism: {{parts: {k}}}\n");
            var layout = await runner.PlanPartsAsync(recipe, long.MaxValue, null, CancellationToken.None);
            Assert.Equal(k, layout.Parts.Count);
            string outDir = dir[$"k{k}"];
            var outcomes = new List<PartOutcome>();
            var stage1 = layout.Stage1 is { } st ? FirstStage.FromJson(st.ToJsonBytes()) : null;   // as stage1.json hands it over
            foreach (var part in layout.Parts.OrderBy(_ => rng.Next()))                 // any order of completion
                await using (var sink = new LocalDirectorySink(outDir))
                    outcomes.Add(await runner.RunPartAsync(recipe, sink, part, stage1, null, CancellationToken.None));
            await using (var sink = new LocalDirectorySink(outDir))
            {
                var report = await runner.FinishPartsAsync(recipe, sink, outcomes, layout.Note, stage1, null, CancellationToken.None);
                Assert.Equal(k, report.Parallelism!.Parts);
            }
            Assert.Equal(files, Directory.GetFiles(outDir, "model*").Select(Path.GetFileName).Order().ToList());
            foreach (var f in files)
                Assert.True(File.ReadAllBytes(Path.Combine(dir["whole"], f!)).SequenceEqual(File.ReadAllBytes(Path.Combine(outDir, f!))), $"{k} parts: {f} differs");
        }
    }

    [Fact]
    public async Task Parts_are_capped_at_the_shard_count_auto_counts_by_input_bytes_and_whole_model_work_runs_as_one_part()
    {
        using var dir = new TempDir();
        var runner = new MergeJobRunner(new LocalCheckpointStore(Models(dir)));
        const string linear = "merge_method: linear\nmodels: [m0.safetensors, m1.safetensors, m2.safetensors]\n";
        long input = 3L * Tensors * 32 * 32 * 4;

        var capped = await runner.PlanPartsAsync(RecipeParser.Parse(linear + Output + "parallelism: {parts: 20}\n"), long.MaxValue, null, CancellationToken.None);
        Assert.Equal(Tensors, capped.Parts.Count);
        Assert.Contains("instead of 20", capped.Note);
        Assert.Contains("output.shard_size", capped.Note);

        var oneShard = await runner.PlanPartsAsync(RecipeParser.Parse(linear + "parallelism: {parts: 4}\n"), long.MaxValue, null, CancellationToken.None);
        Assert.Single(oneShard.Parts);                                                   // the default shard size: one file, one part

        var auto = await runner.PlanPartsAsync(RecipeParser.Parse(linear + Output + "parallelism: auto\n"), input / 3, null, CancellationToken.None);
        Assert.Equal(3, auto.Parts.Count);
        Assert.Null(auto.Note);
        var autoSmall = await runner.PlanPartsAsync(RecipeParser.Parse(linear + Output + "parallelism: auto\n"), input, null, CancellationToken.None);
        Assert.Single(autoSmall.Parts);
        Assert.Contains("CloudSoup:Parallelism:PartBytes", autoSmall.Note);

        var evaluated = await runner.PlanPartsAsync(RecipeParser.Parse(linear + Output + "evaluation: {model: builtin:mlp, data: d.safetensors}\nparallelism: {parts: 4}\n"), long.MaxValue, null, CancellationToken.None);
        Assert.Single(evaluated.Parts);
        Assert.StartsWith("ran as one part: evaluation", evaluated.Note);
    }
}
