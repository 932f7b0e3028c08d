namespace CloudSoup.Control.Recipes;

/// <summary>
/// Where the merged model's tokenizer comes from (mergekit's <c>tokenizer_source</c>, or <c>tokenizer: {source: ...}</c>):
/// the base model (<see cref="Model"/> null: the base_model, or the first model without one) or a model reference.
/// <see cref="Field"/> is the recipe field that set it, for errors. Without this section the tokenizer is copied from
/// the base (or first) model unchecked, as mergekit copies it; with it, the job checks every model shares the source's
/// vocabulary, because CloudSoup does not re-map embedding rows (docs/methods.md).
/// </summary>
public sealed record TokenizerSource(string Field, string? Model)
{
    public const string Base = "base";

    public bool IsBase => Model is null;

    /// <summary>What the recipe wrote: "base" or the model reference.</summary>
    public string Text => Model ?? Base;
}
