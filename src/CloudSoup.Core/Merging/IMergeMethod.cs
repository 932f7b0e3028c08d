using CloudSoup.Core.Recipes;
using TorchSharp;

namespace CloudSoup.Core.Merging;

/// <summary>Reference: a checkpoint reference whose tensor of the same name the executor loads as an auxiliary input.</summary>
public enum ParameterKind { Number, Bool, Text, Reference }

/// <summary>
/// A parameter a merge method understands. Global parameters are looked up once per tensor; per-model
/// parameters once per model and tensor (falling back to the global level, as in mergekit).
/// </summary>
public sealed record ParameterSpec(string Name, ParameterKind Kind, bool PerModel, object? Default = null, bool Required = false,
    double Min = double.NegativeInfinity, double Max = double.PositiveInfinity, bool MinExclusive = false, string? Help = null,
    IReadOnlyList<string>? Choices = null)
{
    /// <summary>Checks one resolved value; returns a reason when it is impossible.</summary>
    public string? Check(ParameterValue v)
    {
        if (Kind == ParameterKind.Bool)
            return v.Bool is null ? "must be true or false" : null;
        if (Kind == ParameterKind.Reference)
            return string.IsNullOrWhiteSpace(v.Text) ? "must be a checkpoint reference" : null;
        if (Kind == ParameterKind.Text)
        {
            var text = v.Text ?? v.Number?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? v.Bool?.ToString();
            if (text is null) return "must be a string";
            return Choices is { Count: > 0 } && !Choices.Contains(text) ? $"must be one of {string.Join(", ", Choices)}" : null;
        }
        if (v.Number is not double d) return "must be a number";
        if (double.IsNaN(d) || double.IsInfinity(d)) return "must be finite";
        if (d < Min || (MinExclusive && d <= Min)) return $"must be {(MinExclusive ? ">" : ">=")} {Min}";
        if (d > Max) return $"must be <= {Max}";
        return null;
    }
}

public enum BaseModelUse
{
    /// <summary>The method ignores base_model (a base listed among models is just another input).</summary>
    NotUsed,
    Optional,
    Required,
}

/// <summary>Resolved parameter values for one tensor (and one model, for per-model parameters).</summary>
public sealed class ResolvedParameters(IReadOnlyDictionary<string, ParameterValue> values)
{
    public IReadOnlyDictionary<string, ParameterValue> Values { get; } = values;

    public double Number(string name) => Values.TryGetValue(name, out var v) && v.Number is double d ? d
        : throw new InvalidOperationException($"parameter '{name}' was not resolved to a number");

    public double? NumberOrNull(string name) => Values.TryGetValue(name, out var v) ? v.Number : null;

    public string Text(string name) => Values.TryGetValue(name, out var v) && v.Text is string t ? t
        : throw new InvalidOperationException($"parameter '{name}' was not resolved to a string");

    public bool Bool(string name) => Values.TryGetValue(name, out var v) && v.Bool is bool b ? b
        : throw new InvalidOperationException($"parameter '{name}' was not resolved to a boolean");
}

/// <summary>Everything a method sees for one output tensor. Tensors are in the compute dtype.</summary>
public sealed class TensorMergeInput
{
    public required string TensorName { get; init; }

    /// <summary>The inputs in recipe order (the base model, when it is listed among models, included).</summary>
    public required IReadOnlyList<torch.Tensor> Tensors { get; init; }

    /// <summary>Model references, parallel to <see cref="Tensors"/>.</summary>
    public required IReadOnlyList<string> ModelIds { get; init; }

    /// <summary>Per-model parameters, parallel to <see cref="Tensors"/>.</summary>
    public required IReadOnlyList<ResolvedParameters> PerModel { get; init; }

    public required ResolvedParameters Global { get; init; }

    /// <summary>The base model's tensor, when the recipe names one.</summary>
    public torch.Tensor? Base { get; init; }

    /// <summary>Index of the base model in <see cref="Tensors"/>, or -1 when it is not listed among them.</summary>
    public int BaseIndex { get; init; } = -1;

