using System.Text.Json;
using CloudSoup.Engine.Jobs.Steps;
using CloudSoup.Engine.Merging;

namespace CloudSoup.Engine.Jobs;

/// <summary>
/// The first stage of a split job (docs/fanout.md): what needs the whole model before any tensor is merged, computed
/// once by the worker that splits the job and stored beside it (jobs/&lt;id&gt;/&lt;attempt&gt;/stage1.json), so every
/// part merges as the whole job would without reading the whole model again: weight scope alignment's measured scopes
/// and targets, and a whole-model method's decision (taken on the re-scoped inputs when both apply, as in a whole job).
/// </summary>
public sealed record FirstStage
{
    public ScopeDecision? Scopes { get; init; }
    public PrepassDecision? Prepass { get; init; }
    /// <summary>How long each of its passes took (scope_alignment, prepass), for the report.</summary>
    public IReadOnlyDictionary<string, double> PhaseSeconds { get; init; } = new Dictionary<string, double>();

    public bool IsEmpty => Scopes is null && Prepass is null;

    public byte[] ToJsonBytes() => JsonSerializer.SerializeToUtf8Bytes(this, PrepassJson.Options);

    public static FirstStage FromJson(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize<FirstStage>(json, PrepassJson.Options) ?? throw new InvalidDataException("the first stage is JSON null");
}
