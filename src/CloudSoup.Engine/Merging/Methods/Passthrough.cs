// passthrough: copies the single input, optionally scaled (mergekit/merge_methods/passthrough.py). mergekit uses it with
// `slices` for layer-stacking "frankenmerges": then every slice has one source and the job merges one virtual
// model stacked from them (Merging/SliceLayout.cs).
using CloudSoup.Control.Methods;
using CloudSoup.Control.Recipes;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class Passthrough : IMergeMethod
{
    public MethodSignature Signature => AveragingMethods.Passthrough;

    public torch.Tensor Merge(TensorMergeInput input)
    {
        double scale = input.PerModel[0].NumberOrNull("scale") ?? 1.0;
        return scale == 1 ? input.Tensors[0].clone() : input.Tensors[0] * scale;
    }
}
