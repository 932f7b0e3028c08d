// karcher: the Riemannian (Karcher) mean of the inputs' directions on the unit sphere, scaled by their mean
// norm (mergekit/merge_methods/karcher.py). Equal weights; a base model is just one more input.
using CloudSoup.Control.Methods;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class Karcher : IMergeMethod
{
    public MethodSignature Signature => GeometricMethods.Karcher;

    public torch.Tensor Merge(TensorMergeInput input)
    {
        int maxIter = (int)input.Global.Number("max_iter");
        double tol = input.Global.Number("tol");
        int n = input.Tensors.Count;
        using var scope = torch.NewDisposeScope();
        var xs = input.Tensors.Select(x => x.flatten()).ToList();
        var norms = xs.Select(x => x.norm().ToDouble()).ToArray();
        var valid = Enumerable.Range(0, n).Where(i => norms[i] > tol).ToList();
        if (valid.Count == 0) return torch.zeros_like(input.Tensors[0]).MoveToOuterDisposeScope();
        var us = valid.Select(i => xs[i] / norms[i]).ToList();
        double a = 1.0 / valid.Count;
        var u = torch.zeros_like(us[0]);
        foreach (var ui in us) u.add_(ui, alpha: a);
        double un = u.norm().ToDouble();
        u = un < tol ? us[0].clone() : u / un;
        for (int it = 0; it < maxIter; it++)
        {
            var T = torch.zeros_like(u);
            foreach (var ui in us)
            {
                double c = Math.Clamp((u * ui).sum().ToDouble(), -1, 1), th = Math.Acos(c);
                if (th < tol) continue;
                T.add_(ui - c * u, alpha: a * th / Math.Sin(th));
            }
            double tn = T.norm().ToDouble();
            if (tn < tol) break;
            u = Math.Cos(tn) * u + Math.Sin(tn) / tn * T;
            u = u / u.norm();
        }
        return (norms.Average() * u).reshape(input.Tensors[0].shape).MoveToOuterDisposeScope();
    }
}
