using CloudSoup.Control.Methods;
using CloudSoup.Engine.Merging;
using TorchSharp;

namespace CloudSoup.Engine.Soups;

/// <summary>The weighted average a soup search decided on: one coefficient per model, optionally per tensor.</summary>
internal sealed class SoupWeights(MethodSignature soup, IReadOnlyDictionary<string, double> perModel, IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>>? perTensor) : IMergeMethod
{
    public MethodSignature Signature => soup;

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var table = perTensor != null && perTensor.TryGetValue(input.TensorName, out var t) ? t : perModel;
        var weights = input.ModelIds.Select(id => table.GetValueOrDefault(id)).ToArray();
        return Merging.Methods.Linear.WeightedSum(input.TensorName, input.Tensors, weights, normalize: true);
    }
}
