// The named permutation specs (`alignment.spec: auto | mlp | vgg | resnet`), derived from a checkpoint's tensor
// names and shapes in PyTorch layout (Linear [out, in], Conv [out, in, kh, kw]). Structure follows
// samuela/git-re-basin's mlp/vgg16/resnet20 specs (src/weight_matching.py; docs/alignment.md): one permutation per
// hidden layer's output units, shared by its bias and its norm (BatchNorm weight/bias/running_mean/running_var,
// LayerNorm weight/bias) and by the next layer's input axis; residual streams share one permutation.
using System.Text.RegularExpressions;

namespace CloudSoup.Engine.Alignment;

/// <summary>A layer of a plain feed-forward chain: its weight (axis 0 = outputs, axis 1 = inputs), its bias,
/// the 1-D tensors (norm parameters and statistics) that follow its output units, and how many input elements
/// each unit of the previous layer feeds (1, or h·w for a linear layer reading flattened [c, h, w] feature maps).</summary>
public sealed record ChainLayer(string Module, string Weight, string? Bias, IReadOnlyList<string> Followers, int InputBlock = 1);

public static partial class BuiltinSpecs
{
    public static readonly IReadOnlyList<string> Names = ["auto", "mlp", "vgg", "resnet"];

    /// <summary>Resolves a named spec against a model's tensor shapes.</summary>
    public static PermutationSpec ForName(string name, IReadOnlyDictionary<string, long[]> shapes) => name switch
    {
        "auto" => Auto(shapes),
        "mlp" => Auto(shapes, requireRank: 2, kind: "mlp"),
        "vgg" => Auto(shapes, requireRank: null, kind: "vgg"),
        "resnet" => ResNet(shapes),
        _ => throw PermutationSpec.Error($"unknown spec '{name}' (expected one of {string.Join(", ", Names)}, or a path to a JSON spec)"),
    };

    /// <summary>One permutation per layer except the last: its outputs, bias, followers, and the next layer's inputs.</summary>
    public static PermutationSpec Chain(IReadOnlyList<ChainLayer> layers)
    {
        if (layers.Count < 2) throw PermutationSpec.Error("a chain needs at least two layers to have a hidden permutation");
        var perms = new List<KeyValuePair<string, IReadOnlyList<PermutedAxis>>>();
        for (int k = 0; k + 1 < layers.Count; k++)
        {
            var l = layers[k];
            var axes = new List<PermutedAxis> { new(l.Weight, 0) };
            if (l.Bias is not null) axes.Add(new(l.Bias, 0));
            axes.AddRange(l.Followers.Select(f => new PermutedAxis(f, 0)));
            axes.Add(new(layers[k + 1].Weight, 1, layers[k + 1].InputBlock));
            perms.Add(new($"P_{l.Module}", axes));
        }
        return new PermutationSpec(perms);
    }

    // ---------------------------------------------------------------- auto (plain MLP/CNN stacks)

    private sealed record Module(string Name, Dictionary<string, long[]> Tensors);

    private static readonly Regex ResidualName = ResidualRegex();

