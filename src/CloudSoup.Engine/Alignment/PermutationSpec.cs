// Which tensor axes each hidden-unit permutation acts on (Git Re-Basin's PermutationSpec,
// samuela/git-re-basin src/weight_matching.py): permutation name → [(tensor, axis)], plus the inverse tensor →
// [(axis, permutation)]. Permuting every listed axis with the same index vector leaves the network's function
// unchanged. JSON form (docs/alignment.md): {"permutations": {"P0": [["fc1.weight", 0], ["fc2.weight", 1]]}}.
// An entry may carry a block size, [tensor, axis, block]: the axis then holds size × block elements, unit i owning
// the consecutive elements i·block .. i·block+block−1 — the input axis of a linear layer after a flatten of
// [channels, h, w] feature maps (block = h·w), where permuting channels moves whole blocks.
using System.Text.Json;
using CloudSoup.Control.Errors;

namespace CloudSoup.Engine.Alignment;

public sealed record PermutedAxis(string Tensor, int Axis, int Block = 1);

public sealed class PermutationSpec
{
    public const string Field = "alignment.spec";

    private readonly Dictionary<string, IReadOnlyList<PermutedAxis>> _permToAxes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<(int Axis, string Perm, int Block)>> _tensorToAxes = new(StringComparer.Ordinal);

    /// <summary>Builds a spec, checking its structure: every permutation names at least one axis, no axis is
    /// claimed twice, and no permutation acts on two axes of one tensor (the cost matrix assumes that).</summary>
    public PermutationSpec(IEnumerable<KeyValuePair<string, IReadOnlyList<PermutedAxis>>> permutations)
    {
        var names = new List<string>();
        foreach (var (perm, axes) in permutations)
        {
            if (string.IsNullOrWhiteSpace(perm)) throw Error("a permutation has an empty name");
            if (_permToAxes.ContainsKey(perm)) throw Error($"permutation '{perm}' is defined twice");
            if (axes.Count == 0) throw Error($"permutation '{perm}' names no tensor axis");
            foreach (var (tensor, axis, block) in axes)
            {
                if (block < 1) throw Error($"permutation '{perm}': block {block} of '{tensor}' axis {axis} must be at least 1");
                if (string.IsNullOrEmpty(tensor)) throw Error($"permutation '{perm}' names an empty tensor");
                if (axis < 0) throw Error($"permutation '{perm}': axis {axis} of '{tensor}' is negative");
                if (!_tensorToAxes.TryGetValue(tensor, out var list)) _tensorToAxes[tensor] = list = [];
                foreach (var (otherAxis, otherPerm, _) in list)
                {
                    if (otherAxis == axis) throw Error($"axis {axis} of '{tensor}' is claimed by both '{otherPerm}' and '{perm}'");
                    if (otherPerm == perm) throw Error($"permutation '{perm}' acts on two axes of '{tensor}' ({otherAxis} and {axis}); a permutation may act on one axis per tensor");
                }
                list.Add((axis, perm, block));
            }
            _permToAxes[perm] = axes.ToArray();
            names.Add(perm);
        }
        if (names.Count == 0) throw Error("the spec has no permutations");
        Names = names;
    }

    /// <summary>Permutation names in definition order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The (tensor, axis) pairs a permutation acts on.</summary>
    public IReadOnlyList<PermutedAxis> AxesOf(string perm) => _permToAxes[perm];

    /// <summary>The (axis, permutation) pairs of a tensor; empty for tensors the spec does not touch.</summary>
    public IReadOnlyList<(int Axis, string Perm, int Block)> PermsOf(string tensor) =>
        _tensorToAxes.TryGetValue(tensor, out var list) ? list : [];

    /// <summary>Every tensor the spec touches.</summary>
    public IEnumerable<string> Tensors => _tensorToAxes.Keys;

