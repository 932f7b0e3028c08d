using System.Text.Json.Nodes;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Jobs;

/// <summary>
/// Permutation alignment as the first stage of a split job (docs/fanout.md, docs/alignment.md): the permutations are
/// found once, stored (stage1.json), and every part permutes the tensors it reads by them. Same files and the same
/// alignment report as one worker for any number of parts and any order; a stored permutation that does not fit the
/// job fails the part clearly and writes nothing.
/// </summary>
public class AlignmentFirstStageTests
{
    /// <summary>Three MLPs 24-32-28-20-5 with biases (as AlignmentJobTests' random MLPs), one per seed.</summary>
    private static string Models(TempDir dir)
    {
        int[] widths = [24, 32, 28, 20, 5];
        for (int m = 0; m < 3; m++)
        {
            var gen = new torch.Generator((ulong)(1600 + m));
            var d = new Dictionary<string, torch.Tensor>();
            for (int k = 1; k < widths.Length; k++)
            {
                d[$"fc{k}.weight"] = torch.randn(new long[] { widths[k], widths[k - 1] }, generator: gen);
                d[$"fc{k}.bias"] = torch.randn(new long[] { widths[k] }, generator: gen);
            }
            SafetensorsFiles.Write(dir[$"in/m{m}.safetensors"], d);
        }
        return dir["in"];
    }

    // Small shards, so that a permutation's axes (fc1's rows and bias, fc2's columns) fall into different parts.
    private const string Recipe = "merge_method: linear\nmodels:\n  - {model: m0.safetensors, parameters: {weight: 1}}\n  - {model: m1.safetensors, parameters: {weight: 2}}\n" +
                                  "  - {model: m2.safetensors, parameters: {weight: 3}}\nalignment: {method: weight_matching, spec: mlp, seed: 3}\noutput: {shard_size: 2500}\n";

    /// <summary>The report's alignment section without its timing.</summary>
    private static string AlignmentSection(string reportJson)
    {
        var section = JsonNode.Parse(reportJson)!["alignment"]!.AsObject();
        section.Remove("seconds");
        return section.ToJsonString();
    }

    /// <summary>stage1.json as the worker writes and reads it back.</summary>
    private static FirstStage? Stored(PartLayout layout) => layout.Stage1 is { } s ? FirstStage.FromJson(s.ToJsonBytes()) : null;

    [Fact]
    public async Task An_aligned_job_split_into_two_and_three_parts_writes_the_same_files_and_alignment_report_as_one_worker()
    {
        using var dir = new TempDir();
        var runner = new MergeJobRunner(new LocalCheckpointStore(Models(dir)));
        await using (var sink = new LocalDirectorySink(dir["whole"]))
            await runner.RunAsync(RecipeParser.Parse(Recipe), sink, null, CancellationToken.None);
        var files = Directory.GetFiles(dir["whole"], "model*").Select(Path.GetFileName).Order().ToList();
        Assert.True(files.Count >= 4, $"{files.Count - 1} shards: too few to split three ways");
        string wholeAlignment = AlignmentSection(File.ReadAllText(dir["whole/report.json"]));
        // Alignment moved units (so a part that merged unpermuted tensors would write other bytes).
        Assert.Contains(JsonNode.Parse(wholeAlignment)!["models"]!.AsArray(), m => m!["unitsMoved"]!.GetValue<int>() > 0);

        var rng = new Random(16);
        foreach (int k in new[] { 2, 3 })
        {
            var recipe = RecipeParser.Parse(Recipe + $"parallelism: {{parts: {k}}}\n");
            var layout = await runner.PlanPartsAsync(recipe, long.MaxValue, null, CancellationToken.None);
            Assert.Equal(k, layout.Parts.Count);                                            // split, not run as one part
            Assert.Null(layout.Note);
            var stage1 = Stored(layout)!;
            Assert.Equal(3, stage1.Alignment!.Permutations.Count);                          // one set per model
            Assert.Contains(JobPhase.Aligning, stage1.PhaseSeconds.Keys);
            string outDir = dir[$"k{k}"];
            var outcomes = new List<PartOutcome>();
            foreach (var part in layout.Parts.OrderBy(_ => rng.Next()))                     // any order of completion
                await using (var sink = new LocalDirectorySink(outDir))
                    outcomes.Add(await runner.RunPartAsync(recipe, sink, part, stage1, null, CancellationToken.None));
            // The parts applied the stored permutations: none of them aligned anything itself.
            Assert.All(outcomes, o => Assert.DoesNotContain(JobPhase.Aligning, o.PhaseSeconds.Keys));
            await using (var sink = new LocalDirectorySink(outDir))
            {
                var report = await runner.FinishPartsAsync(recipe, sink, outcomes, layout.Note, stage1, null, CancellationToken.None);
                Assert.Equal(k, report.Parallelism!.Parts);
                Assert.Contains(JobPhase.Aligning, report.PhaseSeconds.Keys);
            }
            Assert.Equal(files, Directory.GetFiles(outDir, "model*").Select(Path.GetFileName).Order().ToList());
            foreach (var f in files)
                Assert.True(File.ReadAllBytes(Path.Combine(dir["whole"], f!)).SequenceEqual(File.ReadAllBytes(Path.Combine(outDir, f!))), $"{k} parts: {f} differs");
            Assert.Equal(wholeAlignment, AlignmentSection(File.ReadAllText(Path.Combine(outDir, "report.json"))));
        }
    }

