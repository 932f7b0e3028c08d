// The generalized task-arithmetic pipeline shared by task_arithmetic, ties, dare_*, breadcrumbs* and della*
// (mergekit/merge_methods/generalized_task_arithmetic.py; docs/methods.md), per tensor:
//   δ_i = x_i − b → sparsify (own density) → optional rescale → Δ_i = w_i·δ_i
//   → optional sign consensus (TIES: s = sign Σ Δ_i, ties to +; keep Δ_i whose sign equals s)
//   → mixed = Σ Δ_i, divided by Σ w_i of the contributors when `normalize` (TIES dis-mean; false = dis-sum)
//   → b + λ·mixed.
using CloudSoup.Core.Errors;
using CloudSoup.Core.Recipes;
using TorchSharp;

namespace CloudSoup.Core.Merging;

public enum SparsifyKind { None, Magnitude, Random, MagnitudeOutliers, DellaMagprune }

public abstract class TaskArithmeticFamily : IMergeMethod
{
    private readonly IMaskProvider _masks;

    protected TaskArithmeticFamily(IMaskProvider? masks) => _masks = masks ?? SeededMaskProvider.Instance;

    public abstract string Name { get; }
    public abstract string Description { get; }
    protected abstract SparsifyKind Sparsify { get; }
    protected abstract bool SignConsensus { get; }
    protected abstract bool DefaultNormalize { get; }
    protected abstract bool DefaultRescale { get; }

    public BaseModelUse BaseModel => BaseModelUse.Required;

    /// <summary>
    /// topk_scope: model — each model's |δ| threshold over the whole model (TopKPrepass), by model reference;
    /// magnitude trimming then keeps |δ| ≥ threshold (the official TIES rule) instead of a per-tensor top-k.
    /// </summary>
    public IReadOnlyDictionary<string, double>? ModelThresholds { get; init; }

    /// <summary>True when the recipe asks for whole-model top-k and the thresholds are not known yet.</summary>
    public bool NeedsPrepass(MergePlan plan) =>
        Sparsify == SparsifyKind.Magnitude && ModelThresholds is null && plan.Tensors.Any(t => t.Merge && WholeModelTopK(t.Global));

    public static bool WholeModelTopK(ResolvedParameters global) =>
        global.Values.TryGetValue("topk_scope", out var v) && v.Text == "model";
    public int MinModels => 2;

    public IReadOnlyList<ParameterSpec> Parameters => _parameters ??= BuildParameters();
    private IReadOnlyList<ParameterSpec>? _parameters;

    private List<ParameterSpec> BuildParameters()
    {
        var p = new List<ParameterSpec>
        {
            new("weight", ParameterKind.Number, PerModel: true, Required: true, Help: "the task vector's weight"),
            new("density", ParameterKind.Number, PerModel: true, Default: 1.0, Min: 0, MinExclusive: true, Max: 1, Help: "fraction of the task vector kept"),
            new("normalize", ParameterKind.Bool, PerModel: false, Default: DefaultNormalize, Help: "divide by the summed weights of the contributing models"),
            new("rescale", ParameterKind.Bool, PerModel: false, Default: DefaultRescale, Help: "rescale the sparsified task vector"),
            new("rescale_mode", ParameterKind.Text, PerModel: false, Default: "l1", Choices: ["l1", "inverse_density"],
                Help: "l1: match the L1 norm (mergekit); inverse_density: divide by the keep probability (DARE/DELLA papers)"),
            new("lambda", ParameterKind.Number, PerModel: false, Default: 1.0, Help: "scale of the merged task vector"),
            new("int8_mask", ParameterKind.Bool, PerModel: false, Default: false, Help: "accepted for mergekit compatibility; a memory option there, no effect here"),
        };
        if (Sparsify == SparsifyKind.Magnitude)
            p.Add(new("topk_scope", ParameterKind.Text, PerModel: false, Default: "tensor", Choices: ["tensor", "model"],
                Help: "tensor: top-k per tensor (mergekit); model: one magnitude threshold over each whole task vector (the TIES paper), one extra read pass"));
        if (Sparsify == SparsifyKind.MagnitudeOutliers)
            p.Add(new("gamma", ParameterKind.Number, PerModel: true, Default: 0.01, Min: 0, Max: 1, Help: "fraction of the largest entries removed"));
        if (Sparsify == SparsifyKind.DellaMagprune)
            p.Add(new("epsilon", ParameterKind.Number, PerModel: true, Default: 0.15, Min: 0, Help: "half-width of the keep-probability range"));
        return p;
    }

