// A merge of Hugging Face model folders writes a folder that loads like one: config.json (layer count of a sliced
// merge, output dtype), generation_config.json, the tokenizer from the right source (with the recipe's chat template),
// and README.md with the Hub's front matter; everything staged and committed with the weights and listed in
// report.json. Folders are generated here (Support/HfModelFolders.cs); what transformers reads is checked structurally
// (Support/HfFolderCheck.cs).
using System.Text.Json.Nodes;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;

namespace CloudSoup.Tests.ModelFiles;

public class HfOutputTests
{
    private const string Template = "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}";
    private const string OtherTemplate = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}";

    private static async Task<MergeReport> Merge(TempDir dir, string recipe, string outName = "out")
    {
        await using var sink = new LocalDirectorySink(dir[outName]);
        return await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(RecipeParser.Parse(recipe), sink, null, CancellationToken.None);
    }

    private static JsonObject Json(string path) => JsonNode.Parse(File.ReadAllText(path))!.AsObject();

    [Fact]
    public async Task A_sliced_merge_of_hf_folders_writes_a_folder_that_loads_with_the_layer_count_rewritten()
    {
        using var dir = new TempDir();
        HfModelFolders.Write(dir["a"], 1);
        HfModelFolders.Write(dir["b"], 2, modelMaxLength: 128);
        var report = await Merge(dir, """
            merge_method: passthrough
            slices:
              - sources: [{model: a, layer_range: [0, 3]}]
              - sources: [{model: b, layer_range: [1, 4]}]
            out_dtype: bfloat16
            """);

        var config = Json(dir["out/config.json"]);
        Assert.Equal(6, (int)config["num_hidden_layers"]!);                  // 3 + 3 layers, as mergekit counts them
        Assert.Equal("bfloat16", (string?)config["torch_dtype"]);
        Assert.Equal(Json(dir["a/config.json"])["rms_norm_eps"]!.ToJsonString(), config["rms_norm_eps"]!.ToJsonString());   // the rest as the first model had it
        await HfFolderCheck.AssertLoadsAsLlamaAsync(dir["out"]);

        // Without tokenizer_source the tokenizer and generation config are the first model's, byte for byte (mergekit copies them).
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json" })
            Assert.Equal(File.ReadAllBytes(dir[$"a/{file}"]), File.ReadAllBytes(dir[$"out/{file}"]));

        var card = File.ReadAllText(dir["out/README.md"]);
        var front = HfFolderCheck.FrontMatter(card);
        Assert.Equal("transformers", front["library_name"]);
        Assert.Equal(new[] { "mergekit", "merge", "cloudsoup" }, ((List<object>)front["tags"]).Cast<string>());
        Assert.False(front.ContainsKey("base_model"));                        // local folders name no Hub repository
        Assert.Contains("`passthrough` merge method", card);
        // The recipe, as YAML that parses back to the same resolved recipe.
        int start = card.IndexOf("```yaml\n", StringComparison.Ordinal) + "```yaml\n".Length;
        var fromCard = RecipeParser.Parse(card[start..card.IndexOf("\n```", start, StringComparison.Ordinal)]);
        Assert.Equal(File.ReadAllText(dir["out/recipe.resolved.json"]), RecipeJson.ToJsonString(fromCard));

        foreach (var file in new[] { "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "README.md" })
            Assert.Contains(dir[$"out/{file}"], report.Outputs);
        Assert.Equal("a", report.ModelFiles!.ConfigFrom);
        Assert.Equal("a", report.ModelFiles.TokenizerFrom);
        var reportJson = Json(dir["out/report.json"]);
        Assert.Contains("README.md", reportJson["modelFiles"]!["written"]!.AsArray().Select(n => (string?)n));
        Assert.Empty(Directory.GetDirectories(dir["out"]));                  // nothing left staged
    }

    [Fact]
    public async Task Without_slices_the_layer_count_stays_and_torch_dtype_follows_the_written_weights()
    {
        using var dir = new TempDir();
        HfModelFolders.Write(dir["a"], 1);
        HfModelFolders.Write(dir["b"], 2);
        await Merge(dir, "merge_method: linear\nmodels: [{model: a}, {model: b}]\nout_dtype: float16\n");
        var config = Json(dir["out/config.json"]);
        Assert.Equal(HfModelFolders.Layers, (int)config["num_hidden_layers"]!);
        Assert.Equal("float16", (string?)config["torch_dtype"]);
        await HfFolderCheck.AssertLoadsAsLlamaAsync(dir["out"]);
    }

    [Fact]
    public async Task A_config_using_the_newer_dtype_key_gets_it_rewritten_and_gpt2_style_n_layer_is_found()
    {
        using var dir = new TempDir();
        HfModelFolders.Write(dir["a"], 1);
        HfModelFolders.Write(dir["b"], 2);
        var config = HfModelFolders.Config();
        config.Remove("torch_dtype");
        config["dtype"] = "float32";
        config.Remove("num_hidden_layers");
        config["n_layer"] = HfModelFolders.Layers;
        File.WriteAllText(dir["a/config.json"], config.ToJsonString());
        await Merge(dir, """
            merge_method: linear
            slices:
              - sources: [{model: a, layer_range: [0, 2]}, {model: b, layer_range: [0, 2]}]
            out_dtype: bfloat16
            """);
        var written = Json(dir["out/config.json"]);
        Assert.Equal(2, (int)written["n_layer"]!);
        Assert.Equal("bfloat16", (string?)written["dtype"]);
        Assert.False(written.ContainsKey("torch_dtype"));
    }

    [Fact]
    public async Task Tokenizer_source_takes_the_tokenizer_files_from_that_model_and_config_from_the_base()
    {
        using var dir = new TempDir();
        HfModelFolders.Write(dir["a"], 1, modelMaxLength: 64);
        HfModelFolders.Write(dir["b"], 2, modelMaxLength: 128);
        HfModelFolders.Write(dir["c"], 3, modelMaxLength: 256);
        var report = await Merge(dir, "merge_method: task_arithmetic\nbase_model: a\nmodels: [{model: b, parameters: {weight: 0.5}}, {model: c, parameters: {weight: 0.5}}]\ntokenizer_source: c\n");
        Assert.Equal(File.ReadAllBytes(dir["c/tokenizer_config.json"]), File.ReadAllBytes(dir["out/tokenizer_config.json"]));
        Assert.Equal(File.ReadAllBytes(dir["c/tokenizer.json"]), File.ReadAllBytes(dir["out/tokenizer.json"]));
        Assert.Equal(File.ReadAllBytes(dir["a/generation_config.json"]), File.ReadAllBytes(dir["out/generation_config.json"]));
        Assert.Equal("a", report.ModelFiles!.ConfigFrom);
        Assert.Equal("c", report.ModelFiles.TokenizerFrom);
        await HfFolderCheck.AssertLoadsAsLlamaAsync(dir["out"]);
        var card = File.ReadAllText(dir["out/README.md"]);
        Assert.Contains("with `a` as the base", card);
        Assert.Contains("* `b`", card);
    }

    [Fact]
    public async Task The_newer_tokenizer_section_with_source_base_takes_the_base_models_tokenizer()
    {
        using var dir = new TempDir();
        HfModelFolders.Write(dir["a"], 1, modelMaxLength: 64);
        HfModelFolders.Write(dir["b"], 2, modelMaxLength: 128);
        await Merge(dir, "merge_method: task_arithmetic\nbase_model: b\nmodels: [{model: a, parameters: {weight: 1.0}}]\ntokenizer: {source: base}\n");
        Assert.Equal(File.ReadAllBytes(dir["b/tokenizer_config.json"]), File.ReadAllBytes(dir["out/tokenizer_config.json"]));
    }

    [Fact]
    public async Task A_tokenizer_source_whose_vocabulary_a_model_does_not_share_fails_before_merging_and_writes_nothing()
    {
        using var dir = new TempDir();
        HfModelFolders.Write(dir["a"], 1);
        HfModelFolders.Write(dir["b"], 2, renameTokens: new Dictionary<int, string> { [15] = "zz" });   // same shapes, one token differs
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => Merge(dir, "merge_method: linear\nmodels: [{model: a}, {model: b}]\ntokenizer_source: base\n"));
        Assert.Equal(ErrorKind.IncompatibleModels, e.Kind);
        Assert.Equal("tokenizer_source", e.Field);
        Assert.StartsWith("tokenizer_source: 'b' has a different vocabulary (16 tokens in tokenizer.json) from 'a'", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(dir["out"]));

        // Without tokenizer_source the first model's tokenizer is copied unchecked, as mergekit copies it.
        await Merge(dir, "merge_method: linear\nmodels: [{model: a}, {model: b}]\n", "copied");
        Assert.Equal(File.ReadAllBytes(dir["a/tokenizer.json"]), File.ReadAllBytes(dir["copied/tokenizer.json"]));
    }

    [Fact]
    public async Task A_vocabulary_in_vocab_json_compares_with_the_same_vocabulary_in_tokenizer_json_and_a_model_without_a_tokenizer_is_assumed_to_share_it()
    {
        using var dir = new TempDir();
        HfModelFolders.Write(dir["a"], 1);
        HfModelFolders.Write(dir["b"], 2);
        HfModelFolders.Write(dir["c"], 3, tokenizer: false);
        File.Delete(dir["b/tokenizer.json"]);
        var vocab = new JsonObject();
        var tokens = HfModelFolders.Tokens();
        for (int i = 0; i < tokens.Count; i++) vocab[tokens[i]] = i;
        File.WriteAllText(dir["b/vocab.json"], vocab.ToJsonString());
        var report = await Merge(dir, "merge_method: linear\nmodels: [{model: a}, {model: b}, {model: c}]\ntokenizer_source: a\n");
        Assert.Contains(report.ModelFiles!.Notes, n => n.StartsWith("'c' has no tokenizer files; assumed to share the vocabulary of 'a'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Chat_template_text_goes_into_tokenizer_config_json_and_the_sources_template_file_is_left_out()
    {
        using var dir = new TempDir();
        HfModelFolders.Write(dir["a"], 1, chatTemplate: OtherTemplate, templateInJinja: true);
        HfModelFolders.Write(dir["b"], 2);
        var recipe = "merge_method: linear\nmodels: [{model: a}, {model: b}]\nchat_template: \"" + Template.Replace("\n", "\\n") + "\"\n";
        var report = await Merge(dir, recipe);
        var config = Json(dir["out/tokenizer_config.json"]);
        Assert.Equal(Template, (string?)config["chat_template"]);
        Assert.Equal(64, (int)config["model_max_length"]!);                  // the rest of a's tokenizer_config.json kept
        Assert.False(File.Exists(dir["out/chat_template.jinja"]));          // transformers would prefer it to the recipe's
        Assert.Equal("recipe", report.ModelFiles!.ChatTemplate);
        Assert.Contains(report.ModelFiles.Notes, n => n.StartsWith("chat_template.jinja of 'a' not copied", StringComparison.Ordinal));
        Assert.Contains(Template.Split('\n')[0], File.ReadAllText(dir["out/README.md"]));
    }

    [Fact]
    public async Task Chat_template_auto_takes_the_template_most_models_have_wherever_they_keep_it()
    {
        using var dir = new TempDir();
        HfModelFolders.Write(dir["a"], 1, chatTemplate: OtherTemplate);
        HfModelFolders.Write(dir["b"], 2, chatTemplate: Template, templateInJinja: true);
        HfModelFolders.Write(dir["c"], 3, chatTemplate: Template + "\n");            // equal once trimmed, as mergekit compares
        var report = await Merge(dir, "merge_method: linear\nmodels: [{model: a}, {model: b}, {model: c}]\nchat_template: auto\n");
        Assert.Equal(Template, (string?)Json(dir["out/tokenizer_config.json"])["chat_template"]);
        Assert.Equal("auto: the template of 'b', 'c'", report.ModelFiles!.ChatTemplate);
    }

    [Fact]
    public async Task Single_safetensors_inputs_get_weights_card_and_report_but_no_side_files_and_the_report_says_why()
    {
        using var dir = new TempDir();
        SafetensorsFiles.Write(dir["ft-a.safetensors"], HfModelFolders.LlamaWeights(1));
        SafetensorsFiles.Write(dir["ft-b.safetensors"], HfModelFolders.LlamaWeights(2));
        var report = await Merge(dir, "merge_method: linear\nmodels: [{model: ft-a.safetensors}, {model: ft-b.safetensors}]\n");
        Assert.Equal(new[] { "README.md", "model.safetensors", "recipe.resolved.json", "report.html", "report.json" },
            Directory.GetFiles(dir["out"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Contains(report.ModelFiles!.Notes, n => n == "'ft-a.safetensors' is a single weights file, not a model folder: no config.json, generation_config.json or tokenizer files written");
        Assert.Single(report.ModelFiles.Notes);
        Assert.Contains("Model files", File.ReadAllText(dir["out/report.html"]));
        Assert.False(HfFolderCheck.FrontMatter(File.ReadAllText(dir["out/README.md"])).ContainsKey("library_name"));   // nothing transformers can load
    }

    [Fact]
    public async Task A_model_file_with_its_standard_name_inside_a_folder_takes_its_folders_config()
    {
        using var dir = new TempDir();
        HfModelFolders.Write(dir["a"], 1);
        HfModelFolders.Write(dir["b"], 2);
        await Merge(dir, "merge_method: linear\nmodels: [{model: a/model.safetensors}, {model: b/model.safetensors}]\n");
        Assert.True(File.Exists(dir["out/config.json"]));
        Assert.True(File.Exists(dir["out/tokenizer.json"]));
    }

    [Fact]
    public async Task A_corrupt_config_json_fails_the_job_naming_the_file_and_nothing_is_written()
    {
        using var dir = new TempDir();
        HfModelFolders.Write(dir["a"], 1);
        HfModelFolders.Write(dir["b"], 2);
        File.WriteAllText(dir["a/config.json"], "{\"model_type\": \"llama\",\n  oops");
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => Merge(dir, "merge_method: linear\nmodels: [{model: a}, {model: b}]\n"));
        Assert.Equal(ErrorKind.InvalidCheckpoint, e.Kind);
        Assert.Equal("a/config.json: is not valid JSON (line 2)", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(dir["out"]));
    }

    [Fact]
    public async Task Evaluation_results_go_into_the_model_card_table()
    {
        // An MNIST-sized MLP soup (the demo's shape) has no config or tokenizer, but its card carries the evaluation.
        using var dir = new TempDir();
        var models = new List<string>();
        for (int m = 0; m < 2; m++)
        {
            var g = new TorchSharp.torch.Generator((ulong)(10 + m));
            SafetensorsFiles.Write(dir[$"m{m}.safetensors"], new Dictionary<string, TorchSharp.torch.Tensor>
            {
                ["fc1.weight"] = TorchSharp.torch.randn([8, 4], generator: g), ["fc1.bias"] = TorchSharp.torch.zeros(8),
                ["fc2.weight"] = TorchSharp.torch.randn([3, 8], generator: g), ["fc2.bias"] = TorchSharp.torch.zeros(3),
            });
            models.Add($"m{m}.safetensors");
        }
        var inputs = TorchSharp.torch.randn([32, 4], generator: new TorchSharp.torch.Generator(5));
        SafetensorsFiles.Write(dir["heldout.safetensors"], new Dictionary<string, TorchSharp.torch.Tensor> { ["inputs"] = inputs, ["labels"] = TorchSharp.torch.arange(32, TorchSharp.torch.int64) % 3 });
        await using (var sink = new LocalDirectorySink(dir["out"]))
            await new MergeJobRunner(new LocalCheckpointStore(dir.Path), new CloudSoup.Engine.Evaluation.JobEvaluator()).RunAsync(RecipeParser.Parse(
                "merge_method: uniform_soup\nmodels: [{model: m0.safetensors}, {model: m1.safetensors}]\nevaluation: {model: builtin:mlp, data: heldout.safetensors}\n"), sink, null, CancellationToken.None);
        var card = File.ReadAllText(dir["out/README.md"]);
        Assert.Contains("## Evaluation", card);
        Assert.Contains("| **merged** |", card);
        Assert.Contains("| `m0.safetensors` |", card);
    }
}