    /// <summary>Seed for this tensor: recipe seed mixed with the tensor name (see <see cref="Seeds"/>).</summary>
    public long Seed { get; init; }

    /// <summary>
    /// Auxiliary tensors per model (parallel to <see cref="Tensors"/>), keyed by the name of the Reference parameter
    /// that named their checkpoint (e.g. "fisher"); the executor loads this tensor's name from that checkpoint.
    /// </summary>
    public IReadOnlyList<IReadOnlyDictionary<string, torch.Tensor>> Auxiliary { get; init; } = [];

    /// <summary>Auxiliary tensors named by global Reference parameters (e.g. "base_fisher").</summary>
    public IReadOnlyDictionary<string, torch.Tensor> GlobalAuxiliary { get; init; } = new Dictionary<string, torch.Tensor>();

    /// <summary>Where a method reports what it decided for this tensor (e.g. which models it accepted); goes to the report.</summary>
    public Action<string>? Note { get; init; }

    public torch.Tensor Aux(int model, string name) =>
        model < Auxiliary.Count && Auxiliary[model].TryGetValue(name, out var t) ? t
            : throw new InvalidOperationException($"no auxiliary tensor '{name}' for model {model} of '{TensorName}'");
}

/// <summary>One merge method: a pure function from input tensors to the merged tensor.</summary>
public interface IMergeMethod
{
    string Name { get; }
    string Description { get; }
    BaseModelUse BaseModel { get; }
    int MinModels { get; }
    IReadOnlyList<ParameterSpec> Parameters { get; }

    /// <summary>Merges one tensor. Runs under no_grad; must not dispose its inputs.</summary>
    torch.Tensor Merge(TensorMergeInput input);

    /// <summary>
    /// Recipe-level checks the generic ones (base model, minimum count, required parameters) cannot express,
    /// e.g. "exactly one model besides the base". Throws <c>CloudSoupException.Recipe</c> naming the field.
    /// </summary>
    void ValidateRecipe(Recipe recipe) { }

    /// <summary>
    /// Checks a combination of one model's resolved values for one tensor (e.g. della's density ± epsilon);
    /// returns (parameter name, reason) when it is impossible. Runs in the planner, before any tensor is read.
    /// </summary>
    (string Parameter, string Reason)? CheckResolved(ResolvedParameters global, ResolvedParameters perModel) => null;
}

/// <summary>Shared recipe checks for methods with fixed model counts.</summary>
public static class MethodChecks
{
    /// <summary>The models other than the base, in recipe order.</summary>
    public static IReadOnlyList<string> Others(Recipe recipe) =>
        recipe.Models.Select(m => m.Model).Where(m => m != recipe.BaseModel).ToList();

    public static void OthersBetween(Recipe recipe, string method, int min, int max)
    {
        int n = Others(recipe).Count;
        if (n < min || n > max)
        {
            string want = min == max ? $"exactly {min}" : max == int.MaxValue ? $"at least {min}" : $"{min} to {max}";
            throw Errors.CloudSoupException.Recipe("models", $"merge method '{method}' needs {want} model{(min == 1 && max == 1 ? "" : "s")} besides the base_model, the recipe has {n}");
        }
    }
}

/// <summary>Deterministic per-tensor seeds, so a merge reproduces on any number of workers.</summary>
public static class Seeds
{
    public static long For(long recipeSeed, string tensorName, string? modelId = null)
    {
        // FNV-1a 64 over the seed and the names: stable across processes and platforms.
        ulong h = 14695981039346656037UL;
        void Mix(ReadOnlySpan<byte> bytes) { foreach (var b in bytes) { h ^= b; h *= 1099511628211UL; } }
        Mix(BitConverter.GetBytes(recipeSeed));
        Mix(System.Text.Encoding.UTF8.GetBytes(tensorName));
        if (modelId != null) { Mix([0]); Mix(System.Text.Encoding.UTF8.GetBytes(modelId)); }
        return (long)(h & 0x7FFF_FFFF_FFFF_FFFFUL);
    }
}
