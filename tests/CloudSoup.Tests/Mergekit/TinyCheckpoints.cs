// Small stand-ins for the checkpoints mergekit's example and test configs name (Fixtures/mergekit/README.md): the
// same architectures' tensor names (Hugging Face Llama, Mistral, Granite, GPT-2 and LLaVA layouts) with tiny shapes,
// and deterministic values, so each config runs in milliseconds and its result can be recomputed by hand.
// "Fine-tunes" are their family's base plus a perturbation of 0.2 times a value in [-1, 1).
using TorchSharp;

namespace CloudSoup.Tests.Mergekit;

/// <summary>One tensor of a fixture: its shape and float32 values (row-major).</summary>
public sealed record FixtureTensor(long[] Shape, float[] Values);

public static class TinyCheckpoints
{
    /// <summary>Fixture name (as the configs write it, without .safetensors) → architecture and variant (null: the family's base).</summary>
    private static readonly Dictionary<string, (string Architecture, string? Variant)> Catalog = new(StringComparer.Ordinal)
    {
        ["Llama-2-13B-fp16"] = ("llama40", null),
        ["orca_mini_v3_13b"] = ("llama40", "orca"),
        ["Platypus2-13B"] = ("llama40", "platypus"),
        ["WizardLM-13B-V1.2"] = ("llama40", "wizardlm"),
        ["WizardMath-13B-V1.0"] = ("llama40", "wizardmath"),
        ["Mistral-7B-v0.1"] = ("mistral", null),
        ["Mistral-7B-Instruct-v0.2"] = ("mistral", "instruct"),
        ["BioMistral-7B"] = ("mistral", "bio"),
        ["llama_a"] = ("picollama", "a"),
        ["llama_b"] = ("picollama", "b"),
        ["llama_c"] = ("picollama", "c"),
        ["granite_a"] = ("granite", "a"),
        ["granite_b"] = ("granite", "b"),
        ["gpt2_like"] = ("gpt2", "x"),
        ["llava_a"] = ("llava", "a"),
        ["llava_b"] = ("llava", "b"),
        ["llava_c"] = ("llava", "c"),
    };

    public static bool Knows(string name) => Catalog.ContainsKey(name);

    /// <summary>The fixture's tensors in checkpoint order.</summary>
    public static IReadOnlyDictionary<string, FixtureTensor> Get(string name)
    {
        var (arch, variant) = Catalog[name];
        var result = new Dictionary<string, FixtureTensor>(StringComparer.Ordinal);
        foreach (var (tensor, shape) in Shapes(arch))
        {
            int n = (int)shape.Aggregate(1L, (a, b) => a * b);
            // Norm scales sit around 1, as trained ones do; everything else is spread around 0.
            bool normScale = (tensor.Contains("norm") || tensor.Contains("ln_")) && !tensor.EndsWith(".bias", StringComparison.Ordinal);
            var values = new float[n];
            for (int i = 0; i < n; i++)
            {
                double v = Uniform(arch, tensor, i);
                if (normScale) v = 1 + 0.1 * v;
                if (variant != null) v += 0.2 * Uniform(arch + "/" + variant, tensor, i);
                values[i] = (float)v;
            }
            result[tensor] = new FixtureTensor(shape, values);
        }
        return result;
    }

