// mergekit's example configs (arcee-ai/mergekit examples/ties.yml, gradient-slerp.yml, orcamini-platy-44layer.yml)
// parsed, round-tripped and run end to end, and the
// up-front rejection of impossible method/parameter combinations (errors name the field).
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Merging.Methods;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;
using static CloudSoup.Tests.Merging.Methods.MethodFixture;

namespace CloudSoup.Tests.Merging.Methods;

public class MethodRecipeTests
{
    private const string TiesYml = """
        models:
          - model: psmathur/orca_mini_v3_13b
            parameters:
              density: [1, 0.7, 0.1]
              weight: 1.0
          - model: garage-bAInd/Platypus2-13B
            parameters:
              density: 0.5
              weight: [0, 0.3, 0.7, 1]
          - model: WizardLM/WizardMath-13B-V1.0
            parameters:
              density: 0.33
              weight:
                - filter: mlp
                  value: 0.5
                - value: 0
        merge_method: ties
        base_model: TheBloke/Llama-2-13B-fp16
        parameters:
          normalize: true
          int8_mask: true
        dtype: float16
        """;

    [Fact]
    public void Ties_example_round_trips_through_json()
    {
        var recipe = RecipeParser.Parse(TiesYml);
        string json = RecipeJson.ToJsonString(recipe);
        Assert.Equal(json, RecipeJson.ToJsonString(RecipeParser.Parse(json)));
        Assert.Equal("ties", recipe.MergeMethod);
        Assert.Equal(4, recipe.InputModels.Count);
    }

    private static Dictionary<string, torch.Tensor> Model(int seed)
    {
        using var gen = new torch.Generator((ulong)seed);
        var d = new Dictionary<string, torch.Tensor>();
        for (int layer = 0; layer < 3; layer++)
        {
            d[$"model.layers.{layer}.mlp.weight"] = torch.randn(4, 5, generator: gen);
            d[$"model.layers.{layer}.self_attn.weight"] = torch.randn(4, 5, generator: gen);
        }
        return d;
    }

    [Fact]
    public async Task Ties_example_runs_with_gradients_and_filters_resolved_per_tensor()
    {
        using var dir = new TempDir();
        string[] names = ["orca", "platypus", "wizard", "llama"];
        var models = names.Select((n, i) => Model(i + 1)).ToArray();
        for (int i = 0; i < 4; i++) SafetensorsFiles.Write(dir[$"{names[i]}.safetensors"], models[i]);
        var yaml = TiesYml.Replace("psmathur/orca_mini_v3_13b", "orca.safetensors").Replace("garage-bAInd/Platypus2-13B", "platypus.safetensors")
            .Replace("WizardLM/WizardMath-13B-V1.0", "wizard.safetensors").Replace("TheBloke/Llama-2-13B-fp16", "llama.safetensors");
        await using (var sink = new LocalDirectorySink(dir["out"]))
            await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(RecipeParser.Parse(yaml), sink, null, CancellationToken.None);
        var merged = SafetensorsFiles.Read(dir["out/model.safetensors"]);

        // Layer 1 of 3 (t = 0.5): orca density 0.7·… gradient [1,0.7,0.1] → 0.7, weight 1; platypus density 0.5,
        // weight gradient [0,0.3,0.7,1] at 0.5 → 0.5; wizard density 0.33, weight 0.5 on mlp, 0 on attention.
        foreach (var (tensor, wizardWeight) in new[] { ("model.layers.1.mlp.weight", 0.5), ("model.layers.1.self_attn.weight", 0.0) })
        {
            var m = new Ties();
            var input = Input(m, models[3][tensor], [models[0][tensor], models[1][tensor], models[2][tensor]],
                D(("normalize", true)), [D(("weight", 1.0), ("density", 0.7)), D(("weight", 0.5), ("density", 0.5)), D(("weight", wizardWeight), ("density", 0.33))]);
            var expected = m.Merge(input).to_type(torch.ScalarType.Float16).to_type(torch.ScalarType.Float32);
            Assert.Equal(torch.ScalarType.Float16, merged[tensor].dtype);
            Assert.True(merged[tensor].to_type(torch.ScalarType.Float32).allclose(expected, rtol: 1e-3, atol: 1e-3), tensor);
        }
    }

