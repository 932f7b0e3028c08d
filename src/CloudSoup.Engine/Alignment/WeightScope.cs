// Weight scope alignment (WSA; Xu, Li, Gan, Zhan, ECAI 2024, arXiv 2408.12237; docs/alignment.md). A layer's "weight
// scope" is the mean and (population) standard deviation of its weights. Models trained under different
// conditions have mismatched scopes, which hurts averaging. CloudSoup fuses the models' scopes per layer into a
// target and re-scopes each model to it before any merge method runs:
//   fusion moment (default): μ* = Σ p_k μ_k,  σ*² = Σ p_k (σ_k² + μ_k²) − μ*²   (the mixture's moments)
//   fusion mean:             μ* = Σ p_k μ_k,  σ* = Σ p_k σ_k
//   re-scoping:              w' = μ* + (w − μ)·σ*/σ   (a layer with σ ≤ eps is only shifted: w' = w − μ + μ*)
// The paper's abstract describes scope regularisation during training and scope fusion; this data-free affine
// re-scoping of trained weights is CloudSoup's own assumption, not a claim of the paper.
using TorchSharp;

namespace CloudSoup.Engine.Alignment;

public readonly record struct Scope(double Mean, double Std);

public static class WeightScope
{
    /// <summary>Mean and population standard deviation (√(E[(w−μ)²] + eps)), in float64.</summary>
    public static Scope Measure(torch.Tensor w, double eps = 0)
    {
        using var scope = torch.NewDisposeScope();
        var d = w.to_type(torch.ScalarType.Float64);
        double mean = d.mean().ToDouble();
        double variance = (d - mean).square().mean().ToDouble();
        return new Scope(mean, Math.Sqrt(variance + eps));
    }

    /// <summary>The target scope of <paramref name="scopes"/> with weights <paramref name="p"/> (normalised to sum 1).</summary>
    public static Scope Fuse(IReadOnlyList<Scope> scopes, IReadOnlyList<double> p, string fusion)
    {
        double total = p.Sum();
        var w = p.Select(x => x / total).ToList();
        double mean = scopes.Select((s, k) => w[k] * s.Mean).Sum();
        if (fusion == "mean") return new Scope(mean, scopes.Select((s, k) => w[k] * s.Std).Sum());
        double second = scopes.Select((s, k) => w[k] * (s.Std * s.Std + s.Mean * s.Mean)).Sum();
        return new Scope(mean, Math.Sqrt(Math.Max(0, second - mean * mean)));
    }

    /// <summary>w' = μ* + (w − μ)·σ*/σ, in the tensor's dtype; only shifted when σ ≤ <paramref name="eps"/>.</summary>
    public static torch.Tensor Rescope(torch.Tensor w, Scope from, Scope to, double eps)
    {
        double scale = from.Std <= eps ? 1.0 : to.Std / from.Std;
        using var scope = torch.NewDisposeScope();
        var d = w.to_type(torch.ScalarType.Float64);
        return ((d - from.Mean) * scale + to.Mean).to_type(w.dtype).MoveToOuterDisposeScope();
    }
}
