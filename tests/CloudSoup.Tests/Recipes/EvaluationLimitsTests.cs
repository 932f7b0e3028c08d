// evaluation.limits / fisher.limits (docs/sandbox.md): parsed with the field named, kept through the soup.yaml rewrite.
using CloudSoup.Control.Errors;
using CloudSoup.Control.Intake;
using CloudSoup.Control.Recipes;

namespace CloudSoup.Tests.Recipes;

public class EvaluationLimitsTests
{
    private const string Head = "merge_method: linear\nmodels: [a.safetensors, b.safetensors]\n";

    [Fact]
    public void Limits_are_read_and_survive_the_soup_file_rewrite()
    {
        var recipe = RecipeParser.Parse(Head + "evaluation: {model: m.pt, data: d.safetensors, limits: {memory: 2GB, seconds: 30}}");
        Assert.Equal(new EvaluationLimits(2_000_000_000, 30), recipe.Evaluation!.Limits);
        var again = RecipeParser.Parse(BlobIntake.ResolveRelativeReferences(recipe, "checkpoints/exp"));
        Assert.Equal(recipe.Evaluation.Limits, again.Evaluation!.Limits);
        Assert.Null(RecipeParser.Parse(Head + "evaluation: {model: m.pt, data: d.safetensors}").Evaluation!.Limits);
    }

    [Theory]
    [InlineData("limits: {memory: lots}", "evaluation.limits.memory")]
    [InlineData("limits: {memory: 1MB}", "evaluation.limits.memory")]
    [InlineData("limits: {seconds: -1}", "evaluation.limits.seconds")]
    [InlineData("limits: {cpu: 2}", "evaluation.limits.cpu")]
    [InlineData("limits: 4GB", "evaluation.limits")]
    public void Bad_limits_are_refused_naming_the_field(string limits, string field)
    {
        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(Head + $"evaluation: {{model: m.pt, data: d.safetensors, {limits}}}"));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.StartsWith(field, e.Message);
    }
}