    /// <summary>
    /// Derives a chain spec: layers (weights of rank ≥ 2) ordered so that each layer's output size equals the
    /// next one's input size, and 1-D norm modules attached to the layer whose outputs they follow. Fails,
    /// naming the tensor, when the network looks residual or the order or attachment is ambiguous.
    /// </summary>
    public static PermutationSpec Auto(IReadOnlyDictionary<string, long[]> shapes, int? requireRank = null, string kind = "auto")
    {
        string Fail(string why) => throw PermutationSpec.Error($"spec '{kind}' cannot be derived: {why}; write a JSON spec (docs/alignment.md)");

        var residual = shapes.Keys.FirstOrDefault(n => ResidualName.IsMatch(n));
        if (residual is not null)
            Fail($"tensor '{residual}' looks like part of a residual connection, which a plain chain cannot express (try spec: resnet)");

        var modules = shapes.GroupBy(kv => ModuleOf(kv.Key))
            .Select(g => new Module(g.Key, g.ToDictionary(kv => LeafOf(kv.Key), kv => kv.Value)))
            .OrderBy(m => m.Name, NaturalComparer.Instance).ToList();

        var layers = new List<Module>();
        var norms = new List<Module>();
        foreach (var m in modules)
        {
            bool isLayer = m.Tensors.TryGetValue("weight", out var w) && w.Length >= 2;
            if (isLayer)
            {
                if (requireRank is int r && w!.Length != r) Fail($"'{m.Name}.weight' has rank {w.Length}, but spec '{kind}' expects rank-{r} layers");
                foreach (var (leaf, shape) in m.Tensors)
                    if (leaf != "weight" && !(leaf == "bias" && shape.Length == 1 && shape[0] == w![0]))
                        Fail($"tensor '{m.Name}.{leaf}' (shape [{string.Join(", ", shape)}]) is not a weight or bias of layer '{m.Name}'");
                layers.Add(m);
            }
            else
            {
                var vectors = m.Tensors.Where(t => t.Value.Length == 1).ToList();
                var others = m.Tensors.Where(t => t.Value.Length > 1).ToList();
                if (others.Count > 0) Fail($"tensor '{m.Name}.{others[0].Key}' has rank {others[0].Value.Length} but its module has no layer weight");
                if (vectors.Select(v => v.Value[0]).Distinct().Count() > 1) Fail($"the 1-D tensors of '{m.Name}' have different lengths");
                if (vectors.Count > 0) norms.Add(m);   // modules of scalars only (num_batches_tracked) are not permuted
            }
        }
        if (layers.Count < 2) Fail($"found {layers.Count} layer weight(s) of rank ≥ 2; need at least two");
        layers = OrderChain(layers, Fail);
        if (kind == "vgg")
        {
            int firstLinear = layers.FindIndex(l => l.Tensors["weight"].Length == 2);
            if (firstLinear <= 0 || layers.Skip(firstLinear).Any(l => l.Tensors["weight"].Length != 2))
                Fail("spec 'vgg' expects convolutions followed by linear layers");
        }

        // Attach each norm module to a layer whose output size it matches: the layer with the same name but
        // for the stem (bn1 ↔ conv1), else the nearest layer before it in name order, else the only candidate.
        var followers = layers.ToDictionary(l => l.Name, _ => new List<string>());
        foreach (var norm in norms)
        {
            long size = norm.Tensors.Values.First(v => v.Length == 1)[0];
            var candidates = layers.Where(l => l.Tensors["weight"][0] == size).ToList();
            var byName = candidates.Where(l => SameSlot(l.Name, norm.Name)).ToList();
            var preceding = modules.TakeWhile(m => m.Name != norm.Name).LastOrDefault(m => layers.Any(l => l.Name == m.Name));
            Module? owner = byName.Count == 1 ? byName[0]
                : preceding is not null && candidates.Any(c => c.Name == preceding.Name) ? layers.First(l => l.Name == preceding.Name)
                : candidates.Count == 1 ? candidates[0] : null;
            if (owner is null)
                Fail(candidates.Count == 0
                    ? $"norm '{norm.Name}' has {size} channels but no layer has {size} outputs"
                    : $"norm '{norm.Name}' could follow any of {string.Join(", ", candidates.Select(c => c.Name))}");
            followers[owner!.Name].AddRange(norm.Tensors.Where(t => t.Value.Length == 1).Select(t => $"{norm.Name}.{t.Key}").Order(StringComparer.Ordinal));
        }

        return Chain(layers.Select((l, k) => new ChainLayer(l.Name, $"{l.Name}.weight",
            l.Tensors.ContainsKey("bias") ? $"{l.Name}.bias" : null, followers[l.Name],
            k == 0 ? 1 : checked((int)(l.Tensors["weight"][1] / layers[k - 1].Tensors["weight"][0])))).ToList());
    }

    // Layers in natural name order when that chains; otherwise the unique order of top-level groups
    // (features.*, classifier.*) that chains, keeping natural order within each group.
    private static List<Module> OrderChain(List<Module> layers, Func<string, string> fail)
    {
        string? why = ChainBreak(layers);
        if (why is null) return layers;
        var groups = layers.GroupBy(l => l.Name.Split('.')[0]).Select(g => g.ToList()).ToList();
        if (groups.Count > 8 || groups.Count < 2) fail($"the layers do not form a chain in name order ({why})");
        var valid = Permutations(groups.Count).Select(order => order.SelectMany(i => groups[i]).ToList())
            .Where(o => ChainBreak(o) is null).ToList();
        if (valid.Count == 0) fail($"the layers do not form a chain in any order of their groups ({why})");
        if (valid.Count > 1) fail($"the layer order is ambiguous: both {Describe(valid[0])} and {Describe(valid[1])} chain");
        return valid[0];
    }

