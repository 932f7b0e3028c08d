// mergekit's `slices` (mergekit/config.py; docs/methods.md "Slices"). A slice takes the same number of layers from each of its
// sources; the output stacks the slices in order. CloudSoup turns a sliced recipe into virtual checkpoints over the
// opened models (no bytes are copied): layer i of slice s becomes output layer offset(s) + i, read lazily from the
// source's own layer. Then the ordinary planner and methods run unchanged.
//   - passthrough (frankenmerge): one source per slice, one virtual model. Embeddings come from the first slice's
//     model and every other non-layer tensor (final norm, lm_head) from the last slice's, as mergekit does
//     (pre_weights / post_weights); "embedding" means a name containing embed, wte, wpe or tok_embeddings.
//   - every other method: every slice lists the same models; each model becomes one virtual model of its
//     sliced layers plus its own non-layer tensors.
// Gradients (parameter lists) are interpolated over each slice's layers, as mergekit does (Positions), and every
// parameter is resolved per slice: the source that supplies a tensor, then its slice, then the top level, with
// per-model filters matched against the source tensor's own name (SliceParameterLookup).
using System.Text.RegularExpressions;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Formats;
using CloudSoup.Control.Recipes;

namespace CloudSoup.Engine.Merging;

public static partial class SliceLayout
{
    [GeneratedRegex(@"^(?<prefix>(?:.*?\.)?)(?<idx>\d+)\.(?<rest>.+)$")]
    private static partial Regex Layered();

    [GeneratedRegex(@"embed|(^|\.)wte\.|(^|\.)wpe\.|tok_embeddings")]
    private static partial Regex Embedding();

    /// <summary>
    /// Builds the virtual inputs, the recipe to plan them with (its models are the virtual ones) and where each virtual
    /// tensor's parameters are looked up (per slice, as mergekit resolves them).
    /// </summary>
    public static (IReadOnlyList<Checkpoint> Inputs, Recipe PlanRecipe, IParameterLookup Parameters) Compose(Recipe recipe, IMergeMethod method, IReadOnlyList<Checkpoint> opened)
    {
        var slices = recipe.Slices ?? throw new InvalidOperationException("the recipe has no slices");
        var byRef = opened.ToDictionary(c => c.Reference, StringComparer.Ordinal);
        var stacks = opened.ToDictionary(c => c.Reference, Stack, StringComparer.Ordinal);
        for (int s = 0; s < slices.Count; s++)
            for (int j = 0; j < slices[s].Sources.Count; j++)
            {
                var src = slices[s].Sources[j];
                var (prefix, count) = stacks[src.Model];
                if (src.End > count)
                    throw CloudSoupException.Recipe($"slices[{s}].sources[{j}].layer_range",
                        $"[{src.Start}, {src.End}] goes past the {count} layers of '{src.Model}' ({prefix}0 … {prefix}{count - 1})");
            }
        string outPrefix = stacks[slices[0].Sources[0].Model].Prefix;
        int last = slices.Count - 1;

        if (method.Name == "passthrough")
        {
            var first = byRef[slices[0].Sources[0].Model];
            var final = byRef[slices[last].Sources[0].Model];
            var parts = new List<Part>();
            foreach (var name in first.TensorNames.Where(n => !IsLayer(n, stacks[first.Reference].Prefix) && Embedding().IsMatch(n)))
                parts.Add(new Part(name, first, name, 0, 0));
            parts.AddRange(Layers(slices, _ => 0, byRef, stacks, outPrefix));
            foreach (var name in final.TensorNames.Where(n => !IsLayer(n, stacks[final.Reference].Prefix) && !Embedding().IsMatch(n)))
                parts.Add(new Part(name, final, name, last, 0));
            string reference = string.Join(" + ", slices.Select(sl => $"{sl.Sources[0].Model}[{sl.Sources[0].Start}, {sl.Sources[0].End})"));
            var composite = Compose(reference, parts);
            var planRecipe = recipe.WithModels([new RecipeModel(reference, new Dictionary<string, ParameterSetting>())]);
            return ([composite], planRecipe, new SliceParameterLookup(planRecipe, [Origins(parts)]));
        }

        // One virtual model per input, in the order the job opened them (models, then the base).
        var inputs = new List<Checkpoint>();
        var origins = new List<IReadOnlyDictionary<string, SliceOrigin>>();
        foreach (var model in opened)
        {
            int SourceIn(int s) => slices[s].Sources.ToList().FindIndex(x => x.Model == model.Reference);
            var parts = new List<Part>();
            foreach (var n in model.TensorNames.Where(n => !IsLayer(n, stacks[model.Reference].Prefix)))
            {
                int s = Embedding().IsMatch(n) ? 0 : last;
                parts.Add(new Part(n, model, n, s, SourceIn(s)));
            }
            parts.AddRange(Layers(slices, SourceIn, byRef, stacks, outPrefix));
            inputs.Add(Compose(model.Reference, parts));
            origins.Add(Origins(parts));
        }
        return (inputs, recipe, new SliceParameterLookup(recipe, origins));
    }

