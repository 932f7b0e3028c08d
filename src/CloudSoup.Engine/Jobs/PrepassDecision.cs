using System.Text.Json;

namespace CloudSoup.Engine.Jobs;

/// <summary>
/// The first stage of a split job whose method decides over the whole model before merging (IWholeModelPrepass:
/// ties with topk_scope: model, agreement with granularity: model; docs/fanout.md): the decision, computed once by the
/// worker that splits the job and stored beside the job (jobs/&lt;id&gt;/&lt;attempt&gt;/stage1.json), so every part
/// merges with the same thresholds or coefficients the whole job would, without reading the whole model again.
/// </summary>
/// <param name="Method">The method that decided (checked when a part applies it).</param>
/// <param name="Decision">The method's own JSON (IWholeModelPrepass.SaveDecision).</param>
/// <param name="Note">The report's line about the decision.</param>
public sealed record PrepassDecision(string Method, string Decision, string Note, double Seconds)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public byte[] ToJsonBytes() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    public static PrepassDecision FromJson(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize<PrepassDecision>(json, Json) ?? throw new InvalidDataException("the first stage's decision is JSON null");
}
