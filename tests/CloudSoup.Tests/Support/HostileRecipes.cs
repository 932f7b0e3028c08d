using System.Text;
using CloudSoup.Control.Recipes;

namespace CloudSoup.Tests.Support;

/// <summary>
/// One hostile recipe: its text, the field its error must name (a prefix: deep paths go on for 31 levels) and a
/// phrase the error must say. <see cref="Crashes"/> marks the cases that took the process down before
/// RecipeLimits (stack overflow, unbounded memory): those run only in a separate process.
/// </summary>
public sealed record HostileRecipe(string Name, string Text, string Field, string Mention, bool Crashes)
{
    public override string ToString() => Name;
}

/// <summary>The cases of docs/reliability.md, shared by the CLI, HTTP and blob-drop tests so each path sees the same input.</summary>
public static class HostileRecipes
{
    /// <summary>A model reference in the shape the service accepts; these recipes fail before anything is read.</summary>
    private const string Model = "checkpoints/hostile/a.safetensors";

    public static readonly HostileRecipe RecursiveAlias = new("recursive-alias",
        $"merge_method: linear\nmodels:\n  - model: {Model}\n    parameters:\n      weight: &r [{{value: *r}}]\n",
        "models[0].parameters.weight[0].value", "recursive alias", Crashes: true);

    public static readonly HostileRecipe DeepYaml = new("nested-30000-yaml",
        "merge_method: linear\nmodels: " + new string('[', 30_000) + new string(']', 30_000) + "\n",
        "models[0][0]", $"nests deeper than {RecipeLimits.MaxDepth} levels", Crashes: true);

    public static readonly HostileRecipe DeepJson = new("nested-30000-json",
        "{\"merge_method\": \"linear\", \"models\": " + new string('[', 30_000) + new string(']', 30_000) + "}",
        "models[0][0]", $"nests deeper than {RecipeLimits.MaxDepth} levels", Crashes: true);

    /// <summary>Ten anchors, each a filter entry whose value lists the previous one nine times: 9^10 entries once expanded, in 1.6 KB.</summary>
    public static readonly HostileRecipe AliasBomb = new("alias-bomb-filter-lists", AliasBombText(),
        "models[0].parameters.weight", $"more than {RecipeLimits.MaxNodes} YAML nodes", Crashes: true);

    public static readonly HostileRecipe UnclosedFlowMapping = new("unclosed-flow-mapping",
        "{a: [1, 2", "recipe", "is not valid YAML or JSON (line", Crashes: false);

    public static readonly HostileRecipe UnclosedInRecipe = new("unclosed-flow-in-recipe",
        $"merge_method: linear\nmodels: [{{model: {Model}, parameters: {{weight: [1, 2\n", "recipe", "is not valid YAML or JSON (line", Crashes: false);

    /// <summary>An escape outside Unicode: YamlDotNet's scanner throws ArgumentOutOfRangeException, not a YamlException.</summary>
    public static readonly HostileRecipe EscapeOutsideUnicode = new("escape-outside-unicode",
        "merge_method: \"\\UFFFFFFFF\"\nmodels: [a]\n", "recipe", "is not valid YAML or JSON", Crashes: false);

    public static readonly HostileRecipe TenThousandModels = new("10000-models",
        "merge_method: linear\nmodels:\n" + string.Concat(Enumerable.Range(0, 10_000).Select(i => $"  - model: checkpoints/hostile/m{i:D5}.safetensors\n")),
        "models", $"at most {RecipeLimits.MaxModels}", Crashes: false);

    public static readonly HostileRecipe TooManySlices = new("2000-slices",
        "merge_method: passthrough\nslices:\n" + string.Concat(Enumerable.Repeat($"  - sources: [{{model: {Model}, layer_range: [0, 1]}}]\n", 2_000)),
        "slices", $"at most {RecipeLimits.MaxSlices}", Crashes: false);

    public static readonly HostileRecipe TooManyFilterEntries = new("1000-filter-entries",
        $"merge_method: linear\nmodels: [{{model: {Model}}}]\nparameters:\n  weight:\n" + string.Concat(Enumerable.Range(0, 1_000).Select(i => $"    - {{filter: layer{i}, value: 1}}\n")),
        "parameters.weight", $"at most {RecipeLimits.MaxParameterListEntries}", Crashes: false);

    public static readonly HostileRecipe LongName = new("5000-character-name",
        $"merge_method: linear\nname: {new string('n', 5_000)}\nmodels: [{Model}]\n", "name", $"at most {RecipeLimits.MaxScalarChars}", Crashes: false);

    public static readonly HostileRecipe ControlCharacters = new("control-characters-in-a-reference",
        "merge_method: linear\nmodels: [\"checkpoints/a\\n\\u001b[31mred\\u202e.safetensors\"]\n", "models[0]", "control characters", Crashes: false);

    public static readonly HostileRecipe TooLarge = new("over-1-MiB",
        "merge_method: linear\nmodels: [" + Model + "]\n#" + new string('x', RecipeLimits.MaxBytes) + "\n", "recipe", $"larger than {RecipeLimits.MaxBytes} bytes", Crashes: false);

    public static readonly IReadOnlyList<HostileRecipe> All =
    [
        RecursiveAlias, DeepYaml, DeepJson, AliasBomb, UnclosedFlowMapping, UnclosedInRecipe, EscapeOutsideUnicode,
        TenThousandModels, TooManySlices, TooManyFilterEntries, LongName, ControlCharacters, TooLarge,
    ];

    public static HostileRecipe Get(string name) => All.Single(r => r.Name == name);

    /// <summary>Case names for a theory (names, so each case is its own test in the runner).</summary>
    public static TheoryData<string> Names(bool includeCrashes = true)
    {
        var data = new TheoryData<string>();
        foreach (var r in All.Where(r => includeCrashes || !r.Crashes)) data.Add(r.Name);
        return data;
    }

    private static string AliasBombText()
    {
        var sb = new StringBuilder($"merge_method: linear\nmodels:\n  - model: {Model}\n    parameters:\n      weight:\n");
        sb.Append("        - &l0 {filter: a, value: 1}\n");
        for (int i = 1; i < 10; i++)
            sb.Append($"        - &l{i} {{filter: a, value: [{string.Join(", ", Enumerable.Repeat($"*l{i - 1}", 9))}]}}\n");
        return sb.ToString();
    }
}
