using System.Text.Json;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Soups;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Soups;

/// <summary>
/// Soups on ingredients whose right answer is known by construction: four noisy copies of a linear
/// classifier (builtin:mlp with one layer) that labels the data, plus one garbage model with large random
/// weights. Any sensible soup must leave the garbage out.
/// </summary>
public class SoupTests
{
    internal const int Good = 4;
    internal const string Garbage = "garbage.safetensors";

    internal static void WriteIngredients(TempDir dir)
    {
        var gen = torch.manual_seed(1234);
        using var truth = torch.randn(4, 8, generator: gen);
        foreach (var (name, count) in new[] { ("heldout", 400), ("test", 400) })
        {
            var x = torch.randn(count, 8, generator: gen);
            var y = x.matmul(truth.t()).argmax(1);
            SafetensorsFiles.Write(dir[$"{name}.safetensors"], new Dictionary<string, torch.Tensor> { ["inputs"] = x, ["labels"] = y });
        }
        for (int i = 0; i < Good; i++)
            SafetensorsFiles.Write(dir[$"good{i}.safetensors"], new Dictionary<string, torch.Tensor>
            {
                ["fc1.weight"] = truth + 0.6f * torch.randn(4, 8, generator: gen),
                ["fc1.bias"] = 0.1f * torch.randn(4, generator: gen),
            });
        SafetensorsFiles.Write(dir[Garbage], new Dictionary<string, torch.Tensor>
        {
            ["fc1.weight"] = 8f * torch.randn(4, 8, generator: gen),
            ["fc1.bias"] = 8f * torch.randn(4, generator: gen),
        });
    }

    internal static string Recipe(string method, string extra = "", string evaluation = "evaluation: {model: 'builtin:mlp', data: heldout.safetensors, test: test.safetensors}") =>
        $"merge_method: {method}\nmodels: [{string.Join(", ", Enumerable.Range(0, Good).Select(i => $"good{i}.safetensors").Append(Garbage))}]\n{extra}\n{evaluation}\n";

    internal static async Task<CloudSoup.Engine.Reports.MergeReport> RunAsync(TempDir dir, string recipeText, string output = "out")
    {
        await using var sink = new LocalDirectorySink(dir[output]);
        return await new MergeJobRunner(new LocalCheckpointStore(dir.Path), new JobEvaluator()).RunAsync(RecipeParser.Parse(recipeText), sink, null, CancellationToken.None);
    }

    private static double Coefficient(SoupReport soup, string model) => soup.Ingredients.Single(i => i.Model == model).Coefficient;

    /// <summary>The written model must be exactly Σ c_i θ_i with the report's coefficients.</summary>
    private static void AssertOutputMatches(TempDir dir, SoupReport soup, string output = "out")
    {
        var merged = SafetensorsFiles.Read(dir[$"{output}/model.safetensors"]);
        using var expected = torch.zeros(4, 8);
        foreach (var i in soup.Ingredients)
            expected.add_(SafetensorsFiles.Read(dir[i.Model])["fc1.weight"], alpha: i.Coefficient);
        Assert.True(merged["fc1.weight"].allclose(expected, rtol: 1e-4, atol: 1e-5), "merged weights are not the reported weighted average");
    }

    [Fact]
    public async Task Uniform_soup_is_the_plain_average_and_the_garbage_drags_it_down()
    {
        using var dir = new TempDir();
        WriteIngredients(dir);
        var report = await RunAsync(dir, Recipe("uniform_soup"));
        var soup = report.Soup!;
        Assert.All(soup.Ingredients, i => Assert.Equal(0.2, i.Coefficient, 9));
        AssertOutputMatches(dir, soup);
        Assert.True(soup.HeldOutAccuracy < soup.Ingredients[0].HeldOutAccuracy, "with a garbage ingredient the uniform soup should trail the best ingredient");
        Assert.Equal(soup.HeldOutAccuracy, report.Evaluation!.Merged.HeldOut.Accuracy, 9);
    }

    [Fact]
    public async Task Greedy_soup_excludes_the_garbage_and_does_not_trail_the_best_ingredient()
    {
        using var dir = new TempDir();
        WriteIngredients(dir);
        var report = await RunAsync(dir, Recipe("greedy_soup"));
        var soup = report.Soup!;
        Assert.Equal(0, Coefficient(soup, Garbage));
        Assert.Equal(Garbage, soup.Ingredients[^1].Model);   // worst on held-out, so tried last
        Assert.False(soup.Steps.Single(s => s.Model == Garbage).Accepted);
        Assert.Equal(soup.Ingredients.Select(i => i.Model), soup.Steps.Select(s => s.Model));   // tried best first
        Assert.True(soup.HeldOutAccuracy >= soup.Ingredients.Max(i => i.HeldOutAccuracy));
        Assert.True(soup.Ingredients.Count(i => i.Used) >= 1);
        AssertOutputMatches(dir, soup);
        Assert.Contains("soup_search", report.PhaseSeconds.Keys);
        using var json = JsonDocument.Parse(File.ReadAllBytes(dir["out/report.json"]));
        Assert.Equal("greedy_soup", json.RootElement.GetProperty("soup").GetProperty("method").GetString());
    }

