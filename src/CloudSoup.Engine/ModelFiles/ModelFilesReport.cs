namespace CloudSoup.Engine.ModelFiles;

/// <summary>
/// report.json "modelFiles": the Hugging Face side files written next to the weights (config, tokenizer, model card),
/// where they came from, and what was not written and why (e.g. a single .safetensors input has no config.json).
/// </summary>
public sealed class ModelFilesReport
{
    /// <summary>The model config.json and generation_config.json were taken from (the base model, or the first model).</summary>
    public string? ConfigFrom { get; set; }
    /// <summary>The model the tokenizer files were taken from (tokenizer_source, else the base or first model).</summary>
    public string? TokenizerFrom { get; set; }
    /// <summary>Where the chat template written into tokenizer_config.json came from: "recipe", or the models chat_template: auto chose.</summary>
    public string? ChatTemplate { get; set; }
    /// <summary>Files written, relative to the output folder, in order.</summary>
    public List<string> Written { get; } = [];
    public List<string> Notes { get; } = [];
}
