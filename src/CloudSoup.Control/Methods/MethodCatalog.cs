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