    [Fact]
    public async Task Pruned_soup_removes_the_garbage_first_and_keeps_the_best()
    {
        using var dir = new TempDir();
        WriteIngredients(dir);
        var soup = (await RunAsync(dir, Recipe("pruned_soup", "parameters: {passes: 2}"))).Soup!;
        Assert.Equal(0, Coefficient(soup, Garbage));
        var first = soup.Steps.First(s => s.Action == "remove");
        Assert.Equal(Garbage, first.Model);
        Assert.True(first.Accepted);
        Assert.True(soup.Ingredients[0].Coefficient > 0, "the best ingredient is never removed");
        Assert.DoesNotContain(soup.Steps, s => s.Model == soup.Ingredients[0].Model);
        AssertOutputMatches(dir, soup);
    }

    [Fact]
    public async Task Learned_soup_gives_the_garbage_almost_no_weight()
    {
        using var dir = new TempDir();
        WriteIngredients(dir);
        var soup = (await RunAsync(dir, Recipe("learned_soup", "parameters: {steps: 150, lr: 0.1}"))).Soup!;
        Assert.True(Coefficient(soup, Garbage) < 0.05, $"garbage weight {Coefficient(soup, Garbage)}");
        Assert.Equal(1.0, soup.Ingredients.Sum(i => i.Coefficient), 6);
        Assert.Contains("gradient", soup.Rule);
        Assert.True(soup.HeldOutAccuracy > soup.Steps[0].HeldOutAccuracy, "learning should beat the uniform start");
        AssertOutputMatches(dir, soup);
    }

    [Fact]
    public async Task Learned_soup_by_layer_gives_the_garbage_almost_no_weight_in_every_tensor()
    {
        using var dir = new TempDir();
        WriteIngredients(dir);
        var soup = (await RunAsync(dir, Recipe("learned_soup", "parameters: {steps: 150, lr: 0.1, by_layer: true}"))).Soup!;
        Assert.NotNull(soup.TensorCoefficients);
        Assert.Equal(["fc1.bias", "fc1.weight"], soup.TensorCoefficients!.Keys.Order());
        var weightCoefficients = soup.TensorCoefficients["fc1.weight"];
        Assert.True(weightCoefficients[Garbage] < 0.05, $"garbage weight {weightCoefficients[Garbage]}");
        var merged = SafetensorsFiles.Read(dir["out/model.safetensors"]);
        using var expected = torch.zeros(4, 8);
        foreach (var (model, c) in weightCoefficients) expected.add_(SafetensorsFiles.Read(dir[model])["fc1.weight"], alpha: c);
        Assert.True(merged["fc1.weight"].allclose(expected, rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public async Task Derivative_free_learned_soup_also_drops_the_garbage()
    {
        using var dir = new TempDir();
        WriteIngredients(dir);
        LearnedSoup.ForceDerivativeFree = true;
        try
        {
            var soup = (await RunAsync(dir, Recipe("learned_soup", "parameters: {steps: 60}"))).Soup!;
            Assert.Contains("derivative-free", soup.Rule);
            Assert.True(Coefficient(soup, Garbage) < 0.05, $"garbage weight {Coefficient(soup, Garbage)}");
        }
        finally { LearnedSoup.ForceDerivativeFree = false; }
    }

    [Fact]
    public void A_soup_without_evaluation_is_rejected_naming_the_field()
    {
        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(Recipe("greedy_soup", evaluation: "")));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.Equal("evaluation", e.Field);
    }

    [Fact]
    public void Soup_parameters_are_checked()
    {
        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(Recipe("pruned_soup", "parameters: {passes: 0}")));
        Assert.Equal("parameters.passes", e.Field);
        e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(Recipe("greedy_soup", "parameters: {by_layer: true}")));
        Assert.Equal("parameters.by_layer", e.Field);
    }

    [Fact]
    public async Task A_memory_budget_too_small_fails_before_writing_anything()
    {
        using var dir = new TempDir();
        WriteIngredients(dir);
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => RunAsync(dir,
            Recipe("greedy_soup", evaluation: "evaluation: {model: 'builtin:mlp', data: heldout.safetensors, memory_budget: 100}")));
        Assert.Equal("evaluation.memory_budget", e.Field);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir["out"]));
    }
}
