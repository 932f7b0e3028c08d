// gradient_matching: uncertainty-based gradient matching (Daheim et al., arXiv 2310.12808;
// official code UKPLab/iclr2024-model-merging code/uncertainty_based_gradient_matching.py; docs/methods.md),
// element-wise with diagonal precisions:
//   H_0 = base_scale·F̂_0 + delta_0,  H_t = scale_t·F̂_t,  α_t = lambda·weight_t,  H̄ = H_0 + Σ_s α_s H_s
//   θ = θ0 + Σ_t α_t (H_0 + H_t)/H̄ ⊙ (θ_t − θ0)
// α_t multiplies H_t inside H̄ and the whole term, not the H_t in (H_0 + H_t) (as in the official code).
// Limits: H_t → 0 gives task arithmetic; H_0 → 0 gives Fisher averaging of the fine-tunes (no normalisation).
// Where H̄ = 0 (no Fisher anywhere and delta_0 = 0) the base value is kept instead of 0/0.
using CloudSoup.Control.Methods;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class GradientMatching : IMergeMethod
{
    public MethodSignature Signature => PaperMethods.GradientMatching;

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var b = input.Base!;
        using var scope = torch.NewDisposeScope();
        var h0 = input.GlobalAuxiliary.TryGetValue("base_fisher", out var f0)
            ? f0.to_type(b.dtype) * input.Global.Number("base_scale") + input.Global.Number("delta_0")
            : torch.full_like(b, input.Global.Number("delta_0"));
        var idx = Enumerable.Range(0, input.Tensors.Count).Where(i => i != input.BaseIndex).ToList();
        double lambda = input.Global.Number("lambda");
        var tasks = idx.Select(i => (Theta: input.Tensors[i], H: input.Aux(i, "fisher").to_type(b.dtype) * input.PerModel[i].Number("scale"),
            Alpha: lambda * input.PerModel[i].Number("weight"))).ToList();
        return Combine(b, h0, tasks).MoveToOuterDisposeScope();
    }

    public static torch.Tensor Combine(torch.Tensor theta0, torch.Tensor h0, IReadOnlyList<(torch.Tensor Theta, torch.Tensor H, double Alpha)> tasks)
    {
        using var scope = torch.NewDisposeScope();
        var hbar = h0.clone();
        foreach (var t in tasks) hbar.add_(t.H, alpha: t.Alpha);
        var step = torch.zeros_like(theta0);
        foreach (var t in tasks) step.add_((h0 + t.H) * (t.Theta - theta0), alpha: t.Alpha);
        var result = torch.where(hbar == 0, theta0, theta0 + step / hbar);
        return result.MoveToOuterDisposeScope();
    }
}