    /// <summary>Output tensor <see cref="Name"/> is tensor <see cref="FromName"/> of <see cref="From"/>, supplied by source <see cref="Source"/> of slice <see cref="Slice"/>.</summary>
    private sealed record Part(string Name, Checkpoint From, string FromName, int Slice, int Source);

    private static Checkpoint Compose(string reference, List<Part> parts) => Checkpoint.Compose(reference, parts.Select(p => (p.Name, p.From, p.FromName)));

    private static Dictionary<string, SliceOrigin> Origins(List<Part> parts) =>
        parts.ToDictionary(p => p.Name, p => new SliceOrigin(p.Slice, p.Source, p.FromName), StringComparer.Ordinal);

    /// <summary>mergekit's gradient position for every output tensor: its index within its slice, over the slice's length.</summary>
    public static Dictionary<string, LayerPosition> Positions(IReadOnlyList<RecipeSlice> slices, IReadOnlyList<string> names)
    {
        var result = new Dictionary<string, LayerPosition>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            var m = Layered().Match(name);
            result[name] = LayerPosition.None;
            if (!m.Success || !int.TryParse(m.Groups["idx"].Value, out int layer)) continue;
            int offset = 0;
            foreach (var slice in slices)
            {
                if (layer < offset + slice.Length)
                {
                    result[name] = new LayerPosition(layer - offset, slice.Length);
                    break;
                }
                offset += slice.Length;
            }
        }
        return result;
    }

    /// <summary>Every layer tensor the slices take from the source <paramref name="pick"/> chooses (its index in each slice), renamed to its output layer.</summary>
    private static IEnumerable<Part> Layers(IReadOnlyList<RecipeSlice> slices, Func<int, int> pick,
        Dictionary<string, Checkpoint> byRef, Dictionary<string, (string Prefix, int Count)> stacks, string outPrefix)
    {
        int offset = 0;
        for (int s = 0; s < slices.Count; s++)
        {
            int j = pick(s);
            var src = slices[s].Sources[j];
            var ck = byRef[src.Model];
            string prefix = stacks[src.Model].Prefix;
            foreach (var name in ck.TensorNames)
            {
                var m = Layered().Match(name);
                if (!m.Success || m.Groups["prefix"].Value != prefix || !int.TryParse(m.Groups["idx"].Value, out int idx) || idx < src.Start || idx >= src.End) continue;
                yield return new Part($"{outPrefix}{offset + idx - src.Start}.{m.Groups["rest"].Value}", ck, name, s, j);
            }
            offset += slices[s].Length;
        }
    }

    private static bool IsLayer(string name, string prefix)
    {
        var m = Layered().Match(name);
        return m.Success && m.Groups["prefix"].Value == prefix;
    }

    /// <summary>The model's layer stack: the name prefix whose numbered children are the layers, and how many there are.</summary>
    private static (string Prefix, int Count) Stack(Checkpoint model)
    {
        var stacks = model.TensorNames.Select(n => Layered().Match(n)).Where(m => m.Success)
            .GroupBy(m => m.Groups["prefix"].Value)
            .Select(g => (Prefix: g.Key, Indices: g.Select(m => int.Parse(m.Groups["idx"].Value)).Distinct().ToList()))
            .Where(s => s.Indices.Count >= 2).ToList();
        if (stacks.Count == 0)
            throw CloudSoupException.Recipe("slices", $"'{model.Reference}' has no numbered layer stack (names like model.layers.0.…) to slice");
        if (stacks.Count > 1)
            throw CloudSoupException.Recipe("slices", $"'{model.Reference}' has more than one layer stack ({string.Join(", ", stacks.Select(s => s.Prefix + "N"))}); slicing needs exactly one");
        var (prefix, indices) = stacks[0];
        int count = indices.Max() + 1;
        if (indices.Count != count)
            throw CloudSoupException.Recipe("slices", $"'{model.Reference}' has gaps in its layers {prefix}0 … {prefix}{count - 1}");
        return (prefix, count);
    }
}
