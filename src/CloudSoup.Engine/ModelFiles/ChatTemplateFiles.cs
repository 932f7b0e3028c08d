// Chat templates in a model folder, and the recipe's chat_template written into the merged tokenizer. transformers
// keeps a template in tokenizer_config.json ("chat_template": a string, or a list of {name, template}), and newer
// versions in chat_template.jinja (or a processor's chat_template.json), which take precedence when loading
// (https://huggingface.co/docs/transformers/chat_templating). mergekit sets the recipe's template on the tokenizer it
// saves (mergekit/merge.py, _set_chat_template); CloudSoup writes it into tokenizer_config.json and leaves out the
// source's template files, which would otherwise override it.
using System.Text;
using System.Text.Json.Nodes;
using CloudSoup.Control.Storage;
using CloudSoup.Engine.Storage;

namespace CloudSoup.Engine.ModelFiles;

public static class ChatTemplateFiles
{
    /// <summary>The files that carry a template besides tokenizer_config.json; not copied when the recipe sets one.</summary>
    public static readonly IReadOnlyList<string> Separate = [ModelFolderFiles.ChatTemplateJinja, ModelFolderFiles.ChatTemplateJson];

    /// <summary>The chat template the tokenizer in <paramref name="folder"/> would load, or null.</summary>
    public static async Task<string?> ReadAsync(ICheckpointStore store, string folder, CancellationToken ct)
    {
        if (await ModelFolder.TryReadAsync(store, folder, ModelFolderFiles.ChatTemplateJinja, ct).ConfigureAwait(false) is { } jinja)
            return Encoding.UTF8.GetString(jinja);
        if (await ModelFolder.TryReadAsync(store, folder, ModelFolderFiles.ChatTemplateJson, ct).ConfigureAwait(false) is { } json
            && Template(ModelJson.ParseObject(json, ModelFolder.PathOf(folder, ModelFolderFiles.ChatTemplateJson))) is { } fromJson)
            return fromJson;
        if (await ModelFolder.TryReadAsync(store, folder, ModelFolderFiles.TokenizerConfig, ct).ConfigureAwait(false) is { } config)
            return Template(ModelJson.ParseObject(config, ModelFolder.PathOf(folder, ModelFolderFiles.TokenizerConfig)));
        return null;
    }

    /// <summary>"chat_template" of a JSON object: the string, or from a list of named templates the one named "default" (as mergekit reads it).</summary>
    private static string? Template(JsonObject o) => o["chat_template"] switch
    {
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonArray named => named.OfType<JsonObject>().FirstOrDefault(t => t["name"] is JsonValue n && n.TryGetValue(out string? name) && name == "default")?["template"] is JsonValue tv
            && tv.TryGetValue(out string? t) ? t : null,
        _ => null,
    };

    /// <summary>
    /// chat_template: auto — the template most of the models have (compared after trimming, as mergekit does), ties going
    /// to the one seen first in recipe order; null when none has one.
    /// </summary>
    public static string? MostCommon(IEnumerable<string?> templates) =>
        templates.Where(t => !string.IsNullOrWhiteSpace(t)).Select(t => t!.Trim())
            .Select((t, i) => (t, i)).GroupBy(x => x.t, StringComparer.Ordinal)
            .OrderByDescending(g => g.Count()).ThenBy(g => g.Min(x => x.i)).Select(g => g.Key).FirstOrDefault();

    /// <summary>tokenizer_config.json with its chat_template replaced.</summary>
    public static byte[] SetInto(byte[] tokenizerConfig, string path, string template)
    {
        var config = ModelJson.ParseObject(tokenizerConfig, path);
        config["chat_template"] = template;
        return ModelJson.ToBytes(config);
    }
}