    private static string Describe(List<Module> order) => string.Join(" → ", order.Select(l => l.Name));

    private static string? ChainBreak(List<Module> layers)
    {
        for (int k = 0; k + 1 < layers.Count; k++)
        {
            long outDim = layers[k].Tensors["weight"][0], inDim = layers[k + 1].Tensors["weight"][1];
            if (outDim == inDim) continue;
            // A convolution's [c, h, w] maps flattened into a linear layer: c channels of h·w inputs each.
            if (layers[k].Tensors["weight"].Length == 4 && layers[k + 1].Tensors["weight"].Length == 2 && inDim % outDim == 0) continue;
            return $"'{layers[k].Name}' has {outDim} outputs but '{layers[k + 1].Name}' takes {inDim} inputs";
        }
        return null;
    }

    private static IEnumerable<int[]> Permutations(int n)
    {
        var a = Enumerable.Range(0, n).ToArray();
        IEnumerable<int[]> Rec(int k)
        {
            if (k == n) { yield return (int[])a.Clone(); yield break; }
            for (int i = k; i < n; i++)
            {
                (a[k], a[i]) = (a[i], a[k]);
                foreach (var p in Rec(k + 1)) yield return p;
                (a[k], a[i]) = (a[i], a[k]);
            }
        }
        return Rec(0);
    }

    // "layer1.0.conv2" and "layer1.0.bn2": same parent and same trailing number.
    private static bool SameSlot(string layer, string norm)
    {
        var (lp, ll) = (ModuleOf(layer), LeafOf(layer));
        var (np, nl) = (ModuleOf(norm), LeafOf(norm));
        var ld = TrailingDigits().Match(ll).Value;
        return lp == np && ld.Length > 0 && ld == TrailingDigits().Match(nl).Value && ll != nl;
    }

    // ---------------------------------------------------------------- resnet (torchvision naming)

