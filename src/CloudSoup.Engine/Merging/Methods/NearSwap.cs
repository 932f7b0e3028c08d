// nearswap: ω = clamp(t / max(|b − x|, 1e-6), 0, 1), result = ω·x + (1−ω)·b (mergekit/merge_methods/nearswap.py):
// elements already close to the base are pulled all the way to the other model.
using CloudSoup.Control.Methods;
using CloudSoup.Control.Recipes;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class NearSwap : IMergeMethod
{
    public MethodSignature Signature => GeometricMethods.NearSwap;

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var b = input.Base!;
        var x = input.Tensors[input.BaseIndex == 0 ? 1 : 0];
        using var scope = torch.NewDisposeScope();
        var w = (input.Global.Number("t") / (b - x).abs().clamp_min(1e-6)).clamp(0, 1);
        return (w * x + (1 - w) * b).MoveToOuterDisposeScope();
    }
}
