// The recipe's tokenizer keys, mergekit's way (mergekit/config.py MergeConfiguration: tokenizer_source, tokenizer,
// chat_template; mergekit/tokenizer/config.py TokenizerConfig). What CloudSoup cannot do the same way is refused here,
// naming the field, rather than silently producing a different model.
using CloudSoup.Control.Errors;
using YamlDotNet.RepresentationModel;

namespace CloudSoup.Control.Recipes;

public static partial class RecipeParser
{
    private static readonly string[] TokenizerKeys = ["source", "tokens", "pad_to_multiple_of"];

    /// <summary>Why every way of building a new vocabulary is refused.</summary>
    private const string RemapsEmbeddings = "re-maps the embedding rows to a new vocabulary, which CloudSoup does not do (docs/methods.md)";

    /// <summary>
    /// <c>tokenizer_source: base | MODEL</c> or <c>tokenizer: {source: base | MODEL}</c>. mergekit's default source in a
    /// <c>tokenizer</c> section is <c>union</c>, which (like <c>tokens</c> and <c>pad_to_multiple_of</c>) rebuilds the
    /// embedding rows (mergekit/tokenizer/embed.py), so it is refused; so is giving both keys, as mergekit does.
    /// </summary>
    private static TokenizerSource? ParseTokenizerSource(Dictionary<string, YamlNode> fields)
    {
        string field;
        YamlNode? sourceNode;
        if (fields.TryGetValue("tokenizer_source", out var ts))
        {
            if (fields.ContainsKey("tokenizer")) throw CloudSoupException.Recipe("tokenizer", "give either tokenizer_source or tokenizer, not both");
            (field, sourceNode) = ("tokenizer_source", ts);
        }
        else if (fields.TryGetValue("tokenizer", out var tn))
        {
            if (tn is not YamlMappingNode tm) throw CloudSoupException.Recipe("tokenizer", "must be a mapping like {source: base}");
            var tf = Fields(tm, "tokenizer", TokenizerKeys);
            if (tf.ContainsKey("tokens")) throw CloudSoupException.Recipe("tokenizer.tokens", $"chooses embeddings for added tokens, which {RemapsEmbeddings}");
            if (tf.ContainsKey("pad_to_multiple_of")) throw CloudSoupException.Recipe("tokenizer.pad_to_multiple_of", "pads the embedding rows, which CloudSoup does not do (docs/methods.md)");
            if (!tf.TryGetValue("source", out sourceNode))
                throw CloudSoupException.Recipe("tokenizer.source", $"is union when left out (mergekit's default), which {RemapsEmbeddings}; give source: base or a model");
            field = "tokenizer.source";
        }
        else return null;
        string source = Scalar(sourceNode, field).Trim();
        if (source == "union") throw CloudSoupException.Recipe(field, $"union {RemapsEmbeddings}; use base or a model whose tokenizer every model shares");
        return source == TokenizerSource.Base ? new TokenizerSource(field, null) : new TokenizerSource(field, ModelRef(sourceNode, field));
    }

    /// <summary>
    /// <c>chat_template: auto</c> or the Jinja text. mergekit's named templates are its own packaged files; CloudSoup does
    /// not ship copies, so a name is refused with what to write instead. Anything else must look like a template by
    /// mergekit's own test (merge.py: at least 20 characters and a '{').
    /// </summary>
    private static string ParseChatTemplate(YamlNode node)
    {
        string text = Scalar(node, "chat_template");
        if (text.Trim() == ChatTemplate.Auto) return ChatTemplate.Auto;
        if (ChatTemplate.MergekitNames.Contains(text.Trim()))
            throw CloudSoupException.Recipe("chat_template", $"'{text.Trim()}' names one of mergekit's packaged templates, which CloudSoup does not ship; give the Jinja template text itself, or auto to take the one most models share");
        if (!ChatTemplate.LooksLikeTemplate(text))
            throw CloudSoupException.Recipe("chat_template", $"must be auto or a Jinja template (at least 20 characters with a '{{'); mergekit's named templates ({string.Join(", ", ChatTemplate.MergekitNames)}) are not shipped");
        return text;
    }
}
