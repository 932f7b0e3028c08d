// What the worker puts on merge-jobs-poison: the original message text plus why it was given up on, so the
// poison queue can be read without the worker's logs. Base64 on the wire like every queue message here.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CloudSoup.Control.Jobs;

public sealed record PoisonMessage(
    [property: JsonPropertyName("schema")] int Schema,
    [property: JsonPropertyName("reason")] string Reason,
    [property: JsonPropertyName("jobId")] string? JobId,
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("messageId")] string MessageId,
    [property: JsonPropertyName("dequeueCount")] long DequeueCount,
    [property: JsonPropertyName("at")] DateTimeOffset At)
{
    public string ToJson() => JsonSerializer.Serialize(this);

    public static PoisonMessage? TryParse(string text)
    {
        try { return JsonSerializer.Deserialize<PoisonMessage>(text); }
        catch (JsonException) { return null; }
    }
}
