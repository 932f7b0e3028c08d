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
        var closest = All.Select(x => (x.Name, Distance: EditDistance(name.ToLowerInvariant(), x.Name))).MinBy(x => x.Distance);
        string hint = closest.Distance <= Math.Max(2, name.Length / 3) ? $"did you mean {closest.Name}? " : "";
        throw CloudSoupException.Recipe(field, $"unknown merge method '{name}' ({hint}available: {string.Join(", ", All.Select(x => x.Name).Order())})");
    }

    private static int EditDistance(string a, string b)
    {
        var prev = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            var cur = new int[b.Length + 1];
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            prev = cur;
        }
        return prev[b.Length];
    }
}
