// linear: the weighted average Σ w_i x_i, divided by Σ w_i when `normalize` is true (mergekit's
// semantics, mergekit/merge_methods/linear.py). A uniform soup is linear with equal weights. Unlike mergekit,
// a zero weight sum with normalize=true is an error rather than inf/NaN output.
using CloudSoup.Control.Methods;
using CloudSoup.Control.Errors;
using TorchSharp;

namespace CloudSoup.Engine.Merging.Methods;

public sealed class Linear : IMergeMethod, INonFinitePropagating
{
    /// <summary>A zero weight skips its input; every other input is added to every element.</summary>
    public bool EveryInputReachesTheOutput(IReadOnlyList<ResolvedParameters> perModel, ResolvedParameters global) =>
        perModel.All(p => p.Number("weight") != 0);

    public MethodSignature Signature => AveragingMethods.Linear;

    /// <summary>False forces the tensor path (tests compare it with the fused kernel, FusedLinear).</summary>
    public bool Fused { get; init; } = true;

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var weights = input.PerModel.Select(p => p.Number("weight")).ToArray();
        return WeightedSum(input.TensorName, input.Tensors, weights, input.Global.Bool("normalize"), input.OutputBuffers, Fused);
    }

    internal static torch.Tensor WeightedSum(string tensorName, IReadOnlyList<torch.Tensor> tensors, double[] weights, bool normalize, OutputBuffers? buffers = null,
        bool fused = true)
    {
        double sum = weights.Sum();
        if (normalize && Math.Abs(sum) < 1e-12)
            throw new CloudSoupException(ErrorKind.InvalidRecipe, $"linear: the weights for tensor '{tensorName}' sum to zero, so normalize cannot divide by them (set normalize: false or change the weights)", "parameters.weight");
        if (fused && FusedLinear.TryMerge(tensors, weights, normalize, sum, buffers) is { } merged) return merged;
        using var scope = torch.NewDisposeScope();
        var acc = buffers?.Zeros(tensors[0]) ?? torch.zeros_like(tensors[0]);
        for (int i = 0; i < tensors.Count; i++)
            if (weights[i] != 0) acc.add_(tensors[i], alpha: weights[i]);
        if (normalize) acc.div_(sum);
        return acc.MoveToOuterDisposeScope();
    }
}
