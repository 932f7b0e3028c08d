using System.Text.Json;
using System.Text.Json.Serialization;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Soups;

namespace CloudSoup.Engine.Jobs;

/// <summary>
/// What one part of a split job did, kept until the last part writes the report (the worker stores it as JSON beside
/// the job, jobs/&lt;id&gt;/&lt;attempt&gt;/part-NNN.json): the files it committed, its byte counts, its method notes and
/// non-finite tensors (in merge order), a soup's ingredient scores, who ran it and for how long.
/// </summary>
public sealed record PartOutcome
{
    /// <summary>
    /// The most a part's outcome may hold. It is our own file, but it is checked before it is parsed; it holds a file
    /// name per shard, a note per method and a score per ingredient, far below this.
    /// </summary>
    public const int MaxJsonBytes = 16 << 20;

    public required int Part { get; init; }
    public required IReadOnlyList<string> Files { get; init; }
    public long BytesRead { get; init; }
    public long BytesWritten { get; init; }
    public int TensorsMerged { get; init; }
    public int TensorsCopied { get; init; }
    public IReadOnlyDictionary<string, string> MethodNotes { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<NonFiniteTensor> NonFinite { get; init; } = [];
    /// <summary>A soup's part: every ingredient it evaluated alone on the held-out data, in recipe order (empty for a part that merges shards).</summary>
    public IReadOnlyList<IngredientScore> Evaluated { get; init; } = [];
    /// <summary>A soup's part: the evaluation section's rows of the same ingredients (held-out and test, as read), in the same order.</summary>
    public IReadOnlyList<ModelEvaluation> IngredientEvaluations { get; init; } = [];
    /// <summary>What the part did, in words (JobPartRecord.Describe).</summary>
    public string? Work { get; init; }
    /// <summary>Seconds per phase inside the part (planning, merging, committing; a soup's part: soup_search).</summary>
    public IReadOnlyDictionary<string, double> PhaseSeconds { get; init; } = new Dictionary<string, double>();
    public string? Worker { get; set; }
    public double Seconds { get; set; }
    public int Attempts { get; set; }

    // A diverged ingredient's held-out loss may be NaN or infinite: JSON has no such numbers, so they go as names.
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public byte[] ToJsonBytes() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    public static PartOutcome FromJson(ReadOnlySpan<byte> json)
    {
        if (json.Length > MaxJsonBytes) throw new InvalidDataException($"a part's outcome is {json.Length} bytes, more than the {MaxJsonBytes} it may hold");
        try
        {
            return JsonSerializer.Deserialize<PartOutcome>(json, Json) ?? throw new InvalidDataException("a part outcome is JSON null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"a part's outcome is not valid JSON of its shape (at {e.Path ?? "$"})");
        }
    }
}
