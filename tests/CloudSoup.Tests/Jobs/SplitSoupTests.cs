using System.Text.Json;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Soups;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Jobs;

/// <summary>
/// A soup split into parts in the engine (docs/fanout.md, "Soups"), in this process on local files: the parts evaluate
/// the ingredients alone, the part that completes the job runs the rest of the search from their scores (handed over as
/// JSON, as part-NNN.json hands them over) and writes what one worker writes, for any number of parts and any order.
/// The ingredients are SoupTests' four noisy copies of a linear classifier and one garbage model.
/// </summary>
public class SplitSoupTests
{
    private static MergeJobRunner Runner(TempDir dir) => new(new LocalCheckpointStore(dir.Path), new JobEvaluator());

    /// <summary>report.json's section <paramref name="name"/> as written (doubles as they round-trip).</summary>
    private static string Section(string outDir, string name) =>
        JsonDocument.Parse(File.ReadAllBytes(Path.Combine(outDir, "report.json"))).RootElement.GetProperty(name).GetRawText();

    private static async Task<CloudSoup.Engine.Reports.MergeReport> RunSplitAsync(MergeJobRunner runner, Recipe recipe, PartLayout layout, string outDir, Random order)
    {
        var outcomes = new List<PartOutcome>();
        foreach (var part in layout.Parts.OrderBy(_ => order.Next()))              // any order of completion
            await using (var sink = new LocalDirectorySink(outDir))
                outcomes.Add(PartOutcome.FromJson((await runner.RunPartAsync(recipe, sink, part, null, null, CancellationToken.None)).ToJsonBytes()));
        var finishing = new RecordedProgress();
        CloudSoup.Engine.Reports.MergeReport report;
        await using (var finish = new LocalDirectorySink(outDir))
            report = await runner.FinishPartsAsync(recipe, finish, outcomes, layout.Note, null, finishing, CancellationToken.None);
        // The finishing part evaluated no ingredient (for neither the search nor the evaluation section): the parts did.
        Assert.Contains(finishing.Reports, p => p.Detail == "merged model");
        Assert.DoesNotContain(finishing.Reports, p => p.Detail?.StartsWith("ingredient", StringComparison.Ordinal) == true);
        return report;
    }

    private sealed class RecordedProgress : IProgress<CloudSoup.Control.Jobs.JobProgress>
    {
        public List<CloudSoup.Control.Jobs.JobProgress> Reports { get; } = [];

        public void Report(CloudSoup.Control.Jobs.JobProgress value) => Reports.Add(value);
    }

    [Theory]
    [InlineData("greedy_soup", "")]
    [InlineData("pruned_soup", "parameters: {passes: 2}")]
    [InlineData("uniform_soup", "")]
    [InlineData("learned_soup", "parameters: {steps: 20, lr: 0.1}")]
    public async Task A_soup_split_into_parts_writes_one_workers_bytes_and_soup_report_in_any_order(string method, string parameters)
    {
        using var dir = new TempDir();
        SoupTests.WriteIngredients(dir);
        var runner = Runner(dir);
        string recipeText = SoupTests.Recipe(method, parameters);
        await using (var sink = new LocalDirectorySink(dir["whole"]))
            await runner.RunAsync(RecipeParser.Parse(recipeText), sink, null, CancellationToken.None);
        var wholeBytes = File.ReadAllBytes(dir["whole/model.safetensors"]);
        string wholeSoup = Section(dir["whole"], "soup"), wholeEvaluation = Section(dir["whole"], "evaluation");

        var rng = new Random(16);
        foreach (int k in new[] { 2, 3, 5 })
        {
            var recipe = RecipeParser.Parse(recipeText + $"parallelism: {{parts: {k}}}\n");
            var layout = await runner.PlanPartsAsync(recipe, long.MaxValue, null, CancellationToken.None);
            Assert.Equal(k, layout.Parts.Count);
            Assert.Null(layout.Stage1);
            // Every ingredient once, in contiguous runs; no part writes a shard.
            Assert.Equal(Enumerable.Range(0, SoupTests.Good + 1), layout.Parts.SelectMany(p => Enumerable.Range(p.FirstIngredient, p.IngredientCount)));
            Assert.All(layout.Parts, p => Assert.Equal(0, p.ShardCount));
            string outDir = dir[$"k{k}"];
            var report = await RunSplitAsync(runner, recipe, layout, outDir, rng);

            Assert.True(wholeBytes.SequenceEqual(File.ReadAllBytes(Path.Combine(outDir, "model.safetensors"))), $"{k} parts: model.safetensors differs from one worker's");
            Assert.Equal(wholeSoup, Section(outDir, "soup"));
            Assert.Equal(wholeEvaluation, Section(outDir, "evaluation"));
            // What each part did, in the report.
            Assert.Equal(k, report.Parallelism!.Parts);
            Assert.Equal(layout.Parts.Select(p => $"evaluates ingredient{(p.IngredientCount == 1 ? $" {p.FirstIngredient + 1}" : $"s {p.FirstIngredient + 1}-{p.FirstIngredient + p.IngredientCount}")} alone on the held-out data"),
                report.Parallelism.PartDetails.Select(d => d.Work));
            Assert.All(report.Parallelism.PartDetails, d => Assert.Empty(d.Files));
            var html = File.ReadAllText(Path.Combine(outDir, "report.html"));
            Assert.Contains("alone on the held-out data</td>", html);
        }
    }

