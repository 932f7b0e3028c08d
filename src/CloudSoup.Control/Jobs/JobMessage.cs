// The queue message contract (docs/contracts.md): {"schema":1,"jobId":"…","recipe":"jobs/<id>/recipe.yaml"}.
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

    public static JobMessage For(string jobId, string recipePath) => new(CurrentSchema, jobId, recipePath);

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
            else return m;
        }
        catch (JsonException e)
        {
            reason = $"the message is not a job message ({e.Message.Split('.')[0]})";
        }
        return null;
    }
}