    [Fact]
    public async Task Alignment_with_evaluation_still_runs_as_one_part()
    {
        using var dir = new TempDir();
        var runner = new MergeJobRunner(new LocalCheckpointStore(Models(dir)));
        var layout = await runner.PlanPartsAsync(RecipeParser.Parse(Recipe + "evaluation: {model: builtin:mlp, data: d.safetensors}\nparallelism: {parts: 3}\n"),
            long.MaxValue, null, CancellationToken.None);
        Assert.Single(layout.Parts);
        Assert.Null(layout.Stage1);
        Assert.StartsWith("ran as one part: evaluation", layout.Note);
    }

    public static TheoryData<string, Action<JsonObject>, string> Tampered => new()
    {
        { "an index repeated", s => Perm(s, 1, "P_fc1")[0] = Perm(s, 1, "P_fc1")[1]!.GetValue<int>(), "is not a permutation of 0..31" },
        { "an index out of range", s => Perm(s, 1, "P_fc2")[3] = 999, "is not a permutation of 0..27" },
        { "a negative index", s => Perm(s, 0, "P_fc3")[0] = -1, "is not a permutation of 0..19" },
        { "an index vector too short", s => Perm(s, 1, "P_fc1").RemoveAt(31), "has 31 indices, but the model now has 32 units there" },
        { "a model's set missing", s => Models(s).RemoveAt(2), "holds permutations for 2 models, but the job aligns 3" },
        { "a permutation missing", s => Models(s)[1]!.AsObject().Remove("P_fc2"), "not one for each of the spec's 3" },
        { "a permutation the spec does not have", s => Models(s)[1]!.AsObject()["P_extra"] = new JsonArray(0), "not one for each of the spec's 3" },
        { "a model's set null", s => Models(s)[2] = null, "holds no permutations for model 3" },
        { "no spec", s => Alignment(s).Remove("spec"), "has no permutation spec" },
        { "a spec that does not parse", s => Alignment(s)["spec"] = "{\"permutations\": 5}", "permutation spec is invalid" },
        { "an index that is not a number", s => Perm(s, 1, "P_fc1")[0] = "zero", "not valid JSON of its shape" },
    };

    private static JsonObject Alignment(JsonObject stage) => stage["alignment"]!.AsObject();
    private static JsonArray Models(JsonObject stage) => Alignment(stage)["permutations"]!.AsArray();
    private static JsonArray Perm(JsonObject stage, int model, string name) => Models(stage)[model]![name]!.AsArray();

    [Theory]
    [MemberData(nameof(Tampered))]
    public async Task A_stored_permutation_that_does_not_fit_the_job_fails_the_part_clearly_and_writes_nothing(string what, Action<JsonObject> tamper, string expected)
    {
        using var dir = new TempDir();
        var runner = new MergeJobRunner(new LocalCheckpointStore(Models(dir)));
        var recipe = RecipeParser.Parse(Recipe + "parallelism: {parts: 2}\n");
        var layout = await runner.PlanPartsAsync(recipe, long.MaxValue, null, CancellationToken.None);
        var json = JsonNode.Parse(layout.Stage1!.ToJsonBytes())!.AsObject();
        tamper(json);

        var e = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            var stage1 = FirstStage.FromJson(System.Text.Encoding.UTF8.GetBytes(json.ToJsonString()));
            await using var sink = new LocalDirectorySink(dir["out"]);
            await runner.RunPartAsync(recipe, sink, layout.Parts[0], stage1, null, CancellationToken.None);
        });
        Assert.True(e is InvalidDataException or CloudSoupException { Kind: ErrorKind.IncompatibleModels }, $"{what}: {e.GetType().Name}: {e.Message}");
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(Directory.Exists(dir["out"]) && Directory.EnumerateFileSystemEntries(dir["out"]).Any(), $"{what}: the failed part left files");
    }

    [Fact]
    public void A_first_stage_larger_than_its_bound_is_refused_before_it_is_parsed()
    {
        var e = Assert.Throws<InvalidDataException>(() => FirstStage.FromJson(new byte[FirstStage.MaxJsonBytes + 1]));
        Assert.Contains("more than the", e.Message);
    }
}
