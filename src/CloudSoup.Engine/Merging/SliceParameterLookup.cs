using CloudSoup.Control.Recipes;

namespace CloudSoup.Engine.Merging;

/// <summary>Where one input's tensor comes from in a sliced recipe: slice, source within the slice, and its name in the source model.</summary>
public readonly record struct SliceOrigin(int Slice, int Source, string FromName);

/// <summary>
/// A sliced recipe, resolved per slice as mergekit does (mergekit/config.py ConfigReader.parameter, mergekit/plan.py):
/// a per-model parameter is read from the slice source that supplies the tensor, then that slice's parameters, then
/// the top level, its filters matched against the source tensor's own name; a method-wide parameter from the
/// slice's parameters, then the top level. Tensors outside the layer stack belong to the first slice (embeddings)
/// or the last (everything else), like mergekit's pre- and post-weights.
/// </summary>
public sealed class SliceParameterLookup(Recipe recipe, IReadOnlyList<IReadOnlyDictionary<string, SliceOrigin>> origins) : IParameterLookup
{
    private readonly IReadOnlyList<RecipeSlice> _slices = recipe.Slices ?? throw new ArgumentException("the recipe has no slices", nameof(recipe));
    private readonly ParameterLevel _top = new(recipe.Parameters, "parameters");

    public ParameterLevels Global(string tensor)
    {
        foreach (var table in origins)
            if (table.TryGetValue(tensor, out var o))
                return new(tensor, [SliceLevel(o.Slice), _top]);
        return new(tensor, [_top]);
    }

    public ParameterLevels PerModel(string tensor, int input)
    {
        if (input >= origins.Count || !origins[input].TryGetValue(tensor, out var o)) return new(tensor, [_top]);
        var source = _slices[o.Slice].Sources[o.Source];
        return new(o.FromName, [new ParameterLevel(source.Parameters, $"slices[{o.Slice}].sources[{o.Source}].parameters"), SliceLevel(o.Slice), _top]);
    }

    private ParameterLevel SliceLevel(int s) => new(_slices[s].Parameters, $"slices[{s}].parameters");
}
