// Applying permutations to a state dict: new unit i of a permuted axis is old unit perm[i]
// (index_select along the axis, like Git Re-Basin's get_permuted_param in samuela/git-re-basin src/weight_matching.py).
using TorchSharp;

namespace CloudSoup.Engine.Alignment;

public static class Permutations
{
    /// <summary>
    /// Returns a new state dict with every tensor the spec names permuted along its axes. Tensors the spec does
    /// not name are aliases of the inputs (same storage, own handle), so the caller may dispose the result and
    /// the input independently.
    /// </summary>
    public static Dictionary<string, torch.Tensor> Apply(PermutationSpec spec, IReadOnlyDictionary<string, int[]> perms,
        IReadOnlyDictionary<string, torch.Tensor> stateDict)
    {
        var sizes = spec.Validate(Shapes(stateDict));
        foreach (var name in spec.Names)
        {
            if (!perms.TryGetValue(name, out var p)) throw new ArgumentException($"no index vector for permutation '{name}'");
            if (p.Length != sizes[name] || !IsPermutation(p))
                throw new ArgumentException($"the index vector for permutation '{name}' is not a permutation of 0..{sizes[name] - 1}");
        }
        using var _ = torch.no_grad();
        var index = perms.Where(kv => sizes.ContainsKey(kv.Key)).ToDictionary(kv => kv.Key, kv => IndexTensor(kv.Value));
        try
        {
            var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
            foreach (var (name, tensor) in stateDict)
                result[name] = spec.PermsOf(name).Count == 0 ? tensor.alias() : Permute(tensor, spec.PermsOf(name), index, exceptAxis: -1);
            return result;
        }
        finally
        {
            foreach (var t in index.Values) t.Dispose();
        }
    }

    /// <summary>A permutation as the int64 index tensor index_select takes.</summary>
    internal static torch.Tensor IndexTensor(int[] perm) => torch.tensor(perm.Select(i => (long)i).ToArray());

    /// <summary>The identity permutation for every permutation of the spec.</summary>
    public static Dictionary<string, int[]> Identity(IReadOnlyDictionary<string, int> sizes) =>
        sizes.ToDictionary(kv => kv.Key, kv => Enumerable.Range(0, kv.Value).ToArray());

    /// <summary>The tensor with its permuted axes index-selected, all but <paramref name="exceptAxis"/>. Returns a new tensor.</summary>
    internal static torch.Tensor Permute(torch.Tensor tensor, IReadOnlyList<(int Axis, string Perm, int Block)> axes,
        IReadOnlyDictionary<string, torch.Tensor> index, int exceptAxis)
    {
        var current = tensor.alias();
        foreach (var (axis, perm, block) in axes)
        {
            if (axis == exceptAxis) continue;
            using var blockIndex = block == 1 ? index[perm].alias() : BlockIndex(index[perm], block);
            var next = current.index_select(axis, blockIndex);
            current.Dispose();
            current = next;
        }
        return current;
    }

    /// <summary>Unit i → elements i·block .. i·block+block−1, in order: [p0·b, p0·b+1, ..., p1·b, ...].</summary>
    private static torch.Tensor BlockIndex(torch.Tensor index, int block)
    {
        using var offsets = torch.arange(block, torch.int64);
        using var starts = index.unsqueeze(1) * block;
        using var all = starts + offsets;
        return all.flatten();
    }

    internal static Dictionary<string, long[]> Shapes(IReadOnlyDictionary<string, torch.Tensor> stateDict) =>
        stateDict.ToDictionary(kv => kv.Key, kv => kv.Value.shape, StringComparer.Ordinal);

    /// <summary>True when <paramref name="p"/> holds each of 0..n−1 once.</summary>
    internal static bool IsPermutation(int[] p)
    {
        var seen = new bool[p.Length];
        foreach (int i in p)
        {
            if (i < 0 || i >= p.Length || seen[i]) return false;
            seen[i] = true;
        }
        return true;
    }

    /// <summary>True when <paramref name="p"/> leaves every unit in place.</summary>
    internal static bool IsIdentity(int[] p)
    {
        for (int i = 0; i < p.Length; i++)
            if (p[i] != i) return false;
        return true;
    }
}
