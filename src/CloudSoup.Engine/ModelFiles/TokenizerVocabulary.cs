// A tokenizer's vocabulary, reduced to what decides whether two models' embedding rows mean the same tokens: the
// (id, token) pairs. mergekit re-maps embedding rows to the output tokenizer's vocabulary whenever a tokenizer source
// is given (mergekit/tokenizer/build.py builds a permutation per model); CloudSoup does not re-map, so it requires the
// vocabularies to be equal instead, and this is how it compares them without running a tokenizer:
//   - tokenizer.json (the fast tokenizer, https://huggingface.co/docs/tokenizers): model.vocab (an object token → id for
//     BPE/WordPiece/WordLevel, a list of [piece, score] for Unigram) plus added_tokens;
//   - else vocab.json (token → id) or vocab.txt (one token per line), plus added_tokens.json;
//   - else tokenizer.model (a SentencePiece model, compared byte for byte) plus added_tokens.json.
// The first two give the same pairs for the same vocabulary, so they compare with each other.
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Storage;
using CloudSoup.Engine.Storage;

namespace CloudSoup.Engine.ModelFiles;

/// <param name="Kind">What the fingerprint covers: token ids, or the SentencePiece model's bytes; only equal kinds compare.</param>
/// <param name="From">The file it was read from, for messages.</param>
/// <param name="Count">How many tokens (for the SentencePiece kind: added tokens only).</param>
public sealed record TokenizerVocabulary(string Kind, string From, int Count, string Fingerprint)
{
    public const string TokenIds = "token ids";
    public const string SentencePieceModel = "SentencePiece model";

    /// <summary>The vocabulary of the tokenizer in <paramref name="folder"/>, or null when the folder has no tokenizer.</summary>
    public static async Task<TokenizerVocabulary?> ReadAsync(ICheckpointStore store, string folder, CancellationToken ct)
    {
        var added = await ModelFolder.TryReadAsync(store, folder, "added_tokens.json", ct).ConfigureAwait(false);
        if (await ModelFolder.TryReadAsync(store, folder, ModelFolderFiles.TokenizerJson, ct).ConfigureAwait(false) is { } json)
            return FromPairs(FromTokenizerJson(json, ModelFolder.PathOf(folder, ModelFolderFiles.TokenizerJson)), ModelFolderFiles.TokenizerJson);
        if (await ModelFolder.TryReadAsync(store, folder, "vocab.json", ct).ConfigureAwait(false) is { } vocabJson)
            return FromPairs([.. FromTokenMap(vocabJson, ModelFolder.PathOf(folder, "vocab.json")), .. AddedTokens(added, folder)], "vocab.json");
        if (await ModelFolder.TryReadAsync(store, folder, "vocab.txt", ct).ConfigureAwait(false) is { } vocabTxt)
            return FromPairs([.. FromLines(vocabTxt), .. AddedTokens(added, folder)], "vocab.txt");
        if (await ModelFolder.TryReadAsync(store, folder, ModelFolderFiles.SentencePiece, ct).ConfigureAwait(false) is { } sp)
        {
            var pairs = AddedTokens(added, folder).ToList();
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            sha.AppendData(sp);
            sha.AppendData(Canonical(pairs));
            return new TokenizerVocabulary(SentencePieceModel, ModelFolderFiles.SentencePiece, pairs.Count, Convert.ToHexStringLower(sha.GetHashAndReset()));
        }
        return null;
    }

    private static TokenizerVocabulary FromPairs(IEnumerable<(long Id, string Token)> pairs, string from)
    {
        var distinct = pairs.Distinct().ToList();
        return new TokenizerVocabulary(TokenIds, from, distinct.Count, Convert.ToHexStringLower(SHA256.HashData(Canonical(distinct))));
    }

    /// <summary>The pairs sorted by id then token, one "id\0token\n" each, as UTF-8.</summary>
    private static byte[] Canonical(IEnumerable<(long Id, string Token)> pairs)
    {
        var sb = new StringBuilder();
        foreach (var (id, token) in pairs.Distinct().OrderBy(p => p.Id).ThenBy(p => p.Token, StringComparer.Ordinal))
            sb.Append(id).Append('\0').Append(token).Append('\n');
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    private static List<(long, string)> FromTokenizerJson(byte[] bytes, string path)
    {
        var pairs = new List<(long, string)>();
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object
                || !model.TryGetProperty("vocab", out var vocab))
                throw CloudSoupException.Checkpoint(path, "has no model.vocab");
            if (vocab.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in vocab.EnumerateObject())
                    pairs.Add((p.Value.TryGetInt64(out long id) ? id : throw CloudSoupException.Checkpoint(path, "has a model.vocab id that is not an integer"), p.Name));
            }
            else if (vocab.ValueKind == JsonValueKind.Array)
            {
                long i = 0;
                foreach (var e in vocab.EnumerateArray())
                {
                    // Unigram: [piece, score]; the id is the position.
                    if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() < 1 || e[0].ValueKind != JsonValueKind.String)
                        throw CloudSoupException.Checkpoint(path, "has a model.vocab entry that is not [piece, score]");
                    pairs.Add((i++, e[0].GetString()!));
                }
            }
            else throw CloudSoupException.Checkpoint(path, "has a model.vocab that is neither an object nor a list");
            if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
                foreach (var t in added.EnumerateArray())
                    if (t.ValueKind == JsonValueKind.Object && t.TryGetProperty("id", out var id) && id.TryGetInt64(out long n)
                        && t.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String)
                        pairs.Add((n, c.GetString()!));
        }
        catch (JsonException e)
        {
            throw CloudSoupException.Checkpoint(path, $"is not valid JSON (line {(e.LineNumber ?? 0) + 1})");
        }
        return pairs;
    }

    /// <summary>A JSON object token → id (vocab.json, added_tokens.json).</summary>
    private static List<(long, string)> FromTokenMap(byte[] bytes, string path)
    {
        var map = ModelJson.ParseObject(bytes, path);
        var pairs = new List<(long, string)>();
        foreach (var (token, value) in map)
            pairs.Add((value is System.Text.Json.Nodes.JsonValue v && v.TryGetValue(out long id) ? id : throw CloudSoupException.Checkpoint(path, "maps a token to something that is not an integer id"), token));
        return pairs;
    }

    private static IEnumerable<(long, string)> FromLines(byte[] bytes)
    {
        var lines = Encoding.UTF8.GetString(bytes).Split('\n');
        int count = lines.Length > 0 && lines[^1].Length == 0 ? lines.Length - 1 : lines.Length;   // a final newline ends the last line
        for (int i = 0; i < count; i++) yield return (i, lines[i].TrimEnd('\r'));
    }

    private static IEnumerable<(long, string)> AddedTokens(byte[]? bytes, string folder) =>
        bytes is null ? [] : FromTokenMap(bytes, ModelFolder.PathOf(folder, "added_tokens.json"));
}
