using CloudSoup.Control.Recipes;

namespace CloudSoup.Engine.Merging;

/// <summary>One parameter block and its path in the recipe (for errors), e.g. <c>slices[1].sources[0].parameters</c>.</summary>
public sealed record ParameterLevel(IReadOnlyDictionary<string, ParameterSetting> Settings, string Path);

/// <summary>
/// The blocks one value is looked up in, first match wins, and the tensor name their <c>filter</c>s see: for a
/// per-model parameter that is the input tensor's name in its own model (mergekit matches the source layer, not the
/// renumbered output layer), for a method-wide one the output tensor's name.
/// </summary>
public sealed record ParameterLevels(string MatchName, IReadOnlyList<ParameterLevel> Levels);
