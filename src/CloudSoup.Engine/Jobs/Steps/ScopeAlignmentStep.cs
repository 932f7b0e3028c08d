// The `scope_alignment` step of a job (Alignment/WeightScope.cs for the math). One read pass over the layers:
// per layer, every model's scope is measured, the target fused, and each model's re-scoped layer measured again
// for the report. The merge then re-scopes each tensor as it is read (MergePlan.InputTransform), so no model is
// ever held in memory. The base model is left as it is: task vectors are differences from it. Runs after
// permutation alignment (a permutation does not change a layer's scope).
using CloudSoup.Engine.Alignment;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Merging;
using CloudSoup.Control.Recipes;
using TorchSharp;

namespace CloudSoup.Engine.Jobs.Steps;

public sealed record ScopeModel(string Model, Scope Before, Scope After);

public sealed record ScopeLayer(string Tensor, Scope Target, IReadOnlyList<ScopeModel> Models);

/// <summary>One input's measured scope of one tensor (the source of its re-scoping).</summary>
public sealed record InputScope(int Input, string Tensor, Scope Scope);

/// <summary>What the read pass found: every re-scoped input's scope per tensor, the fused target per tensor, the report section.</summary>
public sealed record ScopeDecision(IReadOnlyList<InputScope> From, IReadOnlyDictionary<string, Scope> To, ScopeReport Report);

/// <summary>report.json's scope_alignment section: each layer's scope per model before and after, and the target.</summary>
public sealed record ScopeReport(string Fusion, string Layers, IReadOnlyList<string> Models, IReadOnlyList<double> Weights, IReadOnlyList<ScopeLayer> Tensors);

/// <summary>With a scope_alignment section: re-scopes every model but the base to the fused per-layer scope while it is read.</summary>
public sealed class ScopeAlignmentStep : IJobStep
{
    public string Phase => JobPhase.ScopeAlignment;

    public bool AppliesTo(JobContext job) => job.Recipe.ScopeAlignment != null;

    public async Task RunAsync(JobContext job) =>
        (job.Plan, job.ScopeAlignment) = await RunAsync(job.Plan, job.Recipe.ScopeAlignment!, job.Progress, job.Ct).ConfigureAwait(false);

    public static async Task<(MergePlan Plan, ScopeReport Report)> RunAsync(MergePlan plan, ScopeAlignmentSection section, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        var decision = await MeasureAsync(plan, section, progress, ct).ConfigureAwait(false);
        return (Apply(plan, section, decision), decision.Report);
    }

    /// <summary>
    /// The read pass: every re-scoped model's scope per layer and the fused targets (what a split job's first stage
    /// stores for its parts, docs/fanout.md), with the report.
    /// </summary>
    public static async Task<ScopeDecision> MeasureAsync(MergePlan plan, ScopeAlignmentSection section, IProgress<JobProgress>? progress, CancellationToken ct)
    {
        var rescoped = Enumerable.Range(0, plan.Inputs.Count).Where(i => i != plan.BaseIndex).ToList();
        if (rescoped.Count < 2) throw CloudSoupException.Recipe("scope_alignment", "needs at least two models besides the base model");
        var weights = rescoped.Select(i => section.Weights is { } w && i < w.Count ? w[i] : 1.0).ToList();
        var layers = plan.Tensors.Where(t => t.Merge && (section.Layers == "all" || t.Shape.Length >= 2)).ToList();
        if (layers.Count == 0)
            throw CloudSoupException.Recipe("scope_alignment.layers", section.Layers == "all" ? "the models have no floating-point tensors" : "the models have no weight matrices (2+ dimensions); use layers: all");

        var from = new List<InputScope>();
        var to = new Dictionary<string, Scope>(StringComparer.Ordinal);
        var report = new List<ScopeLayer>();
        int done = 0;
        foreach (var task in layers)
        {
            ct.ThrowIfCancellationRequested();
            var present = rescoped.Where(task.Sources.Contains).ToList();
            using var owned = new OwnedTensors();
            var read = await plan.ReadInputsAsync(present, task.Name, owned, ct).ConfigureAwait(false);
            var tensors = present.Select((input, k) => (input, k)).ToDictionary(p => p.input, p => read[p.k]);
            using var scope = torch.NewDisposeScope();   // synchronous from here (see OwnedTensors)
            var before = present.ToDictionary(i => i, i => WeightScope.Measure(tensors[i], 0));
            var target = WeightScope.Fuse(present.Select(i => before[i]).ToList(), present.Select(i => weights[rescoped.IndexOf(i)]).ToList(), section.Fusion);
            to[task.Name] = target;
            var models = new List<ScopeModel>();
            foreach (int i in present)
            {
                from.Add(new InputScope(i, task.Name, before[i]));
                var after = WeightScope.Measure(WeightScope.Rescope(tensors[i], before[i], target, section.Eps), 0);
                models.Add(new ScopeModel(plan.Inputs[i].Reference, before[i], after));
            }
            report.Add(new ScopeLayer(task.Name, target, models));
            done++;
            progress?.Report(new JobProgress(JobPhase.ScopeAlignment, (double)done / layers.Count, $"{done}/{layers.Count} layers"));
        }
        return new ScopeDecision(from, to, new ScopeReport(section.Fusion, section.Layers, rescoped.Select(i => plan.Inputs[i].Reference).ToList(), weights, report));
    }

    /// <summary>The plan re-scoping each tensor as it is read, by <paramref name="decision"/>'s measured scopes and targets.</summary>
    public static MergePlan Apply(MergePlan plan, ScopeAlignmentSection section, ScopeDecision decision)
    {
        var from = decision.From.ToDictionary(f => (f.Input, f.Tensor), f => f.Scope);
        var to = decision.To;
        var previous = plan.InputTransform;
        torch.Tensor Transform(int input, string name, torch.Tensor t)
        {
            var x = previous is null ? t : previous(input, name, t);
            if (!to.TryGetValue(name, out var target) || !from.TryGetValue((input, name), out var source)) return x;
            var r = WeightScope.Rescope(x, source, target, section.Eps);
            if (!ReferenceEquals(x, t)) x.Dispose();
            return r;
        }
        return plan with { InputTransform = Transform };
    }
}
