// Small Hugging Face model folders generated in tests: Llama-shaped weights under transformers' LlamaForCausalLM names,
// config.json, generation_config.json and a fast tokenizer (tokenizer.json, tokenizer_config.json,
// special_tokens_map.json), as save_pretrained lays them out. Shapes follow transformers' Llama definition
// (https://huggingface.co/docs/transformers/model_doc/llama): q/k/v/o [heads*head_dim, hidden], gate/up
// [intermediate, hidden], down [hidden, intermediate], norms [hidden], embed_tokens and lm_head [vocab, hidden].
using System.Text.Json.Nodes;
using TorchSharp;

namespace CloudSoup.Tests.Support;

public static class HfModelFolders
{
    public const int Hidden = 8, Intermediate = 16, Vocab = 16, Heads = 2, Layers = 4;

    /// <summary>The 16 tokens: three specials, then single letters; <c>rename</c> replaces some letters (same ids, another vocabulary).</summary>
    public static List<string> Tokens(IReadOnlyDictionary<int, string>? rename = null)
    {
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        for (int i = 3; i < Vocab; i++) tokens.Add(((char)('a' + i - 3)).ToString());
        if (rename != null) foreach (var (id, token) in rename) tokens[id] = token;
        return tokens;
    }

    public static Dictionary<string, torch.Tensor> LlamaWeights(int seed, int layers = Layers, torch.ScalarType dtype = torch.ScalarType.Float32)
    {
        var g = new torch.Generator((ulong)seed);
        torch.Tensor R(params long[] shape) => torch.randn(shape, generator: g).to(dtype);
        var w = new Dictionary<string, torch.Tensor> { ["model.embed_tokens.weight"] = R(Vocab, Hidden) };
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}.";
            foreach (var proj in new[] { "q_proj", "k_proj", "v_proj", "o_proj" }) w[p + $"self_attn.{proj}.weight"] = R(Hidden, Hidden);
            w[p + "mlp.gate_proj.weight"] = R(Intermediate, Hidden);
            w[p + "mlp.up_proj.weight"] = R(Intermediate, Hidden);
            w[p + "mlp.down_proj.weight"] = R(Hidden, Intermediate);
            w[p + "input_layernorm.weight"] = R(Hidden);
            w[p + "post_attention_layernorm.weight"] = R(Hidden);
        }
        w["model.norm.weight"] = R(Hidden);
        w["lm_head.weight"] = R(Vocab, Hidden);
        return w;
    }

    public static JsonObject Config(int layers = Layers, string dtype = "float32") => new()
    {
        ["architectures"] = new JsonArray("LlamaForCausalLM"),
        ["model_type"] = "llama",
        ["hidden_size"] = Hidden,
        ["intermediate_size"] = Intermediate,
        ["num_attention_heads"] = Heads,
        ["num_key_value_heads"] = Heads,
        ["num_hidden_layers"] = layers,
        ["vocab_size"] = Vocab,
        ["max_position_embeddings"] = 64,
        ["rms_norm_eps"] = 1e-05,
        ["bos_token_id"] = 1,
        ["eos_token_id"] = 2,
        ["tie_word_embeddings"] = false,
        ["torch_dtype"] = dtype,
        ["transformers_version"] = "4.44.0",
    };

    public static JsonObject TokenizerJson(IReadOnlyList<string> tokens)
    {
        var vocab = new JsonObject();
        for (int i = 0; i < tokens.Count; i++) vocab[tokens[i]] = i;
        var added = new JsonArray();
        for (int i = 0; i < 3; i++)
            added.Add(new JsonObject { ["id"] = i, ["content"] = tokens[i], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true });
        return new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null, ["added_tokens"] = added, ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "Whitespace" }, ["post_processor"] = null, ["decoder"] = null,
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = "<unk>", ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["vocab"] = vocab, ["merges"] = new JsonArray(),
            },
        };
    }

    public static JsonObject TokenizerConfig(int modelMaxLength = 64, string? chatTemplate = null)
    {
        var c = new JsonObject
        {
            ["tokenizer_class"] = "PreTrainedTokenizerFast", ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["unk_token"] = "<unk>",
            ["model_max_length"] = modelMaxLength, ["clean_up_tokenization_spaces"] = false,
        };
        if (chatTemplate != null) c["chat_template"] = chatTemplate;
        return c;
    }

    /// <summary>
    /// Writes a model folder. <paramref name="modelMaxLength"/> tells tokenizers apart whose vocabularies are equal;
    /// <paramref name="chatTemplate"/> goes into tokenizer_config.json, or into chat_template.jinja with <paramref name="templateInJinja"/>.
    /// </summary>
    public static Dictionary<string, torch.Tensor> Write(string folder, int seed, IReadOnlyDictionary<int, string>? renameTokens = null, int modelMaxLength = 64,
        string? chatTemplate = null, bool templateInJinja = false, bool tokenizer = true)
    {
        Directory.CreateDirectory(folder);
        var weights = LlamaWeights(seed);
        SafetensorsFiles.Write(Path.Combine(folder, "model.safetensors"), weights);
        File.WriteAllText(Path.Combine(folder, "config.json"), Config().ToJsonString());
        File.WriteAllText(Path.Combine(folder, "generation_config.json"), new JsonObject { ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["temperature"] = 0.6 + seed / 100.0 }.ToJsonString());
        if (!tokenizer) return weights;
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), TokenizerJson(Tokens(renameTokens)).ToJsonString());
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), TokenizerConfig(modelMaxLength, templateInJinja ? null : chatTemplate).ToJsonString());
        File.WriteAllText(Path.Combine(folder, "special_tokens_map.json"), new JsonObject { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["unk_token"] = "<unk>" }.ToJsonString());
        if (templateInJinja && chatTemplate != null) File.WriteAllText(Path.Combine(folder, "chat_template.jinja"), chatTemplate);
        return weights;
    }
}
