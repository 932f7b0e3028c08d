namespace CloudSoup.Control.Recipes;

/// <summary>
/// The recipe's <c>chat_template</c>, written into the merged tokenizer's tokenizer_config.json: <c>auto</c> (the template
/// most of the models share, as mergekit/merge.py picks it) or the Jinja template text itself. mergekit's named templates
/// (its packaged .jinja files) are refused by name: CloudSoup does not ship copies of them.
/// </summary>
public static class ChatTemplate
{
    public const string Auto = "auto";

    /// <summary>The names mergekit resolves to its own packaged templates (mergekit/_data/chat_templates/).</summary>
    public static readonly IReadOnlyList<string> MergekitNames = ["alpaca", "chatml", "exaone", "llama3", "mistral"];

    /// <summary>mergekit's test for template text (mergekit/merge.py, _set_chat_template): at least 20 characters and a '{'.</summary>
    public static bool LooksLikeTemplate(string text) => text.Length >= 20 && text.Contains('{');
}
