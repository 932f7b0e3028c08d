// linear: the weighted average Σ w_i x_i, divided by Σ w_i when `normalize` is true (mergekit's
// semantics, mergekit/merge_methods/linear.py). A uniform soup is linear with equal weights. Unlike mergekit,
// a zero weight sum with normalize=true is an error rather than inf/NaN output.
using CloudSoup.Core.Errors;
using TorchSharp;

namespace CloudSoup.Core.Merging.Methods;

public sealed class Linear : IMergeMethod
{
    public string Name => "linear";
    public string Description => "Weighted average of the models' tensors (model soup).";
    public BaseModelUse BaseModel => BaseModelUse.NotUsed;
    public int MinModels => 1;

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        new("weight", ParameterKind.Number, PerModel: true, Default: 1.0, Help: "the model's weight in the average"),
        new("normalize", ParameterKind.Bool, PerModel: false, Default: true, Help: "divide by the sum of the weights"),
    ];

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var weights = input.PerModel.Select(p => p.Number("weight")).ToArray();
        return WeightedSum(input.TensorName, input.Tensors, weights, input.Global.Bool("normalize"));
    }

    internal static torch.Tensor WeightedSum(string tensorName, IReadOnlyList<torch.Tensor> tensors, double[] weights, bool normalize)
    {
        double sum = weights.Sum();
        if (normalize && Math.Abs(sum) < 1e-12)
            throw new CloudSoupException(ErrorKind.InvalidRecipe, $"linear: the weights for tensor '{tensorName}' sum to zero, so normalize cannot divide by them (set normalize: false or change the weights)", "parameters.weight");
        using var scope = torch.NewDisposeScope();
        var acc = torch.zeros_like(tensors[0]);
        for (int i = 0; i < tensors.Count; i++)
            if (weights[i] != 0) acc.add_(tensors[i], alpha: weights[i]);
        if (normalize) acc.div_(sum);
        return acc.MoveToOuterDisposeScope();
    }
}
