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
        foreach (var m in Soups.SoupMethod.All) ByName[m.Name] = m;   // job-level strategies, see Soups/SoupSearch.cs
    }

    public static IReadOnlyCollection<IMergeMethod> All => ByName.Values;

    public static bool TryGet(string name, out IMergeMethod method) => ByName.TryGetValue(name, out method!);
}
