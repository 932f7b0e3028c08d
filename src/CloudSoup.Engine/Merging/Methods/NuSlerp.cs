// nuslerp: slerp with weights instead of t, optionally on task vectors and per row (mergekit/merge_methods/nuslerp.py).
// t = w2/(w1+w2) (0.5 when |w1+w2| < 1e-6); with a base model, b + slerp(x1 − b, x2 − b).
using CloudSoup.Control.Methods;
using CloudSoup.Control.Recipes;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class NuSlerp : IMergeMethod
{
    public MethodSignature Signature => GeometricMethods.NuSlerp;

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var idx = Enumerable.Range(0, input.Tensors.Count).Where(i => i != input.BaseIndex).ToArray();
        double w1 = input.PerModel[idx[0]].Number("weight"), w2 = input.PerModel[idx[1]].Number("weight");
        double t = Math.Abs(w1 + w2) < 1e-6 ? 0.5 : w2 / (w1 + w2);
        using var scope = torch.NewDisposeScope();
        var x1 = input.Tensors[idx[0]];
        var x2 = input.Tensors[idx[1]];
        if (input.Base is { } b) { x1 = x1 - b; x2 = x2 - b; }
        var r = Vectors(t, x1, x2, input.Global.Bool("nuslerp_flatten"), input.Global.Bool("nuslerp_row_wise"));
        if (input.Base is { } b2) r = r + b2;
        return r.MoveToOuterDisposeScope();
    }

    private static torch.Tensor Vectors(double t, torch.Tensor a, torch.Tensor b, bool flatten, bool rowWise)
    {
        if (flatten || a.dim() < 2) return Rows(t, a.reshape(1, -1), b.reshape(1, -1)).reshape(a.shape);
        if (rowWise)
            return Rows(t, a.transpose(0, -1).contiguous().reshape(-1, a.shape[0]), b.transpose(0, -1).contiguous().reshape(-1, a.shape[0]))
                .reshape(a.transpose(0, -1).shape).transpose(0, -1);
        return Rows(t, a.reshape(-1, a.shape[^1]), b.reshape(-1, a.shape[^1])).reshape(a.shape);
    }

    /// <summary>Slerp of each row of a with the same row of b (clamped norms, lerp where sin θ ≈ 0).</summary>
    private static torch.Tensor Rows(double t, torch.Tensor a, torch.Tensor b)
    {
        var ua = a / a.norm(dim: 1, keepdim: true).clamp_min(1e-7);
        var ub = b / b.norm(dim: 1, keepdim: true).clamp_min(1e-7);
        var theta = (ua * ub).sum(dim: 1, keepdim: true).clamp(-1, 1).acos();
        var s = theta.sin();
        var slerp = ((1 - t) * theta).sin() * a / s + (t * theta).sin() * b / s;
        var lerp = (1 - t) * a + t * b;
        return torch.where(s.abs() < 1e-8, lerp, slerp);
    }
}
