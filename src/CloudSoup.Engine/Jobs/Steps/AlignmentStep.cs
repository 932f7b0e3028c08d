// The alignment step of a merge job (recipe `alignment:`, docs/alignment.md): load every input fully, permute
// each one's hidden units to match the reference (Git Re-Basin weight or activation matching), and — when the
// job evaluates — measure loss and accuracy along the straight path from the reference to each model, as
// trained and after alignment (the loss barrier of Git Re-Basin, arXiv 2209.04836; docs/alignment.md). The merge then reads
// the aligned tensors through MergePlan.InputOverrides, so every merge method works on aligned models.
using System.Diagnostics;
using CloudSoup.Engine.Alignment;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Formats;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Storage;
using TorchSharp;

namespace CloudSoup.Engine.Jobs.Steps;

/// <summary>The aligned state dicts (one per input, in input order) and the report section. Owns the tensors.</summary>
public sealed class AlignmentOutcome(IReadOnlyList<Dictionary<string, torch.Tensor>> aligned, AlignmentReport report) : IDisposable
{
    public IReadOnlyList<Dictionary<string, torch.Tensor>> Aligned { get; } = aligned;
    public AlignmentReport Report { get; } = report;

    public void Dispose()
    {
        foreach (var d in Aligned) foreach (var t in d.Values) t.Dispose();
    }
}

/// <summary>With an alignment section: permutes every model onto the reference before merging, and measures the barriers.</summary>
public sealed class AlignmentStep : IJobStep
{
    public string Phase => JobPhase.Aligning;

    public bool AppliesTo(JobContext job) => job.Recipe.Alignment != null;

    public async Task RunAsync(JobContext job)
    {
        job.Alignment = await RunAsync(job.Recipe.Alignment!, job.PlanRecipe, job.Store, job.Models, job.Inputs, job.Progress, job.Ct).ConfigureAwait(false);
        job.Plan = job.Plan.WithInputOverrides(job.Alignment.Aligned);
    }

    private const long MaxSpecBytes = 4 << 20;

    public static async Task<AlignmentOutcome> RunAsync(AlignmentSection section, Recipe recipe, ICheckpointStore store, EvalModelLoader evalModels,
        IReadOnlyList<Checkpoint> inputs, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        int refIndex = inputs.Select(c => c.Reference).ToList().IndexOf(section.Reference);
        if (refIndex < 0) throw CloudSoupException.Recipe("alignment.reference", $"'{section.Reference}' is not one of the job's inputs");
        CheckMemory(inputs);
        var originals = new List<Dictionary<string, torch.Tensor>>();
        AlignmentResult? result = null;
        try
        {
            progress?.Report(new JobProgress(JobPhase.Aligning, 0, "loading models"));
            foreach (var c in inputs) originals.Add(await JobEvaluator.ReadAllAsync(c, ct).ConfigureAwait(false));
            var spec = await LoadSpecAsync(section.Spec, store, Permutations.Shapes(originals[refIndex]), ct).ConfigureAwait(false);

            using var evalModel = recipe.Evaluation is { } ev ? await evalModels.LoadAsync(store, ev.Model, ev.Limits, "evaluation", ct).ConfigureAwait(false) : null;
            using var data = recipe.Evaluation is { } ev2 ? await EvalData.LoadAsync(store, ev2.Data, ct).ConfigureAwait(false) : null;

            progress?.Report(new JobProgress(JobPhase.Aligning, 0.1, $"{section.Method} to {section.Reference}"));
            if (section.Method == AlignmentSection.ActivationMatching)
            {
                if (data is null) throw CloudSoupException.Recipe("alignment.method", "activation_matching needs evaluation.data");
                result = await Task.Run(() => AlignByActivations(recipe.Evaluation!.Model, spec, originals, refIndex, data.Inputs, ct), ct).ConfigureAwait(false);
            }
            else
            {
                result = await Aligner.AlignAsync(originals, refIndex, spec, section.Seed, section.MaxIter, ct).ConfigureAwait(false);
            }

            var models = new List<AlignedModel>();
            for (int i = 0; i < inputs.Count; i++)
            {
                ct.ThrowIfCancellationRequested();
                var pm = result.PerModel[i];
                int moved = pm.Permutations.Values.Sum(p => p.Where((v, k) => v != k).Count());
                AlignmentPath? path = null;
                if (i != refIndex && evalModel != null && data != null)
                {
                    progress?.Report(new JobProgress(JobPhase.Aligning, 0.5 + 0.5 * i / inputs.Count, $"interpolation path to {inputs[i].Reference}"));
                    var naive = Path(evalModel, data, recipe.Evaluation!.BatchSize, originals[refIndex], originals[i], section.PathPoints);
                    var aligned = Path(evalModel, data, recipe.Evaluation!.BatchSize, result.Models[refIndex], result.Models[i], section.PathPoints);
                    path = new AlignmentPath(naive, aligned);
                }
                models.Add(new AlignedModel(inputs[i].Reference, i == refIndex, pm.Objective, pm.Sweeps, moved, path));
            }
            var sizes = spec.Validate(Permutations.Shapes(originals[refIndex]), section.Reference);
            var warnings = new List<string>();
            // The merged model's BatchNorm statistics are re-estimated by the job (evaluation.reset_bn); the
            // interpolation paths measured here use the permuted statistics as they are, so say so.
            if (originals[refIndex].Keys.Any(k => k.EndsWith("running_mean", StringComparison.Ordinal)))
                warnings.Add(recipe.ResetsBatchNorm
                    ? "the models have BatchNorm running statistics: the merged model's are re-estimated on the evaluation data (reset_bn), but the interpolation paths use interpolated statistics, so their midpoints can look worse than the merge"
                    : "the models have BatchNorm running statistics and reset_bn is off: the merged model keeps the merged statistics, which can cost accuracy");
            var report = new AlignmentReport(section.Method, section.Spec, section.Reference, sizes, sw.Elapsed.TotalSeconds, models, warnings);
            return new AlignmentOutcome(result.Models.ToList(), report);
        }
        catch
        {
            if (result != null) foreach (var d in result.Models) foreach (var t in d.Values) t.Dispose();
            throw;
        }
        finally
        {
            foreach (var d in originals) foreach (var t in d.Values) t.Dispose();
        }
    }

