// Declarations of the plain averaging and copying methods (linear: Wortsman et al. 2022's model soup average;
// passthrough: mergekit's copy, used with slices for frankenmerges).
using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;

namespace CloudSoup.Control.Methods;

public static class AveragingMethods
{
    public static readonly MethodSignature Linear = new()
    {
        Name = "linear", Description = "Weighted average of the models' tensors (model soup).", BaseModel = BaseModelUse.NotUsed, MinModels = 1,
        Parameters =
        [
            new("weight", ParameterKind.Number, PerModel: true, Default: 1.0, Help: "the model's weight in the average"),
            new("normalize", ParameterKind.Bool, PerModel: false, Default: true, Help: "divide by the sum of the weights"),
        ],
    };

    public static readonly MethodSignature Passthrough = new PassthroughSignature
    {
        Name = "passthrough", Description = "Copy one model's tensors, optionally scaled.", BaseModel = BaseModelUse.NotUsed, MinModels = 1,
        Parameters = [new("scale", ParameterKind.Number, PerModel: true, Default: 1.0, Help: "multiplies the tensor (e.g. {filter: o_proj, value: 0})")],
    };

    private sealed class PassthroughSignature : MethodSignature
    {
        public override void ValidateRecipe(Recipe recipe)
        {
            if (recipe.Slices is null && recipe.Models.Count != 1)
                throw CloudSoupException.Recipe("models", $"merge method 'passthrough' takes exactly 1 model, the recipe has {recipe.Models.Count}");
        }
    }
}
