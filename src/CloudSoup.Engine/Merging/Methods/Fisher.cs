// fisher: Fisher-weighted averaging (Matena & Raffel 2021, arXiv 2111.09832; official code mmatena/model_merging; docs/methods.md):
//   θ*_j = Σ_i c_i F̃_ij θ_ij / Σ_i c_i F̃_ij,  F̃ = max(F, floor),  c_i = weight_i (/‖F_i‖₂ with normalize_fishers).
// favor_target (the official default) floors only the first model's Fisher, so where every Fisher is zero the
// result is the first model's value rather than the plain mean. Each model's diagonal Fisher is a safetensors
// checkpoint with the model's keys, named per model by `parameters: {fisher: REF}`.
// Difference from the official code: ‖F_i‖₂ is taken over this tensor, not over the whole model (the per-tensor
// executor has no whole-model pass yet), so normalize_fishers rebalances models per tensor.
using CloudSoup.Control.Methods;
using CloudSoup.Control.Errors;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class Fisher : IMergeMethod
{
    public MethodSignature Signature => PaperMethods.Fisher;

    public torch.Tensor Merge(TensorMergeInput input)
    {
        int n = input.Tensors.Count;
        var fishers = Enumerable.Range(0, n).Select(i => input.Aux(i, "fisher")).ToList();
        var weights = input.PerModel.Select(p => p.Number("weight")).ToList();
        return Average(input.Tensors, fishers, weights, input.Global.Number("floor"), input.Global.Bool("normalize_fishers"), input.Global.Bool("favor_target"));
    }

    public static torch.Tensor Average(IReadOnlyList<torch.Tensor> models, IReadOnlyList<torch.Tensor> fishers, IReadOnlyList<double> weights,
        double floor, bool normalize, bool favorTarget)
    {
        using var scope = torch.NewDisposeScope();
        var num = torch.zeros_like(models[0]);
        var den = torch.zeros_like(models[0]);
        for (int i = 0; i < models.Count; i++)
        {
            var f = fishers[i].to_type(models[0].dtype);
            double c = weights[i];
            if (normalize)
            {
                double norm = f.norm().ToDouble();
                c = norm > 0 ? c / norm : 0;
            }
            var ft = !favorTarget || i == 0 ? f.clamp_min(floor) : f;
            num.add_(ft * models[i], alpha: c);
            den.add_(ft, alpha: c);
        }
        return (num / den).MoveToOuterDisposeScope();
    }
}