    /// <summary>
    /// ResNet in torchvision naming (conv1/bn1 stem, layerS.B.convK/bnK blocks with BasicBlock or Bottleneck,
    /// a downsample.0/1 or shortcut.0/1 projection, an fc or linear head). Every block without a projection
    /// keeps its input permutation on its output (identity skip); a projection starts a new residual permutation.
    /// </summary>
    public static PermutationSpec ResNet(IReadOnlyDictionary<string, long[]> shapes)
    {
        string Fail(string why) => throw PermutationSpec.Error($"spec 'resnet' does not fit this checkpoint: {why}");
        var perms = new List<KeyValuePair<string, IReadOnlyList<PermutedAxis>>>();
        var axes = new Dictionary<string, List<PermutedAxis>>();
        List<PermutedAxis> P(string name)
        {
            if (!axes.TryGetValue(name, out var l)) { axes[name] = l = []; perms.Add(new(name, l)); }
            return l;
        }
        // A conv writes perm `outPerm` (and reads `inPerm`); its bias and its norm follow the output.
        void Conv(string conv, string norm, string? inPerm, string outPerm)
        {
            if (!shapes.ContainsKey($"{conv}.weight")) Fail($"missing '{conv}.weight'");
            P(outPerm).Add(new($"{conv}.weight", 0));
            if (inPerm is not null) P(inPerm).Add(new($"{conv}.weight", 1));
            if (shapes.ContainsKey($"{conv}.bias")) P(outPerm).Add(new($"{conv}.bias", 0));
            foreach (var leaf in new[] { "weight", "bias", "running_mean", "running_var" })
                if (shapes.TryGetValue($"{norm}.{leaf}", out var s) && s.Length == 1) P(outPerm).Add(new($"{norm}.{leaf}", 0));
        }

        if (!shapes.ContainsKey("conv1.weight")) Fail("no stem 'conv1.weight'");
        string residual = "P_res0";
        Conv("conv1", "bn1", null, residual);
        int residualCount = 1;

        var blocks = shapes.Keys.Select(k => BlockRegex().Match(k)).Where(m => m.Success)
            .Select(m => m.Groups[1].Value).Distinct().Order(NaturalComparer.Instance).ToList();
        if (blocks.Count == 0) Fail("no blocks named layerS.B.*");
        foreach (var block in blocks)
        {
            var convs = shapes.Keys.Select(k => Regex.Match(k, $@"^{Regex.Escape(block)}\.conv(\d+)\.weight$"))
                .Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value)).Order().ToList();
            if (convs.Count < 2 || convs[0] != 1 || convs[^1] != convs.Count)
                Fail($"block '{block}' should have convolutions conv1..convN, found {convs.Count}");
            string? projection = new[] { "downsample", "shortcut" }.FirstOrDefault(p => shapes.ContainsKey($"{block}.{p}.0.weight"));
            string output = residual;
            if (projection is not null) output = $"P_res{residualCount++}";
            else if (shapes[$"{block}.conv1.weight"][1] != shapes[$"{block}.conv{convs.Count}.weight"][0])
                Fail($"block '{block}' changes width without a projection shortcut (zero-padding shortcuts are not supported)");
            string input = residual;
            for (int k = 1; k <= convs.Count; k++)
            {
                string outPerm = k == convs.Count ? output : $"P_{block}.inner{k}";
                Conv($"{block}.conv{k}", $"{block}.bn{k}", input, outPerm);
                input = outPerm;
            }
            if (projection is not null)
                Conv($"{block}.{projection}.0", $"{block}.{projection}.1", residual, output);
            residual = output;
        }

        var heads = shapes.Where(kv => kv.Value.Length == 2 && kv.Key.EndsWith(".weight") && !BlockRegex().IsMatch(kv.Key)).Select(kv => kv.Key).ToList();
        if (heads.Count != 1) Fail($"expected one linear head outside the blocks, found {heads.Count}");
        P(residual).Add(new(heads[0], 1));

        var claimed = axes.Values.SelectMany(l => l).Select(a => a.Tensor).ToHashSet();
        var stray = shapes.Where(kv => kv.Value.Length >= 1 && !claimed.Contains(kv.Key) && kv.Key != heads[0] && kv.Key != ModuleOf(heads[0]) + ".bias").Select(kv => kv.Key).FirstOrDefault();
        if (stray is not null) Fail($"tensor '{stray}' does not fit the ResNet layout");
        return new PermutationSpec(perms.Select(kv => new KeyValuePair<string, IReadOnlyList<PermutedAxis>>(kv.Key, kv.Value)));
    }

    private static string ModuleOf(string tensor) { int i = tensor.LastIndexOf('.'); return i < 0 ? "" : tensor[..i]; }
    private static string LeafOf(string tensor) => tensor[(tensor.LastIndexOf('.') + 1)..];

    // Projection/skip modules, and torchvision's two-level block naming (layer1.0.conv1) even without projections.
    [GeneratedRegex(@"(^|\.)(downsample|shortcut|skip|residual|proj)(\.|$)|(^|\.)layer\d+\.\d+\.")]
    private static partial Regex ResidualRegex();
    [GeneratedRegex(@"^(layer\d+\.\d+)\.")]
    private static partial Regex BlockRegex();
    [GeneratedRegex(@"\d+$")]
    private static partial Regex TrailingDigits();
}

/// <summary>Orders names with embedded numbers numerically: fc2 &lt; fc10, layers.9 &lt; layers.10.</summary>
public sealed class NaturalComparer : IComparer<string>
{
    public static readonly NaturalComparer Instance = new();

    public int Compare(string? x, string? y)
    {
        if (x is null || y is null) return string.CompareOrdinal(x, y);
        int i = 0, j = 0;
        while (i < x.Length && j < y.Length)
        {
            if (char.IsDigit(x[i]) && char.IsDigit(y[j]))
            {
                int si = i, sj = j;
                while (i < x.Length && char.IsDigit(x[i])) i++;
                while (j < y.Length && char.IsDigit(y[j])) j++;
                var a = x[si..i].TrimStart('0'); var b = y[sj..j].TrimStart('0');
                int c = a.Length != b.Length ? a.Length.CompareTo(b.Length) : string.CompareOrdinal(a, b);
                if (c != 0) return c;
            }
            else
            {
                int c = x[i].CompareTo(y[j]);
                if (c != 0) return c;
                i++; j++;
            }
        }
        return (x.Length - i).CompareTo(y.Length - j);
    }
}
