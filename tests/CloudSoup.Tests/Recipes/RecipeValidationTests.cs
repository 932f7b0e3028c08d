using CloudSoup.Control.Errors;
using CloudSoup.Engine.Merging;
using CloudSoup.Control.Recipes;

namespace CloudSoup.Tests.Recipes;

/// <summary>Recipe errors name the field at fault; parameter values follow mergekit's resolution rules (docs/methods.md, "Parameter values").</summary>
public class RecipeValidationTests
{
    private const string Models = "models: [{model: a.safetensors}, {model: b.safetensors}]\n";

    [Theory]
    [InlineData("merge_method: blend\n" + Models, "merge_method", "unknown merge method 'blend'")]
    [InlineData("merge_method: tiess\n" + Models, "merge_method", "did you mean ties?")]
    [InlineData("merge_method: linear\n" + Models + "evaluation: {model: builtin:resnet, data: d.safetensors}\n", "evaluation.model", "unknown built-in architecture 'builtin:resnet'")]
    [InlineData("merge_method: linear\n" + Models + "colour: blue\n", "colour", "unknown key")]
    [InlineData("merge_method: linear\nmodels: [{model: a.safetensors, weight: 1}]\n", "models[0].weight", "unknown key")]
    [InlineData("merge_method: linear\nmodels: [{model: a.safetensors, parameters: {weigth: 1}}]\n", "models[0].parameters.weigth", "unknown parameter")]
    [InlineData("merge_method: linear\nmodels: [{model: a.safetensors, parameters: {weight: heavy}}]\n", "models[0].parameters.weight", "heavy")]
    [InlineData("merge_method: linear\nmodels: [{model: a.safetensors, parameters: {weight: [1, x]}}]\n", "models[0].parameters.weight", "")]
    [InlineData("merge_method: linear\n" + Models + "parameters: {normalize: 3}\n", "parameters.normalize", "true or false")]
    [InlineData("merge_method: linear\n" + Models + "parameters: {weight: [{filter: fc}]}\n", "parameters.weight[0].value", "required")]
    [InlineData("merge_method: linear\n" + Models + "parameters: {weight: []}\n", "parameters.weight", "empty")]
    [InlineData("merge_method: linear\nmodels: a.safetensors\n", "models", "non-empty list")]
    [InlineData("merge_method: linear\nmodels: []\n", "models", "non-empty list")]
    [InlineData("models: [{model: a.safetensors}]\n", "merge_method", "required")]
    [InlineData("merge_method: linear\nmodels: [{parameters: {weight: 1}}]\n", "models[0].model", "required")]
    [InlineData("merge_method: linear\nmodels: [{model: a.safetensors}, {model: a.safetensors}]\n", "models", "more than once")]
    [InlineData("merge_method: linear\n" + Models + "dtype: int8\n", "dtype", "unsupported dtype")]
    [InlineData("merge_method: linear\n" + Models + "out_dtype: [float16]\n", "out_dtype", "")]
    [InlineData("merge_method: linear\n" + Models + "output: {shard_size: lots}\n", "output.shard_size", "lots")]
    [InlineData("merge_method: linear\n" + Models + "output: {shards: 2}\n", "output.shards", "unknown key")]
    [InlineData("merge_method: linear\n" + Models + "seed: soon\n", "seed", "integer")]
    [InlineData("merge_method: linear\n" + Models + "tensors: some\n", "tensors", "one of")]
    [InlineData("merge_method: linear\n" + Models + "slices: []\n", "slices", "either models or slices")]
    [InlineData("- just\n- a list\n", "recipe", "mapping")]
    [InlineData("merge_method: [linear\n", "recipe", "not valid YAML")]
    [InlineData("", "recipe", "empty")]
    public void Bad_recipes_name_the_field_at_fault(string yaml, string field, string mention)
    {
        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(yaml));
        Assert.Equal(ErrorKind.InvalidRecipe, e.Kind);
        Assert.Equal(field, e.Field);
        Assert.StartsWith(field + ":", e.Message);
        Assert.Contains(mention, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Parameters_the_method_does_not_use_are_ignored_with_a_warning_as_mergekit_ignores_them()
    {
        var recipe = RecipeParser.Parse("""
            merge_method: slerp
            base_model: a.safetensors
            models:
              - {model: a.safetensors, parameters: {weight: 0.6}}
              - {model: b.safetensors, parameters: {weight: [{filter: mlp, value: 0.4}], t: 0.9}}
            parameters: {t: 0.35, density: 0.5}
            """);
        Assert.Empty(recipe.Models[0].Parameters);
        Assert.Empty(recipe.Models[1].Parameters);
        Assert.Equal(["t"], recipe.Parameters.Keys);
        Assert.Equal(4, recipe.Warnings.Count);
        Assert.Contains("models[0].parameters.weight is ignored: merge method 'slerp' does not use 'weight' (mergekit ignores it too)", recipe.Warnings);
        Assert.Contains(recipe.Warnings, w => w.StartsWith("models[1].parameters.t is ignored: 't' is a method-wide parameter", StringComparison.Ordinal));
        Assert.Contains(recipe.Warnings, w => w.StartsWith("parameters.density is ignored", StringComparison.Ordinal));
        // a name no mergekit method takes is still refused (a typo, or a CloudSoup parameter of another method), and
        // an ignored value must still be well-formed
        Assert.Equal("parameters.topk_scope", Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(
            "merge_method: slerp\nbase_model: a.safetensors\nparameters: {t: 0.5, topk_scope: model}\nmodels: [b.safetensors]")).Field);
        Assert.Equal("models[0].parameters.wieght", Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(
            "merge_method: slerp\nbase_model: a.safetensors\nparameters: {t: 0.5}\nmodels: [{model: b.safetensors, parameters: {wieght: 1}}]")).Field);
        Assert.Equal("models[0].parameters.weight", Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(
            "merge_method: slerp\nbase_model: a.safetensors\nparameters: {t: 0.5}\nmodels: [{model: b.safetensors, parameters: {weight: []}}]")).Field);
    }

    [Fact]
    public void Gradient_matches_the_mergekit_oracle_at_layer_10_of_40()
    {
        var names = Enumerable.Range(0, 40).Select(i => $"model.layers.{i}.mlp.weight").Append("model.embed.weight").ToList();
        var layers = MergePlanner.LayerPositions(names);
        var recipe = RecipeParser.Parse("merge_method: linear\nmodels: [{model: a.safetensors}]\nparameters: {weight: [0, 0.5, 0.3, 0.7, 1]}\n");
        var w = recipe.Parameters["weight"];
        Assert.Equal(0.4949, w.Evaluate(names[10], layers[names[10]])!.Value.Number!.Value, 4);
        Assert.Equal(0.0, w.Evaluate(names[0], layers[names[0]])!.Value.Number!.Value, 12);
        Assert.Equal(1.0, w.Evaluate(names[39], layers[names[39]])!.Value.Number!.Value, 12);
        // Tensors outside the layer stack resolve at t = 0 (mergekit's pre/post weights).
        Assert.Equal(0.0, w.Evaluate("model.embed.weight", layers["model.embed.weight"])!.Value.Number!.Value, 12);
    }

    [Fact]
    public void Filter_lists_take_the_first_substring_match_and_fall_through_when_nothing_matches()
    {
        var recipe = RecipeParser.Parse("""
            merge_method: linear
            models: [{model: a.safetensors}]
            parameters:
              weight:
                - {filter: self_attn, value: 0.1}
                - {filter: attn, value: 0.2}
                - {filter: mlp, value: [0, 1]}
            """);
        var w = recipe.Parameters["weight"];
        var mid = new LayerPosition(1, 3);   // t = 0.5
        Assert.Equal(0.1, w.Evaluate("layers.1.self_attn.q.weight", mid)!.Value.Number);
        Assert.Equal(0.2, w.Evaluate("layers.1.cross_attn.q.weight", mid)!.Value.Number);
        Assert.Equal(0.5, w.Evaluate("layers.1.mlp.up.weight", mid)!.Value.Number);
        Assert.Null(w.Evaluate("lm_head.weight", mid));   // falls through to the next level

        var catchAll = RecipeParser.Parse("merge_method: linear\nmodels: [{model: a.safetensors}]\nparameters: {weight: [{filter: mlp, value: 2}, {filter: '*', value: 3}, {value: 4}]}\n").Parameters["weight"];
        Assert.Equal(3, catchAll.Evaluate("lm_head.weight", LayerPosition.None)!.Value.Number);
        Assert.Equal(2, catchAll.Evaluate("mlp.weight", LayerPosition.None)!.Value.Number);
    }

    [Fact]
    public void Non_numeric_lists_are_step_functions_over_layers()
    {
        var step = new StepSetting([ParameterValue.Of("x"), ParameterValue.Of("y"), ParameterValue.Of("z")]);
        Assert.Equal("x", step.Evaluate("t", new LayerPosition(0, 9))!.Value.Text);
        Assert.Equal("y", step.Evaluate("t", new LayerPosition(4, 9))!.Value.Text);
        Assert.Equal("z", step.Evaluate("t", new LayerPosition(8, 9))!.Value.Text);
        Assert.Equal("x", step.Evaluate("t", LayerPosition.None)!.Value.Text);
    }

    [Fact]
    public void Recipe_round_trips_through_its_canonical_json()
    {
        var first = RecipeParser.Parse("""
            merge_method: linear
            models:
              - model: models/a
                parameters: {weight: [{filter: mlp, value: [0, 0.5, 1]}, {value: 0.3}]}
              - model: /abs/b.safetensors
                parameters: {weight: 2}
            parameters: {normalize: false}
            dtype: float64
            out_dtype: bfloat16
            name: soup
            seed: 42
            tensors: union
            output: {shard_size: 2GB, dtype: float16}
            """);
        string json = RecipeJson.ToJsonString(first);
        var second = RecipeParser.Parse(json);
        Assert.Equal(json, RecipeJson.ToJsonString(second));
        Assert.Equal(first.Models.Select(m => m.Model), second.Models.Select(m => m.Model));
        Assert.Equal(first.DType, second.DType);
        Assert.Equal(first.OutDType, second.OutDType);
        Assert.Equal(first.Output, second.Output);
        Assert.Equal(first.Seed, second.Seed);
        Assert.Equal(first.Tensors, second.Tensors);
        var w = second.Models[0].Parameters["weight"];
        Assert.Equal(0.25, w.Evaluate("layers.1.mlp.weight", new LayerPosition(1, 5))!.Value.Number);   // t = 0.25 → 0.25
        Assert.Equal(0.3, w.Evaluate("attn.weight", LayerPosition.None)!.Value.Number);
        Assert.False(second.Parameters["normalize"].Evaluate("x", LayerPosition.None)!.Value.Bool);
    }
}
