using System.Runtime.Serialization;
using Azure;
using Azure.Data.Tables;
using CloudSoup.Control.Errors;

namespace CloudSoup.Control.Jobs;

/// <summary>
/// One part of a split job (docs/fanout.md): a row of the jobs table in the job's own partition ("part-&lt;job id&gt;",
/// RowKey the part number, three digits), so the part's claim, progress and retries are written without touching the
/// job's row, and a job's parts are read with one partition query. The job record's <see cref="JobRecord.PartsDone"/>
/// mask, not these rows, decides which part finishes the job.
/// </summary>
public sealed class JobPartRecord : ITableEntity
{
    public const string PartitionPrefix = "part-";

    public string PartitionKey { get; set; } = "";
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    public string JobId { get; set; } = "";
    public int Part { get; set; }
    /// <summary>The job attempt this part belongs to; a row of an older attempt is overwritten when a new attempt splits the job.</summary>
    public string Attempt { get; set; } = "";
    public string Status { get; set; } = JobStatus.Queued;
    public string? Phase { get; set; }
    public double Progress { get; set; }
    public int FirstShard { get; set; }
    public int ShardCount { get; set; }
    /// <summary>A soup's part (docs/fanout.md): the first ingredient it evaluates (recipe order, from 0).</summary>
    public int FirstIngredient { get; set; }
    /// <summary>A soup's part: how many ingredients it evaluates alone on the held-out data; 0 for a part that merges shards.</summary>
    public int IngredientCount { get; set; }
    /// <summary>Bytes of input the part reads (the planner balances parts by this).</summary>
    public long InputBytes { get; set; }
    public int Attempts { get; set; }
    /// <summary>How many times the reconciler sent this part's message again because the message was lost (PartResender).</summary>
    public int Resends { get; set; }
    public string? ClaimedBy { get; set; }
    public DateTimeOffset? ClaimedUntil { get; set; }
    public DateTimeOffset? Started { get; set; }
    public DateTimeOffset? Finished { get; set; }
    /// <summary>The worker that finished the part.</summary>
    public string? Worker { get; set; }
    public long BytesRead { get; set; }
    public long BytesWritten { get; set; }
    public double Seconds { get; set; }
    public string? LastError { get => _lastError; set => _lastError = value is null ? null : ErrorText.OneLine(value); }
    private string? _lastError;

    public static string PartitionFor(string jobId) => PartitionPrefix + jobId;

    public static string RowFor(int part) => part.ToString("D3", System.Globalization.CultureInfo.InvariantCulture);

    [IgnoreDataMember]
    public bool IsDone => Status == JobStatus.Succeeded;

    public static JobPartRecord New(string jobId, string attempt, int part, int firstShard, int shardCount, long inputBytes, int firstIngredient = 0, int ingredientCount = 0) => new()
    {
        PartitionKey = PartitionFor(jobId), RowKey = RowFor(part), JobId = jobId, Part = part, Attempt = attempt,
        FirstShard = firstShard, ShardCount = shardCount, InputBytes = inputBytes, FirstIngredient = firstIngredient, IngredientCount = ingredientCount,
        Phase = JobPhase.Queued,
    };

    /// <summary>What the part does, in words for the job view and the report (numbered from 1, as the parts are named).</summary>
    [IgnoreDataMember]
    public string Work => Describe(FirstShard, ShardCount, FirstIngredient, IngredientCount);

    /// <summary>"merges shards 3-4" or "evaluates ingredients 1-3 alone on the held-out data".</summary>
    public static string Describe(int firstShard, int shardCount, int firstIngredient, int ingredientCount) => ingredientCount > 0
        ? $"evaluates ingredient{Range(firstIngredient, ingredientCount)} alone on the held-out data"
        : $"merges shard{Range(firstShard, shardCount)}";

    private static string Range(int first, int count) => count == 1 ? $" {first + 1}" : $"s {first + 1}-{first + count}";
}
