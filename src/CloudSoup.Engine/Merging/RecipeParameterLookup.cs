using CloudSoup.Control.Recipes;

namespace CloudSoup.Engine.Merging;

/// <summary>
/// A recipe with <c>models</c>: a model's own parameters, then the top-level ones (mergekit/config.py). Inputs past the
/// recipe's models (the base model, when it is not listed) have only the top level.
/// </summary>
public sealed class RecipeParameterLookup(Recipe recipe) : IParameterLookup
{
    private readonly ParameterLevel _top = new(recipe.Parameters, "parameters");

    public ParameterLevels Global(string tensor) => new(tensor, [_top]);

    public ParameterLevels PerModel(string tensor, int input) =>
        input < recipe.Models.Count
            ? new(tensor, [new ParameterLevel(recipe.Models[input].Parameters, $"models[{input}].parameters"), _top])
            : new(tensor, [_top]);
}
