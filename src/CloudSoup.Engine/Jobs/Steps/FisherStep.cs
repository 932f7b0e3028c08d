// The `fisher:` recipe section inside a job: every model (and, for gradient_matching, the base model when no
// base_fisher is given) without a Fisher gets one computed by FisherEstimator on the section's data before
// merging. The computed Fishers are auxiliary inputs held in memory (as safetensors bytes, read through the same
// checkpoint code as files) and are also written next to the merged model, so users can reuse them.
using CloudSoup.Control.Methods;
using System.Diagnostics;
using System.Text.RegularExpressions;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Merging;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using TorchSharp;

namespace CloudSoup.Engine.Jobs.Steps;

/// <summary>One Fisher the job computed: for which model, where it was written, and how.</summary>
public sealed record ComputedFisher(string Model, string Output, string Labels, int Samples, long Seed, double Seconds);

/// <summary>With a fisher section: computes the Fishers the recipe does not name, before planning.</summary>
public sealed partial class FisherStep : IJobStep
{
    public string Phase => JobPhase.Fisher;

    public bool AppliesTo(JobContext job) => job.Recipe.Fisher != null;

    public async Task RunAsync(JobContext job)
    {
        (job.PlanRecipe, var computed, job.Fishers) = await RunAsync(job.PlanRecipe, job.Method, job.Store, job.Models, job.Inputs, job.Sink, job.Progress, job.Ct).ConfigureAwait(false);
        foreach (var (reference, checkpoint) in computed) job.Auxiliary[reference] = checkpoint;
    }

    public const string ReferencePrefix = "computed-fisher:";

    [GeneratedRegex(@"[^A-Za-z0-9._-]+")]
    private static partial Regex Unsafe();

    /// <summary>
    /// Computes the missing Fishers; returns the recipe to plan with (each such model's <c>fisher</c> parameter now
    /// names its computed Fisher), the in-memory checkpoints by reference, and what was computed.
    /// </summary>
    public static async Task<(Recipe PlanRecipe, Dictionary<string, Checkpoint> Auxiliary, List<ComputedFisher> Computed)> RunAsync(
        Recipe recipe, IMergeMethod method, ICheckpointStore store, EvalModelLoader evalModels, IReadOnlyList<Checkpoint> inputs, IOutputSink sink,
        IProgress<JobProgress>? progress, CancellationToken ct)
    {
        var section = recipe.Fisher ?? throw new InvalidOperationException("the recipe has no fisher section");
        var wanted = new List<(Checkpoint Input, int? ModelIndex)>();
        for (int i = 0; i < recipe.Models.Count; i++)
        {
            var m = recipe.Models[i];
            bool isBase = m.Model == recipe.BaseModel && method.BaseModel != BaseModelUse.NotUsed;
            if (!isBase && !m.Parameters.ContainsKey("fisher")) wanted.Add((inputs.First(c => c.Reference == m.Model), i));
        }
        bool baseWanted = method.Name == "gradient_matching" && recipe.BaseModel != null && !recipe.Parameters.ContainsKey("base_fisher");
        if (baseWanted) wanted.Add((inputs.First(c => c.Reference == recipe.BaseModel), null));

        var auxiliary = new Dictionary<string, Checkpoint>(StringComparer.Ordinal);
        var computed = new List<ComputedFisher>();
        var models = recipe.Models.ToList();
        var global = recipe.Parameters.ToDictionary();
        if (wanted.Count == 0) return (recipe, auxiliary, computed);

        using var model = await evalModels.LoadAsync(store, section.Model, section.Limits, "fisher", ct).ConfigureAwait(false);
        using var data = await EvalData.LoadAsync(store, section.Data, ct).ConfigureAwait(false);
        var options = new FisherOptions(section.Labels, section.Samples, section.Seed);
        try
        {
            for (int w = 0; w < wanted.Count; w++)
            {
                var (input, index) = wanted[w];
                var sw = Stopwatch.StartNew();
                var weights = await JobEvaluator.ReadAllAsync(input, ct).ConfigureAwait(false);
                Dictionary<string, torch.Tensor> fisher;
                try
                {
                    model.LoadWeights(weights, input.Reference);
                    int done = w;
                    var inner = progress is null ? null : new ProgressRelay<JobProgress>(p =>
                        progress.Report(new JobProgress(JobPhase.Fisher, (done + p.Fraction) / wanted.Count, $"{ReportName(input.Reference)}: {p.Detail}")));
                    fisher = FisherEstimator.Estimate(model, weights, data, options, inner, ct);
                }
                finally
                {
                    foreach (var t in weights.Values) t.Dispose();
                }
                byte[] bytes;
                try
                {
                    bytes = SafetensorsWriter.ToBytes(fisher, new Dictionary<string, string>
                    {
                        ["fisher_of"] = input.Reference, ["labels"] = section.Labels.ToString().ToLowerInvariant(),
                        ["samples"] = section.Samples.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    });
                }
                finally
                {
                    foreach (var t in fisher.Values) t.Dispose();
                }
                string reference = ReferencePrefix + input.Reference;
                auxiliary[reference] = await Checkpoint.FromBytesAsync(reference, bytes, ct).ConfigureAwait(false);
                string file = $"fisher.{Unsafe().Replace(Path.GetFileNameWithoutExtension(ReportName(input.Reference)), "_")}.safetensors";
                await sink.WriteAllAsync(file, bytes, ct).ConfigureAwait(false);
                var setting = new ScalarSetting(ParameterValue.Of(reference));
                if (index is int i)
                    models[i] = models[i] with { Parameters = new Dictionary<string, ParameterSetting>(models[i].Parameters) { ["fisher"] = setting } };
                else
                    global["base_fisher"] = setting;
                computed.Add(new ComputedFisher(input.Reference, sink.Locate(file), section.Labels.ToString().ToLowerInvariant(),
                    (int)Math.Min(section.Samples, data.Count), section.Seed, sw.Elapsed.TotalSeconds));
            }
        }
        catch
        {
            foreach (var c in auxiliary.Values) await c.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return (recipe.WithModels(models).WithParameters(global), auxiliary, computed);
    }

    /// <summary>The file name part of a model reference ("checkpoints/exp/a.safetensors" → "a.safetensors").</summary>
    private static string ReportName(string reference) => reference.TrimEnd('/').Split('/')[^1];
}