    /// <summary>Alignment holds every model twice (as read and permuted), plus a float64 working copy of one pair.</summary>
    private static void CheckMemory(IReadOnlyList<Checkpoint> inputs)
    {
        long need = 2 * inputs.Sum(c => c.TotalBytes) + 4 * inputs.Max(c => c.TotalBytes);
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (available > 0 && need > available * 3 / 4)
            throw new CloudSoupException(ErrorKind.IncompatibleModels,
                $"alignment loads every model into memory: about {need >> 20} MiB needed but only {available >> 20} MiB available; drop alignment or use fewer/smaller models", "alignment");
    }

    private static async Task<PermutationSpec> LoadSpecAsync(string spec, ICheckpointStore store, IReadOnlyDictionary<string, long[]> shapes, CancellationToken ct)
    {
        if (BuiltinSpecs.Names.Contains(spec)) return BuiltinSpecs.ForName(spec, shapes);
        var bytes = await store.ReadAllAsync(spec, MaxSpecBytes, ct).ConfigureAwait(false);
        return PermutationSpec.ParseJson(System.Text.Encoding.UTF8.GetString(bytes));
    }

    private static AlignmentResult AlignByActivations(string architecture, PermutationSpec spec, IReadOnlyList<Dictionary<string, torch.Tensor>> models, int refIndex,
        torch.Tensor inputs, CancellationToken ct)
    {
        var sizes = spec.Validate(Permutations.Shapes(models[refIndex]), "the reference model");
        var aligned = new List<Dictionary<string, torch.Tensor>>();
        var per = new List<ModelAlignment>();
        try
        {
            for (int i = 0; i < models.Count; i++)
            {
                if (i == refIndex)
                {
                    aligned.Add(models[i].ToDictionary(kv => kv.Key, kv => kv.Value.alias()));
                    per.Add(new ModelAlignment(i, Permutations.Identity(sizes), [], 0));
                    continue;
                }
                var match = ActivationMatching.Match(architecture, spec, models[refIndex], models[i], inputs, cancellationToken: ct);
                aligned.Add(Permutations.Apply(spec, match.Permutations, models[i]));
                per.Add(new ModelAlignment(i, match.Permutations, match.Objective, match.Sweeps));
            }
        }
        catch
        {
            foreach (var d in aligned) foreach (var t in d.Values) t.Dispose();
            throw;
        }
        return new AlignmentResult(aligned, per);
    }

    /// <summary>Evaluates (1−λ)a + λb on the grid; integer buffers come from a.</summary>
    public static LossBarrierResult Path(IEvalModel model, EvalData data, int batchSize, IReadOnlyDictionary<string, torch.Tensor> a,
        IReadOnlyDictionary<string, torch.Tensor> b, int points)
    {
        // Loading once outside the per-λ dispose scope: a model that keeps its first weights (builtin) must
        // not have them freed with the scope.
        model.LoadWeights(a, "the reference");
        return LossBarrier.Measure(lambda =>
        {
            using var scope = torch.NewDisposeScope();
            using var noGrad = torch.no_grad();
            var mix = a.ToDictionary(kv => kv.Key, kv => kv.Value.is_floating_point()
                ? kv.Value.to_type(torch.ScalarType.Float32) * (1 - lambda) + b[kv.Key].to_type(torch.ScalarType.Float32) * lambda
                : kv.Value);
            model.LoadWeights(mix, $"interpolation λ={lambda:0.##}");
            var m = Evaluator.Evaluate(model, data, batchSize);
            return (m.Loss, m.Accuracy);
        }, points);
    }
}
