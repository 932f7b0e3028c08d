using System.Text.Json;
using System.Text.Json.Serialization;

namespace CloudSoup.Engine.Merging;

/// <summary>
/// How whole-model decisions are written for the parts of a split job (IWholeModelPrepass.SaveDecision): doubles as
/// their shortest round-trip text, and ±infinity (a threshold that keeps nothing) as named literals.
/// </summary>
public static class PrepassJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
