// mergekit `slices`: frankenmerges with passthrough, per-slice layer ranges for other methods, gradients
// interpolated per slice, errors naming the field, and the resolved recipe round trip.
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Recipes;

public class SliceTests
{
    private const int Layers = 4;

    /// <summary>A tiny Llama-shaped model whose every value encodes (model, tensor, layer), so a misplaced layer shows.</summary>
    private static Dictionary<string, torch.Tensor> Model(int m)
    {
        var d = new Dictionary<string, torch.Tensor>
        {
            ["model.embed_tokens.weight"] = torch.full(3, 2, 100.0f * m + 1),
            ["model.norm.weight"] = torch.full(2, 100.0f * m + 2),
            ["lm_head.weight"] = torch.full(3, 2, 100.0f * m + 3),
        };
        for (int l = 0; l < Layers; l++)
        {
            d[$"model.layers.{l}.mlp.weight"] = torch.full(2, 2, 100.0f * m + 10 + l);
            d[$"model.layers.{l}.norm.weight"] = torch.full(2, 100.0f * m + 50 + l);
        }
        return d;
    }

    private static async Task<Dictionary<string, torch.Tensor>> Merge(TempDir dir, string recipe, string outName = "out")
    {
        if (!File.Exists(dir["a.safetensors"]))
        {
            SafetensorsFiles.Write(dir["a.safetensors"], Model(1));
            SafetensorsFiles.Write(dir["b.safetensors"], Model(2));
        }
        await using (var sink = new LocalDirectorySink(dir[outName]))
            await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(RecipeParser.Parse(recipe), sink, null, CancellationToken.None);
        return SafetensorsFiles.Read(dir[$"{outName}/model.safetensors"]);
    }

    private static float V(Dictionary<string, torch.Tensor> d, string name) => d[name].flatten()[0].ToSingle();

    [Fact]
    public async Task Passthrough_frankenmerge_stacks_the_slices_and_takes_pre_and_post_weights_from_the_first_and_last_slice()
    {
        using var dir = new TempDir();
        var merged = await Merge(dir, """
            merge_method: passthrough
            slices:
              - sources: [{model: a.safetensors, layer_range: [0, 3]}]
              - sources: [{model: b.safetensors, layer_range: [1, 4]}]
            """);
        Assert.Equal(6 * 2 + 3, merged.Count);
        for (int k = 0; k < 3; k++) Assert.Equal(110 + k, V(merged, $"model.layers.{k}.mlp.weight"));      // a's layers 0..2
        for (int k = 3; k < 6; k++) Assert.Equal(210 + (k - 2), V(merged, $"model.layers.{k}.mlp.weight")); // b's layers 1..3
        Assert.Equal(250 + 3, V(merged, "model.layers.5.norm.weight"));
        Assert.Equal(101, V(merged, "model.embed_tokens.weight")); // first slice's model
        Assert.Equal(202, V(merged, "model.norm.weight"));         // last slice's model
        Assert.Equal(203, V(merged, "lm_head.weight"));
    }

    [Fact]
    public async Task Passthrough_can_repeat_layers_and_a_sources_scale_applies_to_its_own_slice_only()
    {
        using var dir = new TempDir();
        var merged = await Merge(dir, """
            merge_method: passthrough
            slices:
              - sources: [{model: a.safetensors, layer_range: [0, 2], parameters: {scale: [{filter: mlp, value: 0.5}, {value: 1}]}}]
              - sources: [{model: a.safetensors, layer_range: [1, 3]}]
            """);
        Assert.Equal(0.5f * 110, V(merged, "model.layers.0.mlp.weight"));
        Assert.Equal(0.5f * 111, V(merged, "model.layers.1.mlp.weight"));
        Assert.Equal(111, V(merged, "model.layers.2.mlp.weight"));      // layer 1 again, from the second slice: not scaled
        Assert.Equal(112, V(merged, "model.layers.3.mlp.weight"));
        Assert.Equal(151, V(merged, "model.layers.1.norm.weight"));     // the filter does not match
        Assert.Equal(101, V(merged, "model.embed_tokens.weight"));      // the first slice's source, no filter match
    }

