using CloudSoup.Control.Errors;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Recipes;

namespace CloudSoup.Tests.Recipes;

/// <summary>The recipe's parallelism section (docs/fanout.md): parts as a bounded number or auto, one-line errors naming the field.</summary>
public class ParallelismRecipeTests
{
    private const string Linear = "merge_method: linear\nmodels: [a.safetensors, b.safetensors]\n";

    [Theory]
    [InlineData("parallelism: {parts: 4}\n", 4)]
    [InlineData("parallelism: {parts: 1}\n", 1)]
    [InlineData("parallelism: {parts: 64}\n", 64)]
    [InlineData("parallelism: 8\n", 8)]
    [InlineData("parallelism: {parts: auto}\n", null)]
    [InlineData("parallelism: auto\n", null)]
    public void Parts_are_a_number_from_1_to_64_or_auto(string section, int? parts)
    {
        var recipe = RecipeParser.Parse(Linear + section);
        Assert.NotNull(recipe.Parallelism);
        Assert.Equal(parts, recipe.Parallelism!.Parts);
        Assert.Equal(parts is null, recipe.Parallelism.Auto);
    }

    [Theory]
    [InlineData("parallelism: {parts: 0}\n", "parallelism.parts", "is 0; a job is split into 1 to 64 parts")]
    [InlineData("parallelism: {parts: 65}\n", "parallelism.parts", "is 65; a job is split into 1 to 64 parts")]
    [InlineData("parallelism: {parts: -2}\n", "parallelism.parts", "1 to 64")]
    [InlineData("parallelism: {parts: 99999999999999}\n", "parallelism.parts", "must be a number from 1 to 64 or auto")]
    [InlineData("parallelism: {parts: many}\n", "parallelism.parts", "must be a number from 1 to 64 or auto (got 'many')")]
    [InlineData("parallelism: {parts: [2]}\n", "parallelism.parts", "must be a number")]
    [InlineData("parallelism: {parts: 2.5}\n", "parallelism.parts", "must be a number")]
    [InlineData("parallelism: {workers: 2}\n", "parallelism.workers", "unknown key (expected parts)")]
    [InlineData("parallelism: {}\n", "parallelism.parts", "is missing")]
    [InlineData("parallelism: [4]\n", "parallelism", "must be {parts: N} with N from 1 to 64, or {parts: auto}")]
    [InlineData("parallelism: \"\\u001b[31m\"\n", "parallelism", "got '?[31m'")]
    public void Bad_parallelism_is_refused_in_one_line_naming_the_field(string section, string field, string mention)
    {
        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(Linear + section));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.Equal(field, e.Field);
        Assert.StartsWith(field + ":", e.Message);
        Assert.Contains(mention, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain('\u001b', e.Message);
    }

    [Fact]
    public void A_recipe_without_the_section_keeps_its_job_id_and_the_resolved_recipe_carries_the_section()
    {
        var versions = new Dictionary<string, string> { ["a.safetensors"] = "1", ["b.safetensors"] = "2" };
        var plain = RecipeParser.Parse(Linear);
        Assert.Null(plain.Parallelism);
        Assert.False(RecipeJson.ToJson(plain).ContainsKey("parallelism"));
        var split = RecipeParser.Parse(Linear + "parallelism: {parts: 4}\n");
        Assert.Equal(4, RecipeJson.ToJson(split)["parallelism"]!["parts"]!.GetValue<int>());
        Assert.Equal("auto", RecipeJson.ToJson(RecipeParser.Parse(Linear + "parallelism: auto\n"))["parallelism"]!["parts"]!.GetValue<string>());
        Assert.NotEqual(JobIds.Compute(plain, versions), JobIds.Compute(split, versions));
        // The resolved recipe reads back to the same section.
        Assert.Equal(4, RecipeParser.Parse(RecipeJson.ToJsonString(split)).Parallelism!.Parts);
    }
}
