// The queue message contract (docs/contracts.md): {"schema":1,"jobId":"…","recipe":"jobs/<id>/recipe.yaml"}, and
// for one part of a split job also "part" (0-based) and "attempt" (the job attempt the part belongs to; docs/fanout.md).
// A reference to the job, never its data (the queue limit is 64 KiB after Base64). The queue client
// Base64-encodes it on the wire (see StorageClients).
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CloudSoup.Control.Jobs;

public sealed record JobMessage(
    [property: JsonPropertyName("schema")] int Schema,
    [property: JsonPropertyName("jobId")] string JobId,
    [property: JsonPropertyName("recipe")] string Recipe)
{
    public const int CurrentSchema = 1;

    /// <summary>The part of a split job this message runs; null: the whole job (or its planning, when it is split).</summary>
    [JsonPropertyName("part")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Part { get; init; }

    /// <summary>With <see cref="Part"/>: the attempt (JobAttempts) whose folder the part writes into; a part of an older attempt is dropped.</summary>
    [JsonPropertyName("attempt")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Attempt { get; init; }

    public static JobMessage For(string jobId, string recipePath) => new(CurrentSchema, jobId, recipePath);

    /// <summary>The message for part <paramref name="part"/> of attempt <paramref name="attempt"/> of a split job.</summary>
    public static JobMessage ForPart(string jobId, string recipePath, int part, string attempt) =>
        new(CurrentSchema, jobId, recipePath) { Part = part, Attempt = attempt };

    public string ToJson() => JsonSerializer.Serialize(this);

    /// <summary>Parses a message body; returns null and the reason when it is not a CloudSoup job message.</summary>
    public static JobMessage? TryParse(string text, out string? reason)
    {
        reason = null;
        try
        {
            var m = JsonSerializer.Deserialize<JobMessage>(text);
            if (m is null) reason = "the message is JSON null";
            else if (m.Schema != CurrentSchema) reason = $"unsupported message schema {m.Schema} (this worker reads schema {CurrentSchema})";
            else if (string.IsNullOrWhiteSpace(m.JobId) || !JobIds.IsValid(m.JobId)) reason = "the message has no valid jobId";
            else if (string.IsNullOrWhiteSpace(m.Recipe)) reason = "the message has no recipe path";
            else if (m.Part is int p && (p < 0 || p >= Recipes.RecipeLimits.MaxParts)) reason = $"the message's part {p} is outside 0..{Recipes.RecipeLimits.MaxParts - 1}";
            else if ((m.Part is null) != (m.Attempt is null) || (m.Attempt != null && !JobAttempts.IsAttemptId(m.Attempt))) reason = "the message's part needs a valid attempt (and an attempt a part)";
            else return m;
        }
        catch (JsonException e)
        {
            reason = $"the message is not a job message ({e.Message.Split('.')[0]})";
        }
        return null;
    }
}