    [Fact]
    public async Task Passthrough_scale_on_the_second_slices_source_scales_only_that_slice_and_the_tensors_after_the_stack()
    {
        // mergekit resolves parameters per slice source; the final norm and lm_head belong to the last slice.
        using var dir = new TempDir();
        var merged = await Merge(dir, """
            merge_method: passthrough
            slices:
              - sources: [{model: a.safetensors, layer_range: [0, 2]}]
              - sources: [{model: b.safetensors, layer_range: [2, 4], parameters: {scale: 2}}]
            """);
        Assert.Equal(101, V(merged, "model.embed_tokens.weight"));
        Assert.Equal(110, V(merged, "model.layers.0.mlp.weight"));
        Assert.Equal(151, V(merged, "model.layers.1.norm.weight"));
        Assert.Equal(2 * 212, V(merged, "model.layers.2.mlp.weight"));
        Assert.Equal(2 * 253, V(merged, "model.layers.3.norm.weight"));
        Assert.Equal(2 * 202, V(merged, "model.norm.weight"));
        Assert.Equal(2 * 203, V(merged, "lm_head.weight"));
    }

    [Fact]
    public async Task Per_model_filters_match_the_source_layers_name_not_the_output_layers()
    {
        // b's layers 2 and 3 become output layers 0 and 1; "layers.3." names b's layer 3 (output layer 1), not output layer 3.
        using var dir = new TempDir();
        var merged = await Merge(dir, """
            merge_method: passthrough
            slices:
              - sources: [{model: b.safetensors, layer_range: [2, 4], parameters: {scale: [{filter: layers.3., value: 0}, {value: 1}]}}]
              - sources: [{model: a.safetensors, layer_range: [2, 4], parameters: {scale: [{filter: layers.1., value: 0}, {value: 1}]}}]
            """);
        Assert.Equal(212, V(merged, "model.layers.0.mlp.weight"));
        Assert.Equal(0, V(merged, "model.layers.1.mlp.weight"));        // b's layer 3
        Assert.Equal(112, V(merged, "model.layers.2.mlp.weight"));
        Assert.Equal(113, V(merged, "model.layers.3.mlp.weight"));      // a's layer 3: its filter says layers.1., which it is not
    }

    [Fact]
    public async Task A_model_can_take_different_parameters_in_each_slice_and_slices_can_give_their_own()
    {
        using var dir = new TempDir();
        // slice 0: b's own weight 3; slice 1: b has none, so the slice's weight 2; a always falls to the top level (1).
        var merged = await Merge(dir, """
            merge_method: linear
            slices:
              - sources: [{model: a.safetensors, layer_range: [0, 2]}, {model: b.safetensors, layer_range: [0, 2], parameters: {weight: 3}}]
              - sources: [{model: a.safetensors, layer_range: [2, 4]}, {model: b.safetensors, layer_range: [2, 4]}]
                parameters: {weight: [{filter: mlp, value: 2}, {filter: lm_head, value: 5}]}
            parameters: {weight: 1, normalize: false}
            """);
        Assert.Equal(110 + 3 * 210, V(merged, "model.layers.0.mlp.weight"));
        Assert.Equal(150 + 3 * 250, V(merged, "model.layers.0.norm.weight"));
        Assert.Equal(2 * 112 + 2 * 212, V(merged, "model.layers.2.mlp.weight"));   // the slice's filter applies to a too
        Assert.Equal(152 + 252, V(merged, "model.layers.2.norm.weight"));          // no filter match: the top level
        Assert.Equal(101 + 3 * 201, V(merged, "model.embed_tokens.weight"));       // embeddings: the first slice
        Assert.Equal(102 + 202, V(merged, "model.norm.weight"));                   // after the stack: the last slice (no match: top level)
        Assert.Equal(5 * 103 + 5 * 203, V(merged, "lm_head.weight"));
    }

