// Parameter declarations shared by every merge method: what a recipe may set, its type, range and default.
using CloudSoup.Control.Recipes;

namespace CloudSoup.Control.Methods;

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

