using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;
using CloudSoup.Tests.Support;

namespace CloudSoup.Tests.Recipes;

/// <summary>
/// RecipeLimits, in process: only inputs that never crashed the process run here. The recursive alias, the deep
/// nesting and the alias bomb run in separate processes (Cli/HostileRecipeCliTests, Service/HostileInputServiceTests).
/// </summary>
public class RecipeLimitsTests
{
    private const string Head = "merge_method: linear\nmodels: [a]\n";

    public static TheoryData<string> NonCrashing => HostileRecipes.Names(includeCrashes: false);

    private static CloudSoupException Refused(string text)
    {
        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(text));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.StartsWith(e.Field + ":", e.Message);
        Assert.DoesNotContain(e.Message, c => char.IsControl(c));
        Assert.True(e.Message.Length <= ErrorText.MaxMessageChars, $"{e.Message.Length} characters");
        return e;
    }

    [Theory]
    [MemberData(nameof(NonCrashing))]
    public void Hostile_recipes_are_refused_in_one_line_naming_the_field(string name)
    {
        var r = HostileRecipes.Get(name);
        var e = Refused(r.Text);
        Assert.StartsWith(r.Field, e.Field);
        Assert.Contains(r.Mention, e.Message);
    }

    [Fact]
    public void A_recipe_at_every_limit_parses()
    {
        string Ref(int i) => $"checkpoints/{i:D4}-" + new string('r', RecipeLimits.MaxReferenceChars - 20) + ".st";
        Assert.Equal(RecipeLimits.MaxReferenceChars, Ref(0).Length);
        var models = string.Concat(Enumerable.Range(0, RecipeLimits.MaxModels).Select(i => $"  - {Ref(i)}\n"));
        var filters = string.Concat(Enumerable.Range(0, RecipeLimits.MaxParameterListEntries).Select(i => $"    - {{filter: l{i}, value: 1}}\n"));
        var gradient = string.Join(", ", Enumerable.Repeat("0.5", RecipeLimits.MaxParameterListEntries));
        var nested = new string('[', RecipeLimits.MaxDepth - 1) + new string(']', RecipeLimits.MaxDepth - 1);   // the root mapping is level 1
        var recipe = RecipeParser.Parse(
            $"merge_method: linear\nname: {new string('n', RecipeLimits.MaxScalarChars)}\nmodels:\n{models}" +
            $"parameters:\n  weight:\n{filters}  normalize: true\n");
        // The deepest nesting the reader accepts (under a key whose meaning the parser checks later).
        Assert.NotNull(BoundedYaml.Load(Head + $"tokenizer: {nested}\n"));
        Assert.Equal(RecipeLimits.MaxModels, recipe.Models.Count);
        Assert.Equal(RecipeLimits.MaxParameterListEntries, ((FilterSetting)recipe.Parameters["weight"]).Entries.Count);
        Assert.Equal(RecipeLimits.MaxParameterListEntries, ((GradientSetting)RecipeParser.Parse(Head + $"parameters: {{weight: [{gradient}]}}\n").Parameters["weight"]).Points.Count);
    }

    [Fact]
    public void One_more_than_each_limit_is_refused_naming_the_field()
    {
        Assert.Equal("models", Refused("merge_method: linear\nmodels: [" + string.Join(", ", Enumerable.Range(0, RecipeLimits.MaxModels + 1).Select(i => $"m{i}")) + "]\n").Field);
        Assert.Equal("models[0]", Refused($"merge_method: linear\nmodels: [{new string('r', RecipeLimits.MaxReferenceChars + 1)}]\n").Field);
        Assert.Equal("name", Refused(Head + $"name: {new string('n', RecipeLimits.MaxScalarChars + 1)}\n").Field);
        Assert.Equal("parameters.weight", Refused(Head + $"parameters: {{weight: [{string.Join(", ", Enumerable.Repeat("0.5", RecipeLimits.MaxParameterListEntries + 1))}]}}\n").Field);
        Assert.Equal("parameters.weight", Refused(Head + "parameters:\n  weight:\n" + string.Concat(Enumerable.Range(0, RecipeLimits.MaxParameterListEntries + 1).Select(i => $"    - {{filter: l{i}, value: 1}}\n"))).Field);
        Assert.Equal("slices", Refused("merge_method: passthrough\nslices:\n" + string.Concat(Enumerable.Repeat("  - sources: [{model: a, layer_range: [0, 1]}]\n", RecipeLimits.MaxSlices + 1))).Field);
        Assert.Equal("slices[0].sources", Refused("merge_method: linear\nslices:\n  - sources:\n" + string.Concat(Enumerable.Range(0, RecipeLimits.MaxSliceSources + 1).Select(i => $"      - {{model: m{i}, layer_range: [0, 1]}}\n"))).Field);
        // Distinct models across slices count like models: the 257th is refused where it first appears.
        Assert.Equal($"slices[{RecipeLimits.MaxModels}].sources[0].model", Refused("merge_method: passthrough\nslices:\n" + string.Concat(Enumerable.Range(0, RecipeLimits.MaxModels + 1).Select(i => $"  - sources: [{{model: m{i}, layer_range: [0, 1]}}]\n"))).Field);
        var deeper = new string('[', RecipeLimits.MaxDepth) + new string(']', RecipeLimits.MaxDepth);
        Assert.StartsWith("tokenizer[0]", Refused(Head + $"tokenizer: {deeper}\n").Field);
    }

    [Fact]
    public void Nodes_are_counted_after_alias_expansion()
    {
        // Head + "tokenizer: [...]" holds 8 nodes besides the list's items.
        string Flat(int items) => Head + "tokenizer: [" + string.Join(",", Enumerable.Repeat("0", items)) + "]\n";
        Assert.NotNull(BoundedYaml.Load(Flat(RecipeLimits.MaxNodes - 8)));
        Assert.Contains($"more than {RecipeLimits.MaxNodes} YAML nodes", Refused(Flat(RecipeLimits.MaxNodes - 7)).Message);

        // An alias costs its anchor's whole subtree each time it is used.
        string half = string.Join(",", Enumerable.Repeat("0", RecipeLimits.MaxNodes / 2));
        var e = Refused(Head + $"tokenizer: {{a: &x [{half}], b: *x}}\n");
        Assert.Equal("tokenizer.b", e.Field);
    }

    [Fact]
    public void Aliases_within_the_limits_work_as_yaml_says()
    {
        var recipe = RecipeParser.Parse("merge_method: linear\nmodels:\n  - {model: a, parameters: {weight: &w [{filter: fc, value: 0.25}, {value: 1}]}}\n  - {model: b, parameters: {weight: *w}}\n");
        Assert.Equal(recipe.Models[0].Parameters["weight"].ToJson().ToJsonString(), recipe.Models[1].Parameters["weight"].ToJson().ToJsonString());
        // A later anchor with the same name replaces the earlier one for the aliases after it.
        var again = RecipeParser.Parse("merge_method: linear\nmodels:\n  - {model: a, parameters: {weight: &w 1}}\n  - {model: b, parameters: {weight: &w 2}}\n  - {model: c, parameters: {weight: *w}}\n");
        Assert.Equal(2.0, ((ScalarSetting)again.Models[2].Parameters["weight"]).Value.Number);
    }

    [Theory]
    [InlineData("merge_method: linear\nmodels: [{model: a, model: b}]\n", "models[0].model", "given twice")]
    [InlineData("merge_method: linear\nmerge_method: ties\nmodels: [a]\n", "merge_method", "given twice")]
    [InlineData("merge_method: linear\nmodels: [a]\n? [x]\n: 1\n", "recipe", "not a plain name")]
    [InlineData("merge_method: linear\nmodels: [*nowhere]\n", "models[0]", "not defined before it")]
    [InlineData("merge_method: linear\nmodels: [a]\n---\nmerge_method: ties\n", "recipe", "more than one YAML document")]
    [InlineData("# only a comment\n", "recipe", "empty")]
    [InlineData("merge_method: \"\\uD800\"\nmodels: [a]\n", "recipe", "not valid YAML")]
    public void Malformed_documents_are_refused_naming_the_field(string text, string field, string mention)
    {
        var e = Refused(text);
        Assert.Equal(field, e.Field);
        Assert.Contains(mention, e.Message);
    }

    [Fact]
    public void Input_quoted_in_an_error_is_one_printable_line()
    {
        // An unknown method name is quoted back: newline, ANSI escape and right-to-left override become visible escapes.
        var e = Refused("merge_method: \"a\\n\\u001b[2J\\u202eb\"\nmodels: [a]\n");
        Assert.Equal("merge_method", e.Field);
        Assert.Contains("a\\n\\u001B[2J\\u202Eb", e.Message);

        var unknown = Refused(Head + "\"x\\ny\": 1\n");
        Assert.Equal("x\\ny", unknown.Field);

        Assert.Equal("abc", ErrorText.OneLine("abc"));
        Assert.Equal("a\\r\\nb\\u0000", ErrorText.OneLine("a\r\nb\0"));
        Assert.Equal("😀 ok", ErrorText.OneLine("😀 ok"));
        var cut = ErrorText.OneLine(new string('x', 5000));
        Assert.Equal(ErrorText.MaxMessageChars, cut.Length);
        Assert.EndsWith("…", cut);
    }
}
