// The alignment step of a merge job (recipe `alignment:`, docs/alignment.md): load every input fully, permute
// each one's hidden units to match the reference (Git Re-Basin weight or activation matching), and — when the
// job evaluates — measure loss and accuracy along the straight path from the reference to each model, as
// trained and after alignment (the loss barrier of Git Re-Basin, arXiv 2209.04836; docs/alignment.md). The merge then reads
// the aligned tensors through MergePlan.InputOverrides, so every merge method works on aligned models. A split job
// (docs/fanout.md) finds the permutations once in its first stage; each part permutes the tensors it reads by them
// (MergePlan.InputTransform), the same gathers Permutations.Apply makes, so no part loads a model whole.
using System.Diagnostics;
using CloudSoup.Engine.Alignment;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Merging;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Storage;
using TorchSharp;

namespace CloudSoup.Engine.Jobs.Steps;

/// <summary>
/// What alignment found, all a split job's parts need to merge as the whole job would (its first stage,
/// docs/fanout.md): the spec it applied (PermutationSpec's JSON form), every input's index vector per permutation of
/// the spec (in input order; identity for the reference), and the report section.
/// </summary>
public sealed record AlignmentDecision(string Spec, IReadOnlyList<IReadOnlyDictionary<string, int[]>> Permutations, AlignmentReport Report);

/// <summary>
/// The aligned state dicts (one per input, in input order; none when a split job's parts permuted the tensors as they
/// read them) and what alignment decided. Owns the tensors.
/// </summary>
public sealed class AlignmentOutcome(IReadOnlyList<Dictionary<string, torch.Tensor>> aligned, AlignmentDecision decision) : IDisposable
{
    public IReadOnlyList<Dictionary<string, torch.Tensor>> Aligned { get; } = aligned;
    public AlignmentDecision Decision { get; } = decision;
    public AlignmentReport Report => Decision.Report;

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
            return new AlignmentOutcome(result.Models.ToList(), new AlignmentDecision(spec.ToJson(), result.PerModel.Select(m => m.Permutations).ToList(), report));
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

    /// <summary>
    /// Finds the permutations and the report as <see cref="RunAsync(JobContext)"/> does, keeping none of the aligned
    /// models (what a split job's first stage stores for its parts, docs/fanout.md).
    /// </summary>
    public static async Task<AlignmentDecision> MeasureAsync(JobContext job)
    {
        using var outcome = await RunAsync(job.Recipe.Alignment!, job.PlanRecipe, job.Store, job.Models, job.Inputs, job.Progress, job.Ct).ConfigureAwait(false);
        return outcome.Decision;
    }

    /// <summary>
    /// The plan permuting every input's tensors as they are read by <paramref name="decision"/>'s index vectors: the
    /// tensors a whole job merges from its aligned models (the same index_select gathers), without loading any model
    /// whole. The decision is checked against the plan first: one set per input, an index vector for each permutation of
    /// the spec and no other, each a permutation of as many units as the input's tensors have.
    /// </summary>
    public static MergePlan Apply(MergePlan plan, AlignmentDecision decision)
    {
        var spec = StoredSpec(decision.Spec);
        var perms = CheckedPermutations(plan, spec, decision.Permutations);
        var previous = plan.InputTransform;
        torch.Tensor Transform(int input, string name, torch.Tensor t)
        {
            var x = t;
            if (perms[input] is { } p && spec.PermsOf(name) is { Count: > 0 } axes)
            {
                // Index tensors per read: the plan's reads run in parallel, and these belong to the reader's dispose scope.
                var index = axes.Select(a => a.Perm).Distinct().ToDictionary(n => n, n => Permutations.IndexTensor(p[n]), StringComparer.Ordinal);
                x = Permutations.Permute(t, axes, index, exceptAxis: -1);
            }
            if (previous is null) return x;
            var r = previous(input, name, x);
            if (!ReferenceEquals(r, x) && !ReferenceEquals(x, t)) x.Dispose();
            return r;
        }
        return plan with { InputTransform = Transform };
    }

    private static PermutationSpec StoredSpec(string? json)
    {
        if (string.IsNullOrEmpty(json)) throw new InvalidDataException("the first stage's alignment has no permutation spec");
        try { return PermutationSpec.ParseJson(json); }
        catch (CloudSoupException e) { throw new InvalidDataException($"the first stage's permutation spec is invalid ({e.Message})"); }
    }

    /// <summary>Each input's index vectors, checked against the plan; null for an input they leave as it is (the reference).</summary>
    private static IReadOnlyDictionary<string, int[]>?[] CheckedPermutations(MergePlan plan, PermutationSpec spec, IReadOnlyList<IReadOnlyDictionary<string, int[]>?>? stored)
    {
        if (stored is null || stored.Count != plan.Inputs.Count)
            throw new InvalidDataException($"the first stage holds permutations for {stored?.Count ?? 0} models, but the job aligns {plan.Inputs.Count}");
        var result = new IReadOnlyDictionary<string, int[]>?[stored.Count];
        for (int i = 0; i < stored.Count; i++)
        {
            var input = plan.Inputs[i];
            var shapes = input.TensorNames.ToDictionary(n => n, n => input.Entry(n).Shape, StringComparer.Ordinal);
            var sizes = spec.Validate(shapes, input.Reference);
            var perms = stored[i] ?? throw new InvalidDataException($"the first stage holds no permutations for model {i + 1} ({input.Reference})");
            if (perms.Count != spec.Names.Count || spec.Names.Any(n => !perms.ContainsKey(n)))
                throw new InvalidDataException($"the first stage holds {perms.Count} permutations for {input.Reference}, not one for each of the spec's {spec.Names.Count}");
            bool identity = true;
            foreach (var name in spec.Names)
            {
                var p = perms[name] ?? throw new InvalidDataException($"the first stage's permutation '{name}' of {input.Reference} is null");
                if (p.Length != sizes[name])
                    throw new CloudSoupException(ErrorKind.IncompatibleModels,
                        $"the first stage's permutation '{name}' of {input.Reference} has {p.Length} indices, but the model now has {sizes[name]} units there (did an input change while the job ran?)");
                if (!Permutations.IsPermutation(p))
                    throw new InvalidDataException($"the first stage's permutation '{name}' of {input.Reference} is not a permutation of 0..{p.Length - 1}");
                identity &= Permutations.IsIdentity(p);
            }
            result[i] = identity ? null : perms;
        }
        return result;
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
