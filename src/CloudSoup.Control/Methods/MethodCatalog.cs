// Every merge method CloudSoup accepts, by name, in one place. The data plane registers one compute
// implementation per entry (CloudSoup.Engine/Merging/MergeMethods.cs, CloudSoup.Engine/Soups/Soups.cs) and
// checks at start-up that the two lists agree.
using CloudSoup.Control.Errors;

namespace CloudSoup.Control.Methods;

public static class MethodCatalog
{
    public static readonly IReadOnlyList<MethodSignature> All =
    [
        AveragingMethods.Linear,
        TaskVectorMethods.TaskArithmetic, TaskVectorMethods.Ties, TaskVectorMethods.DareTies, TaskVectorMethods.DareLinear,
        TaskVectorMethods.Breadcrumbs, TaskVectorMethods.BreadcrumbsTies, TaskVectorMethods.Della, TaskVectorMethods.DellaLinear,
        GeometricMethods.Slerp, GeometricMethods.NuSlerp, GeometricMethods.MultiSlerp, GeometricMethods.Karcher, GeometricMethods.ModelStock, GeometricMethods.NearSwap,
        TaskVectorStatisticsMethods.Sce, TaskVectorStatisticsMethods.Ram, TaskVectorStatisticsMethods.RamPlusTl, TaskVectorStatisticsMethods.ArceeFusion,
        AveragingMethods.Passthrough,
        PaperMethods.Agreement, PaperMethods.Fisher, PaperMethods.GradientMatching,
        SoupMethods.Uniform, SoupMethods.Greedy, SoupMethods.Pruned, SoupMethods.Learned,
    ];

    /// <summary>
    /// Every parameter name a mergekit merge method declares (mergekit/merge_methods/*.py, generalized_task_arithmetic.py).
    /// mergekit asks a method only for the parameters it declares, so its configs may carry ones the method does not use
    /// (its own tests give every model a <c>weight</c>, whatever the method): the recipe parser ignores these with a
    /// warning, and refuses any other name the method does not take.
    /// </summary>
    public static readonly IReadOnlySet<string> MergekitParameterNames = new HashSet<string>(StringComparer.Ordinal)
    {
        "weight", "normalize", "t", "nuslerp_flatten", "nuslerp_row_wise", "normalize_weights", "eps", "max_iter", "tol",
        "filter_wise", "int8_mask", "rescale", "lambda", "density", "gamma", "epsilon", "select_topk", "r", "alpha", "scale",
    };

    private static readonly Dictionary<string, MethodSignature> ByName = All.ToDictionary(m => m.Name, StringComparer.OrdinalIgnoreCase);

    public static bool TryGet(string name, out MethodSignature signature) => ByName.TryGetValue(name, out signature!);

    /// <summary>The method of that name, or a recipe error at <paramref name="field"/> suggesting the closest name.</summary>
    public static MethodSignature Get(string name, string field = "merge_method")
    {
        if (ByName.TryGetValue(name, out var m)) return m;
        string hint = Suggestions.Closest(name, All.Select(x => x.Name)) is { } closest ? $"did you mean {closest}? " : "";
        throw CloudSoupException.Recipe(field, $"unknown merge method '{name}' ({hint}available: {string.Join(", ", All.Select(x => x.Name).Order())})");
    }
}
