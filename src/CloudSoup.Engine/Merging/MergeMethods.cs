// The compute of every merge method, by name: the data-plane half of CloudSoup.Control/Methods/MethodCatalog.cs.
// Soups are not here: they are job-level strategies with their own registry (Soups/Soups.cs).
using CloudSoup.Control.Methods;
using CloudSoup.Engine.Merging.Methods;

namespace CloudSoup.Engine.Merging;

public static class MergeMethods
{
    private static readonly Dictionary<string, IMergeMethod> ByName = new IMergeMethod[]
    {
        new Linear(), new TaskArithmetic(), new Ties(), new DareTies(), new DareLinear(), new Breadcrumbs(), new BreadcrumbsTies(),
        new Della(), new DellaLinear(), new Slerp(), new NuSlerp(), new MultiSlerp(), new Karcher(), new ModelStock(), new NearSwap(),
        new Sce(), new Ram(), new RamPlusTl(), new Passthrough(), new ArceeFusion(), new Agreement(), new Fisher(), new GradientMatching(),
    }.ToDictionary(m => m.Signature.Name, StringComparer.OrdinalIgnoreCase);

    public static IReadOnlyCollection<IMergeMethod> All => ByName.Values;

    /// <summary>
    /// The per-tensor compute for a recipe's method. A soup merges as the weighted average it chooses, so it maps to
    /// linear here until the soup step (Jobs/SoupStep.cs) swaps in its coefficients.
    /// </summary>
    public static IMergeMethod For(MethodSignature signature) =>
        ByName.TryGetValue(signature.Name, out var m) ? m
        : signature.NeedsEvaluation ? ByName[AveragingMethods.Linear.Name]
        : throw new InvalidOperationException($"merge method '{signature.Name}' is declared (MethodCatalog) but has no implementation in MergeMethods");

    public static IMergeMethod For(string name) => For(MethodCatalog.Get(name));
}
