// The JSON side files a merge rewrites (config.json, tokenizer_config.json): parsed with a depth bound, refused with
// the file and line when they are not a JSON object, written back in their own key order, indented like
// transformers writes them, non-ASCII kept readable.
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudSoup.Control.Errors;

namespace CloudSoup.Engine.ModelFiles;

public static class ModelJson
{
    private static readonly JsonSerializerOptions Write = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static JsonObject ParseObject(byte[] bytes, string path)
    {
        try
        {
            return JsonNode.Parse(bytes, documentOptions: new JsonDocumentOptions { MaxDepth = 64 }) as JsonObject
                ?? throw CloudSoupException.Checkpoint(path, "is not a JSON object");
        }
        catch (JsonException e)
        {
            throw CloudSoupException.Checkpoint(path, $"is not valid JSON (line {(e.LineNumber ?? 0) + 1})");
        }
    }

    public static byte[] ToBytes(JsonObject o) => Encoding.UTF8.GetBytes(o.ToJsonString(Write) + "\n");
}