    [Fact]
    public void A_required_parameter_missing_on_a_slice_source_names_that_source()
    {
        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse("""
            merge_method: ties
            base_model: a.safetensors
            slices:
              - sources: [{model: a.safetensors, layer_range: [0, 2]}, {model: b.safetensors, layer_range: [0, 2], parameters: {weight: 1}}]
              - sources: [{model: a.safetensors, layer_range: [2, 4]}, {model: b.safetensors, layer_range: [2, 4]}]
            """));
        Assert.Equal("slices[1].sources[1].parameters.weight", e.Field);
    }

    [Fact]
    public async Task One_full_slice_equals_the_models_form()
    {
        using var dir = new TempDir();
        var sliced = await Merge(dir, """
            merge_method: slerp
            base_model: a.safetensors
            slices:
              - sources:
                  - {model: a.safetensors, layer_range: [0, 4]}
                  - {model: b.safetensors, layer_range: [0, 4]}
            parameters:
              t: [{filter: mlp, value: [0, 0.5, 0.3, 0.7, 1]}, {value: 0.5}]
            """, "sliced");
        var whole = await Merge(dir, """
            merge_method: slerp
            base_model: a.safetensors
            models: [{model: a.safetensors}, {model: b.safetensors}]
            parameters:
              t: [{filter: mlp, value: [0, 0.5, 0.3, 0.7, 1]}, {value: 0.5}]
            """, "whole");
        Assert.Equal(whole.Keys.Order(), sliced.Keys.Order());
        foreach (var (name, t) in whole) Assert.True(t.eq(sliced[name]).all().ToBoolean(), name);
    }

    [Fact]
    public async Task Gradients_are_interpolated_within_each_slice()
    {
        using var dir = new TempDir();
        // weight of b goes 0 → 1 across each 2-layer slice (given on both of b's sources: parameters are per slice):
        // layers 0 and 2 are a's, layers 1 and 3 are b's.
        var merged = await Merge(dir, """
            merge_method: linear
            slices:
              - sources: [{model: a.safetensors, layer_range: [0, 2]}, {model: b.safetensors, layer_range: [0, 2], parameters: {weight: [0, 1]}}]
              - sources: [{model: a.safetensors, layer_range: [2, 4]}, {model: b.safetensors, layer_range: [2, 4], parameters: {weight: [0, 1]}}]
            parameters: {weight: 1, normalize: false}
            """);
        Assert.Equal(110 + 0, V(merged, "model.layers.0.mlp.weight"));
        Assert.Equal(111 + 211, V(merged, "model.layers.1.mlp.weight"));
        Assert.Equal(112 + 0, V(merged, "model.layers.2.mlp.weight"));
        Assert.Equal(113 + 213, V(merged, "model.layers.3.mlp.weight"));
        Assert.Equal(101 + 0, V(merged, "model.embed_tokens.weight")); // non-layer tensors: t = 0
    }

    public static TheoryData<string, string, string> Errors => new()
    {
        { "both", "merge_method: linear\nmodels: [a.safetensors]\nslices: [{sources: [{model: a.safetensors, layer_range: [0, 2]}]}]", "slices" },
        { "empty-range", "merge_method: passthrough\nslices: [{sources: [{model: a.safetensors, layer_range: [2, 2]}]}]", "slices[0].sources[0].layer_range" },
        { "lengths", "merge_method: linear\nslices: [{sources: [{model: a.safetensors, layer_range: [0, 2]}, {model: b.safetensors, layer_range: [0, 3]}]}]", "slices[0].sources[1].layer_range" },
        { "two-sources", "merge_method: passthrough\nslices: [{sources: [{model: a.safetensors, layer_range: [0, 2]}, {model: b.safetensors, layer_range: [0, 2]}]}]", "slices[0].sources" },
        { "other-models", "merge_method: linear\nslices: [{sources: [{model: a.safetensors, layer_range: [0, 2]}]}, {sources: [{model: b.safetensors, layer_range: [2, 4]}]}]", "slices[1].sources" },
        { "slice-param-value", "merge_method: linear\nslices: [{sources: [{model: a.safetensors, layer_range: [0, 2]}], parameters: {weight: x}}]", "slices[0].parameters.weight" },
        { "fisher", "merge_method: fisher\nslices: [{sources: [{model: a.safetensors, layer_range: [0, 2], parameters: {fisher: f.safetensors}}]}]", "slices" },
        { "unknown-key", "merge_method: linear\nslices: [{sources: [{model: a.safetensors, layers: [0, 2]}]}]", "slices[0].sources[0].layers" },
    };

    [Theory]
    [MemberData(nameof(Errors))]
    public void Bad_slices_are_rejected_naming_the_field(string name, string recipe, string field)
    {
        var e = Assert.Throws<CloudSoupException>(() => RecipeParser.Parse(recipe));
        Assert.True(e.Field == field, $"{name}: field {e.Field}, message {e.Message}");
    }

    [Fact]
    public async Task A_layer_range_past_the_model_is_rejected_before_anything_is_written()
    {
        using var dir = new TempDir();
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => Merge(dir, "merge_method: passthrough\nslices: [{sources: [{model: a.safetensors, layer_range: [2, 6]}]}]"));
        Assert.Equal("slices[0].sources[0].layer_range", e.Field);
        Assert.Contains("4 layers", e.Message);
        Assert.False(File.Exists(dir["out/model.safetensors"]));
    }

    [Fact]
    public void The_resolved_recipe_round_trips()
    {
        var recipe = RecipeParser.Parse("""
            merge_method: passthrough
            slices:
              - sources: [{model: a.safetensors, layer_range: [0, 3], parameters: {scale: 0.5}}]
              - sources: [{model: b.safetensors, layer_range: [1, 4]}]
            """);
        string json = RecipeJson.ToJsonString(recipe);
        Assert.Equal(json, RecipeJson.ToJsonString(RecipeParser.Parse(json)));
        Assert.DoesNotContain("\"models\"", json);
    }
}