    [Fact]
    public async Task A_soup_is_capped_at_one_part_per_ingredient_and_runs_whole_over_aligned_weights_or_when_its_budget_is_too_small()
    {
        using var dir = new TempDir();
        SoupTests.WriteIngredients(dir);
        var runner = Runner(dir);
        var capped = await runner.PlanPartsAsync(RecipeParser.Parse(SoupTests.Recipe("greedy_soup") + "parallelism: {parts: 8}\n"), long.MaxValue, null, CancellationToken.None);
        Assert.Equal(SoupTests.Good + 1, capped.Parts.Count);
        Assert.All(capped.Parts, p => Assert.Equal(1, p.IngredientCount));
        Assert.Equal("ran as 5 parts instead of 8: a soup's part evaluates whole ingredients and this soup has 5", capped.Note);

        var rescoped = await runner.PlanPartsAsync(RecipeParser.Parse(SoupTests.Recipe("greedy_soup", "scope_alignment: {enabled: true}") + "parallelism: {parts: 2}\n"),
            long.MaxValue, null, CancellationToken.None);
        Assert.Single(rescoped.Parts);
        Assert.StartsWith("ran as one part: a soup over re-scoped models", rescoped.Note);

        // The finishing part holds every ingredient: a budget too small fails the job when it is split, before any part runs.
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => runner.PlanPartsAsync(RecipeParser.Parse(SoupTests.Recipe("greedy_soup",
            evaluation: "evaluation: {model: 'builtin:mlp', data: heldout.safetensors, memory_budget: 100}") + "parallelism: {parts: 2}\n"), long.MaxValue, null, CancellationToken.None));
        Assert.Equal("evaluation.memory_budget", e.Field);
    }

    [Fact]
    public async Task A_part_whose_evaluation_fails_fails_with_one_workers_reason_and_writes_nothing()
    {
        using var dir = new TempDir();
        SoupTests.WriteIngredients(dir);
        // Labels the 4-way classifiers cannot output: every evaluation fails, as bad input.
        SafetensorsFiles.Write(dir["bad-labels.safetensors"], new Dictionary<string, torch.Tensor>
        {
            ["inputs"] = torch.zeros(10, 8), ["labels"] = torch.full(10, 7, dtype: torch.ScalarType.Int64),
        });
        var runner = Runner(dir);
        string recipeText = SoupTests.Recipe("greedy_soup", evaluation: "evaluation: {model: 'builtin:mlp', data: bad-labels.safetensors}");
        var whole = await Assert.ThrowsAsync<CloudSoupException>(async () =>
        {
            await using var sink = new LocalDirectorySink(dir["whole"]);
            await runner.RunAsync(RecipeParser.Parse(recipeText), sink, null, CancellationToken.None);
        });
        var recipe = RecipeParser.Parse(recipeText + "parallelism: {parts: 3}\n");
        var layout = await runner.PlanPartsAsync(recipe, long.MaxValue, null, CancellationToken.None);
        Assert.Equal(3, layout.Parts.Count);
        foreach (var part in layout.Parts)
        {
            var e = await Assert.ThrowsAsync<CloudSoupException>(async () =>
            {
                await using var sink = new LocalDirectorySink(dir["split"]);
                await runner.RunPartAsync(recipe, sink, part, null, null, CancellationToken.None);
            });
            Assert.False(e.IsRetriable);
            Assert.Equal(whole.Message, e.Message);
            Assert.Contains("label 7 is out of range", e.Message);
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir["split"]));
    }

    [Fact]
    public async Task Scores_that_do_not_cover_the_ingredients_or_name_another_model_fail_the_finishing_and_write_nothing()
    {
        using var dir = new TempDir();
        SoupTests.WriteIngredients(dir);
        var runner = Runner(dir);
        var recipe = RecipeParser.Parse(SoupTests.Recipe("greedy_soup") + "parallelism: {parts: 2}\n");
        var layout = await runner.PlanPartsAsync(recipe, long.MaxValue, null, CancellationToken.None);
        var outcomes = new List<PartOutcome>();
        foreach (var part in layout.Parts)
            await using (var sink = new LocalDirectorySink(dir["parts"]))
                outcomes.Add(await runner.RunPartAsync(recipe, sink, part, null, null, CancellationToken.None));

        var missing = await Assert.ThrowsAsync<InvalidOperationException>(() => FinishAsync([outcomes[0]]));
        Assert.Equal("no part scored ingredient 3 of 5", missing.Message);
        var renamed = outcomes[1] with { Evaluated = [.. outcomes[1].Evaluated.Select(s => s with { Model = "other.safetensors" })] };
        var other = await Assert.ThrowsAsync<CloudSoupException>(() => FinishAsync([outcomes[0], renamed]));
        Assert.StartsWith("part 2 scored an ingredient the job no longer has at place 3", other.Message);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir["out"]));

        async Task FinishAsync(List<PartOutcome> parts)
        {
            await using var sink = new LocalDirectorySink(dir["out"]);
            await runner.FinishPartsAsync(recipe, sink, parts, null, null, null, CancellationToken.None);
        }
    }
}
