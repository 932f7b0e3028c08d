// multislerp: barycentric spherical interpolation of any number of models (mergekit/merge_methods/multislerp.py).
// Not equal to slerp for two models: do not simplify one into the other.
using CloudSoup.Control.Methods;
using CloudSoup.Control.Errors;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class MultiSlerp : IMergeMethod
{
    public MethodSignature Signature => GeometricMethods.MultiSlerp;

    public torch.Tensor Merge(TensorMergeInput input)
    {
        double eps = input.Global.Number("eps");
        var idx = Enumerable.Range(0, input.Tensors.Count).Where(i => i != input.BaseIndex).ToArray();
        var w = idx.Select(i => input.PerModel[i].Number("weight")).ToArray();
        if (input.Global.Bool("normalize_weights")) { double s = w.Sum(); w = w.Select(x => x / s).ToArray(); }
        using var scope = torch.NewDisposeScope();
        var xs = idx.Select(i => (input.Base is { } b ? input.Tensors[i] - b : input.Tensors[i]).flatten()).ToList();
        var norms = xs.Select(x => x.norm().ToDouble()).ToArray();
        var us = xs.Select((x, i) => x / (norms[i] + eps)).ToList();
        var m = torch.zeros_like(us[0]);
        for (int i = 0; i < us.Count; i++) m.add_(us[i], alpha: w[i]);
        double mn = m.norm().ToDouble();
        torch.Tensor result;
        if (mn < eps)
        {
            if (xs.Count != 2)
                throw new CloudSoupException(ErrorKind.IncompatibleModels, $"multislerp: the inputs of '{input.TensorName}' are antipodal; their spherical mean is undefined");
            result = w[0] * xs[0] + w[1] * xs[1];
        }
        else
        {
            m = m / mn;
            var tangent = torch.zeros_like(m);
            for (int i = 0; i < us.Count; i++) tangent.add_(us[i] - (us[i] * m).sum() * m, alpha: w[i]);
            double tn = tangent.norm().ToDouble() + eps;
            var onSphere = Math.Cos(tn) * m + Math.Sin(tn) / tn * tangent;
            result = w.Zip(norms, (a, n) => a * n).Sum() * onSphere;
        }
        result = result.reshape(input.Tensors[idx[0]].shape);
        if (input.Base is { } bb) result = result + bb;
        return result.MoveToOuterDisposeScope();
    }
}