    public (string Parameter, string Reason)? CheckResolved(ResolvedParameters global, ResolvedParameters perModel)
    {
        double density = perModel.NumberOrNull("density") ?? 1.0;
        if (Sparsify == SparsifyKind.DellaMagprune && density < 1)
        {
            double eps = perModel.NumberOrNull("epsilon") ?? 0.15;
            if (density - eps <= 0 || density + eps >= 1)
                return ("epsilon", $"density ± epsilon must lie inside (0, 1), got {density} ± {eps}");
        }
        if (Sparsify == SparsifyKind.MagnitudeOutliers && (perModel.NumberOrNull("gamma") ?? 0.01) + density > 1)
            return ("gamma", $"gamma + density must be <= 1, got {perModel.NumberOrNull("gamma")} + {density}");
        return null;
    }

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var b = input.Base ?? throw new CloudSoupException(ErrorKind.InvalidRecipe, $"{Name} needs a base_model", "base_model");
        bool rescale = input.Global.Bool("rescale");
        var mode = input.Global.Text("rescale_mode") == "inverse_density" ? RescaleMode.InverseDensity : RescaleMode.L1;
        using var scope = torch.NewDisposeScope();
        var deltas = new List<torch.Tensor>();
        var weights = new List<double>();
        for (int i = 0; i < input.Tensors.Count; i++)
        {
            if (i == input.BaseIndex) continue;
            var pm = input.PerModel[i];
            var delta = input.Tensors[i] - b;
            deltas.Add(SparsifyOne(delta, pm, input, i, rescale, mode));
            weights.Add(pm.Number("weight"));
        }
        if (deltas.Count == 0) return b.clone().MoveToOuterDisposeScope();
        var mixed = Combine(deltas, weights, SignConsensus, input.Global.Bool("normalize"));
        double lambda = input.Global.Number("lambda");
        if (lambda != 1) mixed = mixed * lambda;
        return (b + mixed).MoveToOuterDisposeScope();
    }

    private torch.Tensor SparsifyOne(torch.Tensor delta, ResolvedParameters pm, TensorMergeInput input, int modelIndex, bool rescale, RescaleMode mode)
    {
        double density = pm.NumberOrNull("density") ?? 1.0;
        switch (Sparsify)
        {
            case SparsifyKind.Magnitude:
                torch.Tensor kept;
                if (ModelThresholds != null)
                    kept = delta * (delta.abs() >= ModelThresholds[input.ModelIds[modelIndex]]).to_type(delta.dtype);
                else if (WholeModelTopK(input.Global))
                    throw new InvalidOperationException($"{Name} with topk_scope: model needs the job's pre-pass (TopKPrepass)");
                else
                    kept = Sparsifiers.Magnitude(delta, density);
                return rescale && density < 1 ? RescaleDeterministic(delta, kept, density, mode) : kept;
            case SparsifyKind.MagnitudeOutliers:
                var crumbs = Sparsifiers.MagnitudeOutliers(delta, density, pm.Number("gamma"));
                return rescale ? RescaleDeterministic(delta, crumbs, density, mode) : crumbs;
            case SparsifyKind.Random:
            case SparsifyKind.DellaMagprune:
                if (density >= 1) return delta;   // nothing to drop (mergekit skips sparsification too)
                var p = Sparsify == SparsifyKind.Random
                    ? Sparsifiers.DareProbabilities(delta, density)
                    : Sparsifiers.DellaProbabilities(delta, density, pm.Number("epsilon"));
                var mask = _masks.KeepMask(p, input, modelIndex);
                return Sparsifiers.ApplyMask(delta, mask, p, rescale, mode);
            default:
                return delta;
        }
    }

    private static torch.Tensor RescaleDeterministic(torch.Tensor delta, torch.Tensor kept, double density, RescaleMode mode) =>
        mode == RescaleMode.InverseDensity ? kept / density : Sparsifiers.MatchL1(delta, kept);

    /// <summary>Weights, optionally elects signs, sums and normalizes (steps 3–6 of the pipeline).</summary>
    public static torch.Tensor Combine(IReadOnlyList<torch.Tensor> deltas, IReadOnlyList<double> weights, bool signConsensus, bool normalize)
    {
        using var scope = torch.NewDisposeScope();
        var weighted = deltas.Select((d, i) => d * weights[i]).ToList();
        torch.Tensor mixed, divisor;
        if (signConsensus)
        {
            var sum = torch.stack(weighted).sum(dim: 0);
            var elected = torch.where(sum >= 0, 1.0, -1.0).to_type(sum.dtype);
            mixed = torch.zeros_like(sum);
            divisor = torch.zeros_like(sum);
            for (int i = 0; i < weighted.Count; i++)
            {
                var agree = (weighted[i].sign() == elected).to_type(sum.dtype);
                mixed.add_(weighted[i] * agree);
                divisor.add_(agree * weights[i]);
            }
            divisor = torch.where(divisor == 0, torch.ones_like(divisor), divisor);
        }
        else
        {
            mixed = torch.stack(weighted).sum(dim: 0);
            double total = weights.Sum();
            divisor = torch.full_like(mixed, Math.Abs(total) < 1e-8 ? 1.0 : total);
        }
        if (normalize) mixed = mixed / divisor;
        return mixed.MoveToOuterDisposeScope();
    }
}
