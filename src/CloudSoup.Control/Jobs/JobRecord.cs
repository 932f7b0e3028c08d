using System.Runtime.Serialization;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using CloudSoup.Control.Errors;

namespace CloudSoup.Control.Jobs;

/// <summary>The states of a job, as the API reports them.</summary>
public static class JobStatus
{
    public const string Queued = "queued";
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";

    public static bool IsFinished(string status) => status is Succeeded or Failed;
}

/// <summary>
/// One merge job, one row of the jobs table (PartitionKey "job", RowKey = job id). Table properties are scalars
/// and a string property holds at most 64 KiB (docs/contracts.md, "Job records"), so nothing here grows with the
/// recipe: the recipe and its input versions are blobs under jobs/&lt;id&gt;/ named by <see cref="RecipePath"/> and
/// <see cref="InputsPath"/>, errors are cut to <see cref="ErrorText.MaxMessageChars"/>, and the output paths (a JSON
/// string) are bounded by RecipeLimits.MaxOutputShards.
/// </summary>
public sealed class JobRecord : ITableEntity
{
    public const string Partition = "job";

    public string PartitionKey { get; set; } = Partition;
    public string RowKey { get; set; } = "";
    public DateTimeOffset? Timestamp { get; set; }
    public ETag ETag { get; set; }

    public string Status { get; set; } = JobStatus.Queued;
    public string? Phase { get; set; }
    public double Progress { get; set; }
    public DateTimeOffset Created { get; set; }
    public DateTimeOffset? Started { get; set; }
    public DateTimeOffset? Finished { get; set; }
    /// <summary>Why the job failed, for people (set only when Status is failed); one bounded line.</summary>
    public string? Error { get => _error; set => _error = value is null ? null : ErrorText.OneLine(value); }
    /// <summary>The last error of an attempt that will be retried; kept so a job sent to the poison queue says why.</summary>
    public string? LastError { get => _lastError; set => _lastError = value is null ? null : ErrorText.OneLine(value); }
    private string? _error, _lastError;
    public int Attempts { get; set; }
    public string? ClaimedBy { get; set; }
    public DateTimeOffset? ClaimedUntil { get; set; }
    /// <summary>
    /// The attempt that holds (or last held) the claim, e.g. "attempt-2-3f9a1c0b": it writes its outputs under
    /// merged/&lt;id&gt;/&lt;attempt&gt;/, a folder no reader looks at unless <see cref="CommittedAttempt"/> names it.
    /// </summary>
    public string? Attempt { get; set; }
    /// <summary>
    /// The attempt whose outputs are the job's result. Set only by the conditional update that marks the job
    /// succeeded, after every output of that attempt was committed: the one commit point readers go through.
    /// </summary>
    public string? CommittedAttempt { get; set; }
    /// <summary>When the job's current queue message was sent (submit, resubmit of a failed job, or the reconciler).</summary>
    public DateTimeOffset? Enqueued { get; set; }
    /// <summary>How often the reconciler sent the job a new message because its message was lost.</summary>
    public int Requeues { get; set; }
    /// <summary>Blob path of the submitted recipe (jobs/&lt;id&gt;/recipe.yaml).</summary>
    public string RecipePath { get; set; } = "";
    public string? Name { get; set; }
    public string? Method { get; set; }
    /// <summary>Who submitted it: "api", "cli", "blob:recipes/x.yaml", "blob:checkpoints/exp/soup.yaml".</summary>
    public string? Source { get; set; }
    /// <summary>Blob path of the input versions the job id was computed from (jobs/&lt;id&gt;/inputs.json: "container/path" → ETag or "missing").</summary>
    public string? InputsPath { get; set; }
    public string? OutputsJson { get; set; }
    /// <summary>
    /// How many parts the current attempt is split into (docs/fanout.md); 0 while the job runs whole. Each part is a
    /// row of its own (<see cref="JobPartRecord"/>) and a queue message of its own.
    /// </summary>
    public int Parts { get; set; }
    /// <summary>
    /// Which parts of the current attempt finished, one character per part ('1' done, '0' not yet). Changed only by
    /// ETag-conditional updates, so of all parts exactly one sees the mask become complete (JobStore.MarkPartDoneAsync).
    /// </summary>
    public string? PartsDone { get; set; }
    /// <summary>Why the job runs in fewer parts than its recipe asked for, if it does (PartLayout.Note), kept for the report.</summary>
    public string? PartsNote { get; set; }

    [IgnoreDataMember]
    public string Id => RowKey;

    /// <summary>True when the current attempt is split into parts and every part has finished.</summary>
    [IgnoreDataMember]
    public bool AllPartsDone => Parts > 0 && PartsDone is { } d && d.Length == Parts && d.All(c => c == '1');

    /// <summary>
    /// True while the record lets the current split attempt go on: running, split, its mask whole, and held by its parts
    /// (<see cref="JobStore.SplitClaim"/>) or, once every part is done, by a finisher. Such an attempt's lost part messages
    /// are sent again one by one (PartResender) and its folder is kept (AttemptSweeper); any other running job whose
    /// claim lapsed starts a new attempt.
    /// </summary>
    [IgnoreDataMember]
    public bool SplitCanContinue => Status == JobStatus.Running && Attempt is not null && Parts > 0 && PartsDone?.Length == Parts
                                    && (ClaimedBy == JobStore.SplitClaim || AllPartsDone);

    /// <summary>A shallow copy to change without touching the record it came from (every property is a value or a string).</summary>
    public JobRecord Copy() => (JobRecord)MemberwiseClone();

    [IgnoreDataMember]
    public IReadOnlyList<string> Outputs
    {
        get => OutputsJson is null ? [] : JsonSerializer.Deserialize<List<string>>(OutputsJson) ?? [];
        set => OutputsJson = JsonSerializer.Serialize(value);
    }
}
