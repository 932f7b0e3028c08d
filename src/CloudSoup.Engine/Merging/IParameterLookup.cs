namespace CloudSoup.Engine.Merging;

/// <summary>
/// Where the planner looks up a parameter for one output tensor (mergekit/config.py, ConfigReader.parameter): which
/// parameter blocks apply, in order, and which tensor name their filters are matched against. Recipes with
/// <c>models</c> use <see cref="RecipeParameterLookup"/>; sliced recipes <see cref="SliceParameterLookup"/>.
/// </summary>
public interface IParameterLookup
{
    /// <summary>The blocks a method-wide parameter of output tensor <paramref name="tensor"/> is read from.</summary>
    ParameterLevels Global(string tensor);

    /// <summary>The blocks a per-model parameter of input <paramref name="input"/> (an index into the plan's inputs) is read from.</summary>
    ParameterLevels PerModel(string tensor, int input);
}
