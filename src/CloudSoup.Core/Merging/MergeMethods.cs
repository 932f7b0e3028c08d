using CloudSoup.Core.Merging.Methods;

namespace CloudSoup.Core.Merging;

/// <summary>Every merge method, registered by name in one place.</summary>
public static class MergeMethods
{
    private static readonly Dictionary<string, IMergeMethod> ByName = new(StringComparer.OrdinalIgnoreCase);

    static MergeMethods()
    {
        foreach (var m in new IMergeMethod[]
        {
            new Linear(), new TaskArithmetic(), new Ties(), new DareTies(), new DareLinear(), new Breadcrumbs(), new BreadcrumbsTies(),
            new Della(), new DellaLinear(), new Slerp(), new NuSlerp(), new MultiSlerp(), new Karcher(), new ModelStock(), new NearSwap(),
            new Sce(), new Ram(), new RamPlusTl(), new Passthrough(), new ArceeFusion(), new Agreement(), new Fisher(), new GradientMatching(),
        })
            ByName[m.Name] = m;
        foreach (var m in Soups.SoupMethod.All) ByName[m.Name] = m;   // job-level strategies, see Soups/SoupSearch.cs
    }

    public static IReadOnlyCollection<IMergeMethod> All => ByName.Values;

    public static bool TryGet(string name, out IMergeMethod method) => ByName.TryGetValue(name, out method!);
}
