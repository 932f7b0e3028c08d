// passthrough: copies the single input, optionally scaled (mergekit/merge_methods/passthrough.py). mergekit uses it with
// `slices` for layer-stacking "frankenmerges": then every slice has one source and the job merges one virtual
// model stacked from them (Merging/SliceLayout.cs).
using CloudSoup.Core.Recipes;
using TorchSharp;

namespace CloudSoup.Core.Merging.Methods;

public sealed class Passthrough : IMergeMethod
{
    public string Name => "passthrough";
    public string Description => "Copy one model's tensors, optionally scaled.";
    public BaseModelUse BaseModel => BaseModelUse.NotUsed;
    public int MinModels => 1;
    public IReadOnlyList<ParameterSpec> Parameters { get; } =
        [new("scale", ParameterKind.Number, PerModel: true, Default: 1.0, Help: "multiplies the tensor (e.g. {filter: o_proj, value: 0})")];

    public void ValidateRecipe(Recipe recipe)
    {
        if (recipe.Slices is null && recipe.Models.Count != 1)
            throw Errors.CloudSoupException.Recipe("models", $"merge method 'passthrough' takes exactly 1 model, the recipe has {recipe.Models.Count}");
    }

    public torch.Tensor Merge(TensorMergeInput input)
    {
        double scale = input.PerModel[0].NumberOrNull("scale") ?? 1.0;
        return scale == 1 ? input.Tensors[0].clone() : input.Tensors[0] * scale;
    }
}
