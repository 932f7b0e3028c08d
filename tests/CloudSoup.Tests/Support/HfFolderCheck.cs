// What transformers reads when a user loads a Llama folder (AutoConfig, AutoModelForCausalLM, AutoTokenizer), checked
// without Python: Debian has no python3-transformers, so the load itself is a manual check (README, "What a merge
// writes"). config.json must name a model_type and architecture and carry the sizes every weight shape follows from;
// the weights (safetensors with metadata format "pt", which transformers requires) must be exactly LlamaForCausalLM's
// parameters with those shapes; the tokenizer's vocabulary must fit vocab_size and hold its special tokens.
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Storage;

namespace CloudSoup.Tests.Support;

public static class HfFolderCheck
{
    public static async Task AssertLoadsAsLlamaAsync(string folder)
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!.AsObject();
        Assert.Equal("llama", (string?)config["model_type"]);
        Assert.Contains("LlamaForCausalLM", config["architectures"]!.AsArray().Select(a => (string?)a));
        int hidden = (int)config["hidden_size"]!, inter = (int)config["intermediate_size"]!, layers = (int)config["num_hidden_layers"]!;
        int heads = (int)config["num_attention_heads"]!, kvHeads = (int?)config["num_key_value_heads"] ?? heads, vocab = (int)config["vocab_size"]!;
        int headDim = hidden / heads;
        string dtype = (string)config["torch_dtype"]!;
        Assert.Contains(dtype, new[] { "float32", "float16", "bfloat16" });

        var expected = new Dictionary<string, long[]> { ["model.embed_tokens.weight"] = [vocab, hidden], ["model.norm.weight"] = [hidden] };
        if (config["tie_word_embeddings"]?.GetValue<bool>() != true) expected["lm_head.weight"] = [vocab, hidden];
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            expected[p + "self_attn.q_proj.weight"] = [heads * headDim, hidden];
            expected[p + "self_attn.k_proj.weight"] = [kvHeads * headDim, hidden];
            expected[p + "self_attn.v_proj.weight"] = [kvHeads * headDim, hidden];
            expected[p + "self_attn.o_proj.weight"] = [hidden, heads * headDim];
            expected[p + "mlp.gate_proj.weight"] = [inter, hidden];
            expected[p + "mlp.up_proj.weight"] = [inter, hidden];
            expected[p + "mlp.down_proj.weight"] = [hidden, inter];
            expected[p + "input_layernorm.weight"] = [hidden];
            expected[p + "post_attention_layernorm.weight"] = [hidden];
        }
        await using (var weights = await Checkpoint.OpenAsync(new LocalCheckpointStore(folder), ".", CancellationToken.None))
        {
            Assert.Equal(expected.Keys.Order(), weights.TensorNames.Order());
            foreach (var (name, shape) in expected) Assert.Equal(shape, weights.Entry(name).Shape);
            string stored = ModelFilesDType(dtype);
            Assert.All(weights.TensorNames, n => Assert.Equal(stored, weights.Entry(n).DType.ToString()));
        }
        foreach (var file in Directory.GetFiles(folder, "*.safetensors"))
            Assert.Equal("pt", (string?)SafetensorsMetadata(file)["format"]);

        // AutoTokenizer: tokenizer_config.json picks the class, tokenizer.json holds the vocabulary.
        var tokenizerConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer_config.json")))!.AsObject();
        var tokenizer = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer.json")))!.AsObject();
        var tokenIds = tokenizer["model"]!["vocab"]!.AsObject().ToDictionary(p => p.Key, p => (int)p.Value!);
        Assert.True(tokenIds.Values.Max() < vocab, "every token id has an embedding row");
        foreach (var special in new[] { "bos_token", "eos_token", "unk_token" })
            if (tokenizerConfig[special] is JsonValue v) Assert.True(tokenIds.ContainsKey((string)v!), $"{special} is in the vocabulary");
        var generation = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "generation_config.json")))!.AsObject();
        Assert.True((int)generation["eos_token_id"]! < vocab);
    }

    private static string ModelFilesDType(string torchDtype) => torchDtype switch { "float32" => "F32", "float16" => "F16", "bfloat16" => "BF16", _ => torchDtype };

    public static JsonObject SafetensorsMetadata(string file)
    {
        using var f = File.OpenRead(file);
        var len = new byte[8];
        f.ReadExactly(len);
        var header = new byte[BitConverter.ToUInt64(len)];
        f.ReadExactly(header);
        return JsonNode.Parse(header)!.AsObject()["__metadata__"]!.AsObject();
    }

    /// <summary>README.md's YAML front matter, parsed.</summary>
    public static Dictionary<string, object> FrontMatter(string readme)
    {
        Assert.StartsWith("---\n", readme);
        int end = readme.IndexOf("\n---\n", 4, StringComparison.Ordinal);
        Assert.True(end > 0, "the front matter is closed");
        return new YamlDotNet.Serialization.DeserializerBuilder().Build().Deserialize<Dictionary<string, object>>(readme[4..end]);
    }
}
