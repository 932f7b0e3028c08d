// Where a recipe may read from (docs/security.md). A recipe names blobs by path, and the service's identity can read
// the whole account, so without a rule a recipe could name another job's output, the stored recipes, or a container
// the service never uses. Every reference is checked at submission (MergeSubmitter) and again by the worker before it
// reads anything (JobProcessor; BlobCheckpointStore refuses reads outside the sources too):
//   CloudSoup__InputSources      inputs of every kind: models, base model, Fishers, evaluation data, alignment specs
//                                (default: the checkpoints and eval containers)
//   CloudSoup__EvalModelSources  TorchScript evaluation models, which are code (default: the eval container)
// Each is a comma-separated list of containers ("checkpoints") or container/prefix locations ("eval/models"); a prefix
// matches whole path segments, so "eval/models" allows eval/models/x.pt but not eval/models-old/x.pt.
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Methods;
using CloudSoup.Control.Recipes;

namespace CloudSoup.Control.Storage;

public sealed class InputSources
{
    private readonly IReadOnlyList<BlobPrefix> _inputs;
    private readonly IReadOnlyList<BlobPrefix> _evalModels;

    private readonly record struct BlobPrefix(string Container, string? Prefix)
    {
        public bool Contains(BlobPath p) =>
            p.Container == Container && (Prefix is null || p.Name == Prefix || p.Name.StartsWith(Prefix + "/", StringComparison.Ordinal));

        public override string ToString() => Prefix is null ? $"{Container}/" : $"{Container}/{Prefix}/";
    }

    public InputSources(IEnumerable<string> inputs, IEnumerable<string> evalModels)
    {
        _inputs = inputs.Select(s => Parse(s, "InputSources")).ToList();
        _evalModels = evalModels.Select(s => Parse(s, "EvalModelSources")).ToList();
    }

    /// <summary>The configured sources, or the defaults: inputs from checkpoints and eval, evaluation models from eval.</summary>
    public static InputSources From(CloudSoupOptions o) => new(
        List(o.InputSources) ?? [o.CheckpointsContainer, o.EvalContainer],
        List(o.EvalModelSources) ?? [o.EvalContainer]);

    public string Describe() => string.Join(", ", _inputs);
    public string DescribeEvalModels() => string.Join(", ", _evalModels);

    public bool AllowsInput(string reference) => Allows(_inputs, reference);
    public bool AllowsEvalModel(string reference) => Allows(_evalModels, reference);

    /// <summary>Anything a job may read as input or evaluation model.</summary>
    public bool AllowsAny(string reference) => AllowsInput(reference) || AllowsEvalModel(reference);

    /// <summary>Throws an InvalidRecipe error naming the first reference (and its field) outside the allowed sources.</summary>
    public void Check(Recipe recipe)
    {
        foreach (var (field, reference, isModelCode) in References(recipe))
        {
            if (isModelCode)
            {
                if (!AllowsEvalModel(reference))
                    throw CloudSoupException.Recipe(field, $"'{reference}' is not in a location this service takes evaluation models from ({DescribeEvalModels()}); a TorchScript model is code, and the operator decides where it may come from (CloudSoup__EvalModelSources)");
            }
            else if (!AllowsInput(reference))
                throw CloudSoupException.Recipe(field, $"'{reference}' is not in a location this service reads inputs from ({Describe()}); upload it there, or ask the operator to add its container to CloudSoup__InputSources");
        }
    }

    /// <summary>
    /// Every blob a recipe names, with the field that names it and whether it is a TorchScript model (built-in
    /// architectures are not blobs). MergeSubmitter checks the same list for blob paths and existence.
    /// </summary>
    public static IEnumerable<(string Field, string Reference, bool IsModelCode)> References(Recipe recipe)
    {
        for (int i = 0; i < recipe.Models.Count; i++) yield return ($"models[{i}].model", recipe.Models[i].Model, false);
        if (recipe.BaseModel != null) yield return ("base_model", recipe.BaseModel, false);
        if (recipe.Evaluation is { } e)
        {
            if (!IsBuiltin(e.Model)) yield return ("evaluation.model", e.Model, true);
            yield return ("evaluation.data", e.Data, false);
            if (e.Test != null) yield return ("evaluation.test", e.Test, false);
        }
        if (recipe.Fisher is { } f)
        {
            if (!IsBuiltin(f.Model)) yield return ("fisher.model", f.Model, true);
            yield return ("fisher.data", f.Data, false);
        }
        if (recipe.Alignment is { } a && !AlignmentSection.BuiltinSpecs.Contains(a.Spec)) yield return ("alignment.spec", a.Spec, false);
        if (recipe.TokenizerSource is { Model: { } tokenizer } ts) yield return (ts.Field, tokenizer, false);
        var named = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (reference, field) in ReferencesInParameters(recipe))
            if (named.Add(reference)) yield return (field, reference, false);
    }

    /// <summary>Checkpoints named by parameters (e.g. each model's fisher), with the parameter's field.</summary>
    private static IEnumerable<(string Reference, string Field)> ReferencesInParameters(Recipe recipe)
    {
        if (!MethodCatalog.TryGet(recipe.MergeMethod, out var method)) yield break;
        var aux = method.AuxiliaryReferences(recipe).ToHashSet(StringComparer.Ordinal);
        for (int i = 0; i < recipe.Models.Count; i++)
            foreach (var (name, setting) in recipe.Models[i].Parameters)
                if (setting is ScalarSetting { Value.Text: string t } && aux.Contains(t)) yield return (t, $"models[{i}].parameters.{name}");
        foreach (var (name, setting) in recipe.Parameters)
            if (setting is ScalarSetting { Value.Text: string t } && aux.Contains(t)) yield return (t, $"parameters.{name}");
        foreach (var t in aux) yield return (t, "parameters");
    }

    private static bool IsBuiltin(string reference) => reference.StartsWith("builtin:", StringComparison.Ordinal);

    private static bool Allows(IReadOnlyList<BlobPrefix> sources, string reference) =>
        BlobPath.TryParse(reference.TrimEnd('/'), out var p) && sources.Any(s => s.Contains(p));

    private static List<string>? List(string? text) =>
        string.IsNullOrWhiteSpace(text) ? null : text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();

    private static BlobPrefix Parse(string source, string setting)
    {
        var s = source.Trim().TrimEnd('/');
        int slash = s.IndexOf('/');
        string container = slash < 0 ? s : s[..slash];
        string? prefix = slash < 0 ? null : s[(slash + 1)..];
        if (!BlobPath.IsContainerName(container) || (prefix != null && (prefix.Length == 0 || prefix.Split('/').Any(seg => seg is "" or "." or ".."))))
            throw new InvalidOperationException($"CloudSoup:{setting} entry '{source}' is not a container or container/prefix");
        return new BlobPrefix(container, prefix);
    }
}