    /// <summary>Writes fixture <paramref name="name"/> as a float32 safetensors file.</summary>
    public static void Write(string name, string path)
    {
        var tensors = Get(name).ToDictionary(kv => kv.Key, kv => torch.tensor(kv.Value.Values).reshape(kv.Value.Shape));
        try { Support.SafetensorsFiles.Write(path, tensors); }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    private static IEnumerable<(string, long[])> Shapes(string arch) => arch switch
    {
        "llama40" => Llama("model.", "lm_head.weight", layers: 40, hidden: 4, inter: 6, vocab: 8, kv: 4),
        "mistral" => Llama("model.", "lm_head.weight", layers: 4, hidden: 8, inter: 12, vocab: 16, kv: 4),
        "picollama" or "granite" => Llama("model.", "lm_head.weight", layers: 2, hidden: 8, inter: 12, vocab: 16, kv: 8),
        "gpt2" => Gpt2(layers: 12, hidden: 8, vocab: 16, positions: 8),
        "llava" => Llava(),
        _ => throw new ArgumentException(arch),
    };

    private static IEnumerable<(string, long[])> Llama(string prefix, string head, int layers, int hidden, int inter, int vocab, int kv)
    {
        yield return ($"{prefix}embed_tokens.weight", [vocab, hidden]);
        for (int l = 0; l < layers; l++)
        {
            string p = $"{prefix}layers.{l}.";
            yield return ($"{p}self_attn.q_proj.weight", [hidden, hidden]);
            yield return ($"{p}self_attn.k_proj.weight", [kv, hidden]);
            yield return ($"{p}self_attn.v_proj.weight", [kv, hidden]);
            yield return ($"{p}self_attn.o_proj.weight", [hidden, hidden]);
            yield return ($"{p}mlp.gate_proj.weight", [inter, hidden]);
            yield return ($"{p}mlp.up_proj.weight", [inter, hidden]);
            yield return ($"{p}mlp.down_proj.weight", [hidden, inter]);
            yield return ($"{p}input_layernorm.weight", [hidden]);
            yield return ($"{p}post_attention_layernorm.weight", [hidden]);
        }
        yield return ($"{prefix}norm.weight", [hidden]);
        yield return (head, [vocab, hidden]);
    }

    private static IEnumerable<(string, long[])> Gpt2(int layers, int hidden, int vocab, int positions)
    {
        yield return ("transformer.wte.weight", [vocab, hidden]);
        yield return ("transformer.wpe.weight", [positions, hidden]);
        for (int l = 0; l < layers; l++)
        {
            string p = $"transformer.h.{l}.";
            yield return ($"{p}ln_1.weight", [hidden]);
            yield return ($"{p}ln_1.bias", [hidden]);
            yield return ($"{p}attn.c_attn.weight", [hidden, 3 * hidden]);
            yield return ($"{p}attn.c_attn.bias", [3 * hidden]);
            yield return ($"{p}attn.c_proj.weight", [hidden, hidden]);
            yield return ($"{p}attn.c_proj.bias", [hidden]);
            yield return ($"{p}ln_2.weight", [hidden]);
            yield return ($"{p}ln_2.bias", [hidden]);
            yield return ($"{p}mlp.c_fc.weight", [hidden, 4 * hidden]);
            yield return ($"{p}mlp.c_fc.bias", [4 * hidden]);
            yield return ($"{p}mlp.c_proj.weight", [4 * hidden, hidden]);
            yield return ($"{p}mlp.c_proj.bias", [hidden]);
        }
        yield return ("transformer.ln_f.weight", [hidden]);
        yield return ("transformer.ln_f.bias", [hidden]);
    }

    /// <summary>LLaVA: a CLIP vision tower (8 wide, 2 layers, 2×2 patches of a 4×4 image), a two-layer projector, a Llama language model.</summary>
    private static IEnumerable<(string, long[])> Llava()
    {
        const int v = 8, patch = 2, positions = 5;
        const string vm = "vision_tower.vision_model.";
        yield return ($"{vm}embeddings.class_embedding", [v]);
        yield return ($"{vm}embeddings.patch_embedding.weight", [v, 3, patch, patch]);
        yield return ($"{vm}embeddings.position_embedding.weight", [positions, v]);
        yield return ($"{vm}pre_layrnorm.weight", [v]);
        yield return ($"{vm}pre_layrnorm.bias", [v]);
        for (int l = 0; l < 2; l++)
        {
            string p = $"{vm}encoder.layers.{l}.";
            foreach (var proj in new[] { "k_proj", "v_proj", "q_proj", "out_proj" })
            {
                yield return ($"{p}self_attn.{proj}.weight", [v, v]);
                yield return ($"{p}self_attn.{proj}.bias", [v]);
            }
            yield return ($"{p}layer_norm1.weight", [v]);
            yield return ($"{p}layer_norm1.bias", [v]);
            yield return ($"{p}mlp.fc1.weight", [2 * v, v]);
            yield return ($"{p}mlp.fc1.bias", [2 * v]);
            yield return ($"{p}mlp.fc2.weight", [v, 2 * v]);
            yield return ($"{p}mlp.fc2.bias", [v]);
            yield return ($"{p}layer_norm2.weight", [v]);
            yield return ($"{p}layer_norm2.bias", [v]);
        }
        yield return ($"{vm}post_layernorm.weight", [v]);
        yield return ($"{vm}post_layernorm.bias", [v]);
        yield return ("multi_modal_projector.linear_1.weight", [8, v]);
        yield return ("multi_modal_projector.linear_1.bias", [8]);
        yield return ("multi_modal_projector.linear_2.weight", [8, 8]);
        yield return ("multi_modal_projector.linear_2.bias", [8]);
        foreach (var t in Llama("language_model.model.", "language_model.lm_head.weight", layers: 2, hidden: 8, inter: 12, vocab: 16, kv: 8))
            yield return t;
    }

    /// <summary>A value in [-1, 1) determined by (stream, tensor, index): SplitMix64 over an FNV-1a hash of the names.</summary>
    private static double Uniform(string stream, string tensor, int index)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in stream + "|" + tensor) { h ^= c; h *= 1099511628211UL; }
        ulong z = h + (ulong)(index + 1) * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53)) * 2 - 1;
    }
}
