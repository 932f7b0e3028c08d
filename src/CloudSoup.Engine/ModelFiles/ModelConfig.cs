// config.json of the merged model: the base (or first) model's, with what the merge changed (mergekit/merge.py,
// _model_out_config): the layer count when slices restack the layers, and the dtype of the written weights.
using System.Text.Json.Nodes;
using CloudSoup.Control.Tensors;

namespace CloudSoup.Engine.ModelFiles;

public static class ModelConfig
{
    /// <summary>
    /// Where configs keep their layer count, in the order tried. mergekit names the key per architecture
    /// (mergekit/_data/architectures/*.json, "num_layers_config_key"): num_hidden_layers for most, n_layer for the
    /// GPT-2 family, text_config.num_hidden_layers for vision-language models; num_layers and n_layers cover the rest.
    /// </summary>
    public static readonly IReadOnlyList<string> LayerCountKeys = ["num_hidden_layers", "n_layer", "num_layers", "n_layers", "text_config.num_hidden_layers"];

    /// <summary>
    /// The config with <paramref name="layers"/> written to its layer-count key (when given) and <paramref name="dtype"/>
    /// as its torch_dtype, or as dtype when the config uses transformers' newer name for it. What cannot be done is a note.
    /// </summary>
    public static byte[] Rewrite(byte[] source, string path, int? layers, DType? dtype, ICollection<string> notes)
    {
        var config = ModelJson.ParseObject(source, path);
        if (layers is int n)
        {
            var key = LayerCountKeys.FirstOrDefault(k => Find(config, k) is { } v && v.GetValueKind() == System.Text.Json.JsonValueKind.Number);
            if (key is null) notes.Add($"{path} has no layer count ({string.Join(", ", LayerCountKeys)}); the merged model has {n} layers: set it by hand");
            else Set(config, key, n);
        }
        if (dtype is DType d)
        {
            string name = TorchName(d);
            if (config.ContainsKey("dtype") && !config.ContainsKey("torch_dtype")) config["dtype"] = name;
            else config["torch_dtype"] = name;
        }
        return ModelJson.ToBytes(config);
    }

    /// <summary>transformers' name for a dtype (torch_dtype values are torch attribute names).</summary>
    public static string TorchName(DType d) => d switch
    {
        DType.F64 => "float64",
        DType.F32 => "float32",
        DType.F16 => "float16",
        DType.BF16 => "bfloat16",
        _ => throw new ArgumentOutOfRangeException(nameof(d), d, "not a floating-point dtype"),
    };

    private static JsonNode? Find(JsonObject o, string dotted)
    {
        JsonNode? node = o;
        foreach (var part in dotted.Split('.'))
            node = node is JsonObject obj && obj.TryGetPropertyValue(part, out var child) ? child : null;
        return node;
    }

    private static void Set(JsonObject o, string dotted, int value)
    {
        var parts = dotted.Split('.');
        var parent = parts.Length == 1 ? o : (JsonObject)Find(o, string.Join('.', parts[..^1]))!;
        parent[parts[^1]] = value;
    }
}
