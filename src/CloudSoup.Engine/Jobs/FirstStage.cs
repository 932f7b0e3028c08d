using System.Text.Json;
using CloudSoup.Engine.Jobs.Steps;
using CloudSoup.Engine.Merging;

namespace CloudSoup.Engine.Jobs;

/// <summary>
/// The first stage of a split job (docs/fanout.md): what needs the whole model before any tensor is merged, computed
/// once by the worker that splits the job and stored beside it (jobs/&lt;id&gt;/&lt;attempt&gt;/stage1.json), so every
/// part merges as the whole job would without reading the whole model again: permutation alignment's permutations,
/// weight scope alignment's measured scopes and targets, and a whole-model method's decision (each taken on the inputs
/// as the passes before it left them, as in a whole job).
/// </summary>
public sealed record FirstStage
{
    /// <summary>
    /// The most stage1.json may hold. It is our own file, but it is checked before it is parsed; what it holds is
    /// small (a few numbers per tensor and model, one index per hidden unit and model), far below this.
    /// </summary>
    public const int MaxJsonBytes = 64 << 20;

    public AlignmentDecision? Alignment { get; init; }
    public ScopeDecision? Scopes { get; init; }
    public PrepassDecision? Prepass { get; init; }
    /// <summary>How long each of its passes took (aligning, scope_alignment, prepass), for the report.</summary>
    public IReadOnlyDictionary<string, double> PhaseSeconds { get; init; } = new Dictionary<string, double>();

    public bool IsEmpty => Alignment is null && Scopes is null && Prepass is null;

    public byte[] ToJsonBytes() => JsonSerializer.SerializeToUtf8Bytes(this, PrepassJson.Options);

    /// <summary>Reads stage1.json back; what it holds is checked against the job where a part applies it (e.g. AlignmentStep.Apply).</summary>
    public static FirstStage FromJson(ReadOnlySpan<byte> json)
    {
        if (json.Length > MaxJsonBytes) throw new InvalidDataException($"the first stage is {json.Length} bytes, more than the {MaxJsonBytes} it may hold");
        try
        {
            return JsonSerializer.Deserialize<FirstStage>(json, PrepassJson.Options) ?? throw new InvalidDataException("the first stage is JSON null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"the first stage is not valid JSON of its shape (at {e.Path ?? "$"})");
        }
    }
}
