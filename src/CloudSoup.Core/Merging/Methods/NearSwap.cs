// nearswap: ω = clamp(t / max(|b − x|, 1e-6), 0, 1), result = ω·x + (1−ω)·b (mergekit/merge_methods/nearswap.py):
// elements already close to the base are pulled all the way to the other model.
using CloudSoup.Core.Recipes;
using TorchSharp;

namespace CloudSoup.Core.Merging.Methods;

public sealed class NearSwap : IMergeMethod
{
    public string Name => "nearswap";
    public string Description => "Swap in the other model's values where they are within t of the base.";
    public BaseModelUse BaseModel => BaseModelUse.Required;
    public int MinModels => 2;
    public IReadOnlyList<ParameterSpec> Parameters { get; } =
        [new("t", ParameterKind.Number, PerModel: false, Required: true, Min: 0, Help: "similarity threshold")];

    public void ValidateRecipe(Recipe recipe) => MethodChecks.OthersBetween(recipe, Name, 1, 1);

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var b = input.Base!;
        var x = input.Tensors[input.BaseIndex == 0 ? 1 : 0];
        using var scope = torch.NewDisposeScope();
        var w = (input.Global.Number("t") / (b - x).abs().clamp_min(1e-6)).clamp(0, 1);
        return (w * x + (1 - w) * b).MoveToOuterDisposeScope();
    }
}
