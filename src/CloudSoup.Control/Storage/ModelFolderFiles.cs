namespace CloudSoup.Control.Storage;

/// <summary>
/// The files of a Hugging Face model folder besides its weights that a merge carries over (docs: README "What a merge
/// writes"). mergekit copies the tokenizer files and generation_config.json (mergekit/merge.py, _copy_tokenizer) and a
/// few processor files for some architectures ("tagalong_files"); CloudSoup adds the vocabulary files slow tokenizers
/// read (vocab.json, vocab.txt), which mergekit regenerates through transformers instead.
/// </summary>
public static class ModelFolderFiles
{
    public const string Config = "config.json";
    public const string GenerationConfig = "generation_config.json";
    public const string TokenizerConfig = "tokenizer_config.json";
    public const string TokenizerJson = "tokenizer.json";
    public const string SentencePiece = "tokenizer.model";
    public const string ChatTemplateJinja = "chat_template.jinja";
    public const string ChatTemplateJson = "chat_template.json";
    public const string ModelCard = "README.md";

    /// <summary>Copied from the base model (or the first model): they describe the architecture and generation defaults.</summary>
    public static readonly IReadOnlyList<string> FromBase =
        [Config, GenerationConfig, "preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json"];

    /// <summary>Copied from the tokenizer's source (tokenizer_source, else the base or first model).</summary>
    public static readonly IReadOnlyList<string> Tokenizer =
        [TokenizerConfig, "special_tokens_map.json", TokenizerJson, SentencePiece, "added_tokens.json", "merges.txt", "vocab.json", "vocab.txt", ChatTemplateJinja, ChatTemplateJson];

    /// <summary>Every side file, for versioning a model folder (a change to any of them is a different job).</summary>
    public static readonly IReadOnlyList<string> All = [.. FromBase, .. Tokenizer];

    /// <summary>The largest side file read: tokenizer.json of 256k-token vocabularies is tens of MB.</summary>
    public const long MaxBytes = 128L << 20;
}
