using System.Text.Json;
using CloudSoup.Engine.Merging;

namespace CloudSoup.Engine.Jobs;

/// <summary>
/// What one part of a split job did, kept until the last part writes the report (the worker stores it as JSON beside
/// the job, jobs/&lt;id&gt;/&lt;attempt&gt;/part-NNN.json): the files it committed, its byte counts, its method notes and
/// non-finite tensors (in merge order), who ran it and for how long.
/// </summary>
public sealed record PartOutcome
{
    public required int Part { get; init; }
    public required IReadOnlyList<string> Files { get; init; }
    public long BytesRead { get; init; }
    public long BytesWritten { get; init; }
    public int TensorsMerged { get; init; }
    public int TensorsCopied { get; init; }
    public IReadOnlyDictionary<string, string> MethodNotes { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<NonFiniteTensor> NonFinite { get; init; } = [];
    /// <summary>Seconds per phase inside the part (planning, merging, committing).</summary>
    public IReadOnlyDictionary<string, double> PhaseSeconds { get; init; } = new Dictionary<string, double>();
    public string? Worker { get; set; }
    public double Seconds { get; set; }
    public int Attempts { get; set; }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public byte[] ToJsonBytes() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    public static PartOutcome FromJson(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize<PartOutcome>(json, Json) ?? throw new InvalidDataException("a part outcome is JSON null");
}
