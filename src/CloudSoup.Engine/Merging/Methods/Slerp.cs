// slerp: spherical interpolation of two flattened tensors (mergekit/merge_methods/slerp.py; worked examples in docs/methods.md).
// Coefficients come from the normalised vectors and multiply the original ones; |cos| > 0.9995 falls back to
// lerp. A near-zero vector is not normalised (mergekit's quirk, kept for compatibility and documented).
using CloudSoup.Control.Methods;
using CloudSoup.Control.Recipes;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class Slerp : IMergeMethod
{
    public MethodSignature Signature => GeometricMethods.Slerp;

    public const double DotThreshold = 0.9995, Eps = 1e-8;

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var other = input.Tensors[input.BaseIndex == 0 ? 1 : 0];
        return Interpolate(input.Global.Number("t"), input.Base!, other);
    }

    public static torch.Tensor Interpolate(double t, torch.Tensor v0, torch.Tensor v1)
    {
        using var scope = torch.NewDisposeScope();
        var a = v0.flatten().to_type(torch.ScalarType.Float64);
        var b = v1.flatten().to_type(torch.ScalarType.Float64);
        double na = a.norm().ToDouble(), nb = b.norm().ToDouble();
        var ua = na > Eps ? a / na : a;
        var ub = nb > Eps ? b / nb : b;
        double dot = (ua * ub).sum().ToDouble();
        torch.Tensor r;
        if (Math.Abs(dot) > DotThreshold) r = (1 - t) * a + t * b;
        else
        {
            double omega = Math.Acos(Math.Clamp(dot, -1, 1)), so = Math.Sin(omega);
            r = Math.Sin((1 - t) * omega) / so * a + Math.Sin(t * omega) / so * b;
        }
        return r.reshape(v0.shape).to_type(v0.dtype).MoveToOuterDisposeScope();
    }
}
