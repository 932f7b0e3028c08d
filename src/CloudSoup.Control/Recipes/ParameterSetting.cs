// mergekit's parameter values (mergekit/config.py; docs/methods.md, "Parameter values"): a scalar, a gradient (list of numbers
// interpolated across layers), or a list of {filter, value} entries where the first filter that is a
// substring of the tensor name wins ("*" or no filter matches everything). No match falls through to
// the next level (model parameters, then global parameters).
using System.Globalization;
using System.Text.Json.Nodes;

namespace CloudSoup.Control.Recipes;

/// <summary>Where a tensor sits among the model's layers; <see cref="T"/> is its fractional position in [0,1].</summary>
public readonly record struct LayerPosition(int? Index, int Count)
{
    public static readonly LayerPosition None = new(null, 0);

    /// <summary>mergekit: idx/(n-1) inside a stack of layers, 0 for tensors outside any layer stack.</summary>
    public double T => Index is int i ? (Count <= 1 ? 1.0 : (double)i / (Count - 1)) : 0.0;
}

public abstract record ParameterSetting
{
    /// <summary>The value for one tensor, or null when a filter list has no entry matching it.</summary>
    public abstract ParameterValue? Evaluate(string tensorName, LayerPosition layer);

    public abstract JsonNode ToJson();
}

/// <summary>A resolved parameter value: a number, a boolean or a string.</summary>
public readonly record struct ParameterValue(double? Number, bool? Bool, string? Text)
{
    public static ParameterValue Of(double v) => new(v, null, null);
    public static ParameterValue Of(bool v) => new(null, v, null);
    public static ParameterValue Of(string v) => new(null, null, v);
    public override string ToString() => Number?.ToString(CultureInfo.InvariantCulture) ?? Bool?.ToString().ToLowerInvariant() ?? Text ?? "";
}

public sealed record ScalarSetting(ParameterValue Value) : ParameterSetting
{
    public override ParameterValue? Evaluate(string tensorName, LayerPosition layer) => Value;

    public override JsonNode ToJson() => Value.Number is double d ? JsonValue.Create(d) : Value.Bool is bool b ? JsonValue.Create(b) : JsonValue.Create(Value.Text!);
}

/// <summary>A list of numbers interpolated linearly over the layer position.</summary>
public sealed record GradientSetting(IReadOnlyList<double> Points) : ParameterSetting
{
    public override ParameterValue? Evaluate(string tensorName, LayerPosition layer) => ParameterValue.Of(At(layer.T));

    public double At(double t)
    {
        if (Points.Count == 1) return Points[0];
        double s = t * (Points.Count - 1);
        int i0 = (int)Math.Floor(s);
        if (i0 >= Points.Count - 1) return Points[^1];
        int i1 = Math.Min(Points.Count - 1, i0 + 1);
        double frac = s - i0;
        return (1 - frac) * Points[i0] + frac * Points[i1];
    }

    public override JsonNode ToJson() => new JsonArray(Points.Select(p => (JsonNode)p).ToArray());
}

/// <summary>A list of non-numeric scalars used as a step function over layers.</summary>
public sealed record StepSetting(IReadOnlyList<ParameterValue> Steps) : ParameterSetting
{
    public override ParameterValue? Evaluate(string tensorName, LayerPosition layer)
    {
        int i = (int)Math.Min(Steps.Count - 1, Math.Floor(layer.T * Steps.Count));
        return Steps[Math.Max(0, i)];
    }

    public override JsonNode ToJson() => new JsonArray(Steps.Select(s => new ScalarSetting(s).ToJson()).ToArray());
}

public sealed record FilterSetting(IReadOnlyList<(string? Filter, ParameterSetting Value)> Entries) : ParameterSetting
{
    public override ParameterValue? Evaluate(string tensorName, LayerPosition layer)
    {
        foreach (var (filter, value) in Entries)
            if (filter is null or "*" || tensorName.Contains(filter, StringComparison.Ordinal))
                return value.Evaluate(tensorName, layer);
        return null;
    }

    public override JsonNode ToJson() => new JsonArray(Entries.Select(e =>
    {
        var o = new JsonObject();
        if (e.Filter != null) o["filter"] = e.Filter;
        o["value"] = e.Value.ToJson();
        return (JsonNode)o;
    }).ToArray());
}