    [Fact]
    public void Gradient_slerp_parses_in_its_slices_form_and_its_models_form()
    {
        var sliced = RecipeParser.Parse("""
            slices:
              - sources:
                  - model: orca_mini_v3_13b
                    layer_range: [0, 40]
                  - model: Platypus2-13B
                    layer_range: [0, 40]
            merge_method: slerp
            base_model: orca_mini_v3_13b
            parameters:
              t:
                - filter: self_attn
                  value: [0, 0.5, 0.3, 0.7, 1]
                - filter: mlp
                  value: [1, 0.5, 0.7, 0.3, 0]
                - value: 0.5
            dtype: float16
            """);
        Assert.Equal(["orca_mini_v3_13b", "Platypus2-13B"], sliced.Models.Select(m => m.Model));
        Assert.Equal(40, sliced.Slices!.Single().Length);
        Assert.Equal(RecipeJson.ToJsonString(sliced), RecipeJson.ToJsonString(RecipeParser.Parse(RecipeJson.ToJsonString(sliced))));
        var recipe = RecipeParser.Parse("""
            models: [{model: orca_mini_v3_13b}, {model: Platypus2-13B}]
            merge_method: slerp
            base_model: orca_mini_v3_13b
            parameters:
              t:
                - filter: self_attn
                  value: [0, 0.5, 0.3, 0.7, 1]
                - filter: mlp
                  value: [1, 0.5, 0.7, 0.3, 0]
                - value: 0.5
            dtype: float16
            """);
        Assert.Equal(0.4949, recipe.Parameters["t"].Evaluate("model.layers.10.self_attn.q_proj.weight", new LayerPosition(10, 40))!.Value.Number!.Value, 4);
    }

    [Fact]
    public void Passthrough_frankenmerge_with_slices_parses_into_44_layers()
    {
        var recipe = RecipeParser.Parse("""
            slices:
              - sources: [{model: orca, layer_range: [0, 24]}]
              - sources: [{model: platypus, layer_range: [20, 40]}]
            merge_method: passthrough
            """);
        Assert.Equal(44, recipe.Slices!.Sum(s => s.Length));
        Assert.Equal(["orca", "platypus"], recipe.Models.Select(m => m.Model));
    }

    [Theory]
    [InlineData("merge_method: ties\nmodels: [{model: a, parameters: {weight: 1}}]", "base_model")]
    [InlineData("merge_method: ties\nbase_model: b\nmodels: [{model: a, parameters: {weight: 1, density: 0}}]", "models[0].parameters.density")]
    [InlineData("merge_method: ties\nbase_model: b\nmodels: [{model: a, parameters: {weight: 1, density: 1.5}}]", "models[0].parameters.density")]
    [InlineData("merge_method: della\nbase_model: b\nmodels: [{model: a, parameters: {weight: 1, epsilon: -0.1}}]", "models[0].parameters.epsilon")]
    [InlineData("merge_method: dare_linear\nbase_model: b\nparameters: {rescale_mode: l2}\nmodels: [{model: a, parameters: {weight: 1}}]", "parameters.rescale_mode")]
    [InlineData("merge_method: slerp\nbase_model: b\nparameters: {t: 0.5}\nmodels: [a, c, d]", "models")]
    [InlineData("merge_method: slerp\nbase_model: b\nmodels: [a]", "parameters.t")]
    [InlineData("merge_method: nearswap\nbase_model: b\nparameters: {t: 0.5}\nmodels: [a, c]", "models")]
    [InlineData("merge_method: model_stock\nbase_model: b\nmodels: [a]", "models")]
    [InlineData("merge_method: passthrough\nmodels: [a, c]", "models")]
    [InlineData("merge_method: nuslerp\nmodels: [{model: a, parameters: {weight: 1}}, {model: c, parameters: {weight: 1}}, {model: d, parameters: {weight: 1}}]", "models")]
    public void Impossible_recipes_are_rejected_naming_the_field(string yaml, string field)
    {
        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(yaml));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.Equal(field, e.Field);
    }

    [Theory]
    [InlineData("merge_method: breadcrumbs\nbase_model: b\nmodels: [{model: a, parameters: {weight: 1}}]")]                              // density 1, gamma 0.01
    [InlineData("merge_method: breadcrumbs\nbase_model: b\nmodels: [{model: a, parameters: {weight: 1, density: 0.5, gamma: 0.6}}]")]  // density + gamma > 1
    [InlineData("merge_method: slerp\nbase_model: b\nparameters: {t: 1.5}\nmodels: [a]")]                                               // extrapolation
    [InlineData("merge_method: slerp\nbase_model: b\nparameters: {t: -0.25}\nmodels: [a]")]
    [InlineData("merge_method: model_stock\nbase_model: b\nmodels: [{model: a, parameters: {weight: 0.6}}, {model: c, parameters: {weight: 0.4}}]")]
    public void Recipes_mergekit_accepts_are_accepted(string yaml) => RecipeParser.Parse(yaml);

    [Fact]
    public async Task Della_density_plus_epsilon_outside_the_unit_interval_is_rejected_by_the_planner_before_reading()
    {
        using var dir = new TempDir();
        SafetensorsFiles.Write(dir["a.safetensors"], Model(1));
        SafetensorsFiles.Write(dir["b.safetensors"], Model(2));
        var recipe = RecipeParser.Parse("merge_method: della\nbase_model: b.safetensors\nmodels: [{model: a.safetensors, parameters: {weight: 1, density: 0.9, epsilon: 0.15}}]");
        var sink = new LocalDirectorySink(dir["out"]);
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(recipe, sink, null, CancellationToken.None));
        Assert.Equal("models[0].parameters.epsilon", e.Field);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir["out"]));
    }
}
