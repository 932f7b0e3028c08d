using CloudSoup.Core.Merging.Methods;

namespace CloudSoup.Core.Merging;

/// <summary>Every merge method, registered by name in one place.</summary>
public static class MergeMethods
{
    private static readonly Dictionary<string, IMergeMethod> ByName = new(StringComparer.OrdinalIgnoreCase);

    static MergeMethods()
    {
        foreach (var m in new IMergeMethod[] { new Linear() })
            ByName[m.Name] = m;
    }

    public static IReadOnlyCollection<IMergeMethod> All => ByName.Values;

    public static bool TryGet(string name, out IMergeMethod method) => ByName.TryGetValue(name, out method!);
}
