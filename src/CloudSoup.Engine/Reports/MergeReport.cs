using System.Text.Json;
using System.Text.Json.Serialization;
using CloudSoup.Engine.Evaluation;

namespace CloudSoup.Engine.Reports;

public sealed record InputFile(string File, string Version);

public sealed record InputModel(string Model, IReadOnlyList<InputFile> Files, long Bytes);

/// <summary>report.json: everything a machine (or a person with jq) wants to know about one merge.</summary>
public sealed record MergeReport
{
    public string? JobId { get; init; }
    public string? Name { get; init; }
    public required string Method { get; init; }
    public string? BaseModel { get; init; }
    public required IReadOnlyList<InputModel> Inputs { get; init; }
    public required IReadOnlyList<string> Outputs { get; init; }
    public int TensorsMerged { get; init; }
    public int TensorsCopied { get; init; }
    public long BytesRead { get; init; }
    public long BytesWritten { get; init; }
    public required IReadOnlyDictionary<string, double> PhaseSeconds { get; init; }
    public string Device { get; init; } = "cpu";
    public EvaluationReport? Evaluation { get; init; }
    public Soups.SoupReport? Soup { get; init; }
    /// <summary>Permutation alignment before merging (objective per sweep, interpolation paths); see AlignmentReport.</summary>
    public AlignmentReport? Alignment { get; init; }
    /// <summary>Diagonal Fishers computed inside the job (the recipe's fisher section), written next to the model.</summary>
    public IReadOnlyList<Jobs.Steps.ComputedFisher>? Fishers { get; init; }
    /// <summary>BatchNorm running statistics re-estimated from the merged weights (evaluation.reset_bn).</summary>
    public BatchNormResetReport? BatchNormReset { get; init; }
    /// <summary>Weight scope alignment: each layer's (mean, std) per model before and after, and the fused target.</summary>
    public Jobs.Steps.ScopeReport? ScopeAlignment { get; init; }
    public IReadOnlyList<string> Warnings { get; init; } = [];
    /// <summary>Tensors with NaN or infinite values: how many, in which input model, and in the merged output (recipe key nonfinite).</summary>
    public IReadOnlyList<Merging.NonFiniteTensor> NonFinite { get; init; } = [];
    /// <summary>config.json, the tokenizer files and the model card written next to the weights, their sources, and what was not written.</summary>
    public ModelFiles.ModelFilesReport? ModelFiles { get; init; }
    /// <summary>Per-tensor decisions a merge method reported (e.g. agreement's accepted models).</summary>
    public IReadOnlyDictionary<string, string> MethodNotes { get; init; } = new Dictionary<string, string>();
    public DateTimeOffset Finished { get; init; }
    /// <summary>How the job was split over workers (recipes with a parallelism section; docs/fanout.md).</summary>
    public ParallelismReport? Parallelism { get; init; }
    /// <summary>The resolved recipe, as recipe.resolved.json holds it (RecipeJson); null in reports written before it was added.</summary>
    public System.Text.Json.Nodes.JsonObject? Recipe { get; init; }

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>
    /// report.json: <see cref="Json"/>'s output, written by generated code (MergeReportJson) instead of reflection,
    /// which cost a small merge about 60 ms of start-up (bench/README.md, "Start-up").
    /// </summary>
    public byte[] ToJsonBytes() => JsonSerializer.SerializeToUtf8Bytes(this, MergeReportJson.Default.MergeReport);
}

/// <summary>The serializer System.Text.Json's source generator writes for report.json, with <see cref="MergeReport.Json"/>'s options.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(MergeReport))]
internal sealed partial class MergeReportJson : JsonSerializerContext;

/// <summary>What evaluation.reset_bn did: how the statistics were estimated, which tensors, on how many examples.</summary>
public sealed record BatchNormResetReport(string Method, IReadOnlyList<string> Tensors, int Examples, double Seconds);