    /// <summary>
    /// Checks the spec against a model's tensor shapes and returns each permutation's size. Fails on tensors
    /// the model lacks, axes beyond a tensor's rank, and a permutation whose axes differ in length.
    /// </summary>
    public IReadOnlyDictionary<string, int> Validate(IReadOnlyDictionary<string, long[]> shapes, string model = "the model")
    {
        var sizes = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var perm in Names)
        {
            PermutedAxis? first = null;
            foreach (var pa in _permToAxes[perm])
            {
                if (!shapes.TryGetValue(pa.Tensor, out var shape))
                    throw Error($"permutation '{perm}' names tensor '{pa.Tensor}', which {model} does not have");
                if (pa.Axis >= shape.Length)
                    throw Error($"permutation '{perm}' names axis {pa.Axis} of '{pa.Tensor}', which has only {shape.Length} axes (shape [{string.Join(", ", shape)}])");
                if (shape[pa.Axis] % pa.Block != 0)
                    throw Error($"permutation '{perm}' names axis {pa.Axis} of '{pa.Tensor}' with block {pa.Block}, but the axis has {shape[pa.Axis]} elements, not a multiple of {pa.Block}");
                int size = checked((int)(shape[pa.Axis] / pa.Block));
                if (first is null) { sizes[perm] = size; first = pa; }
                else if (sizes[perm] != size)
                    throw Error($"permutation '{perm}' has inconsistent sizes: axis {first.Axis} of '{first.Tensor}' has {sizes[perm]} units but axis {pa.Axis} of '{pa.Tensor}' has {size}{(pa.Block > 1 ? $" (blocks of {pa.Block})" : "")}");
            }
        }
        return sizes;
    }

    /// <summary>Parses the JSON form; errors name the offending permutation or entry.</summary>
    public static PermutationSpec ParseJson(string json)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw Error($"the permutation spec is not valid JSON ({e.Message})"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Error("the permutation spec must be a JSON object with a \"permutations\" object");
            foreach (var prop in root.EnumerateObject())
                if (prop.Name != "permutations") throw Error($"unknown key '{prop.Name}' in the permutation spec (expected only \"permutations\")");
            if (!root.TryGetProperty("permutations", out var perms) || perms.ValueKind != JsonValueKind.Object)
                throw Error("the permutation spec needs a \"permutations\" object mapping names to [[tensor, axis], ...]");
            var list = new List<KeyValuePair<string, IReadOnlyList<PermutedAxis>>>();
            foreach (var perm in perms.EnumerateObject())
            {
                if (perm.Value.ValueKind != JsonValueKind.Array) throw Error($"permutation '{perm.Name}' must be a list of [tensor, axis] pairs");
                var axes = new List<PermutedAxis>();
                int k = 0;
                foreach (var entry in perm.Value.EnumerateArray())
                {
                    int block = 1;
                    if (entry.ValueKind != JsonValueKind.Array || entry.GetArrayLength() is not (2 or 3)
                        || entry[0].ValueKind != JsonValueKind.String || entry[1].ValueKind != JsonValueKind.Number
                        || !entry[1].TryGetInt32(out int axis)
                        || (entry.GetArrayLength() == 3 && (entry[2].ValueKind != JsonValueKind.Number || !entry[2].TryGetInt32(out block))))
                        throw Error($"permutation '{perm.Name}' entry {k} must be [\"tensor name\", axis] or [\"tensor name\", axis, block] with an integer axis and block, got {entry.GetRawText()}");
                    axes.Add(new PermutedAxis(entry[0].GetString()!, axis, block));
                    k++;
                }
                list.Add(new(perm.Name, axes));
            }
            return new PermutationSpec(list);
        }
    }

    /// <summary>The JSON form of this spec (round-trips through <see cref="ParseJson"/>).</summary>
    public string ToJson()
    {
        var perms = Names.ToDictionary(n => n, n => _permToAxes[n].Select(a => a.Block == 1 ? new object[] { a.Tensor, a.Axis } : [a.Tensor, a.Axis, a.Block]).ToArray());
        return JsonSerializer.Serialize(new Dictionary<string, object> { ["permutations"] = perms }, new JsonSerializerOptions { WriteIndented = true });
    }

    internal static CloudSoupException Error(string message) => CloudSoupException.Recipe(Field, message);
}
