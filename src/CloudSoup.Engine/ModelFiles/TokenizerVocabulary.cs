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

/// <summary>
/// One tokenizer's vocabulary. Files identical byte for byte are equal without parsing (fine-tunes usually carry their
/// base's files unchanged); otherwise the (id, token) pairs are parsed and hashed, once, when first compared.
/// </summary>
public sealed class TokenizerVocabulary
{
    public const string TokenIds = "token ids";
    public const string SentencePieceModel = "SentencePiece model";

    private readonly Lazy<(int Count, string Fingerprint)> _parsed;

    private TokenizerVocabulary(string kind, string from, string fileHash, Func<(int, string)> parse)
    {
        Kind = kind;
        From = from;
        FileHash = fileHash;
        _parsed = new Lazy<(int, string)>(parse);
    }

    /// <summary>What is compared: token ids, or the SentencePiece model's bytes; only equal kinds compare.</summary>
    public string Kind { get; }
    /// <summary>The file the vocabulary was read from, for messages.</summary>
    public string From { get; }
    /// <summary>SHA-256 of the bytes read (the vocabulary file and added_tokens.json).</summary>
    public string FileHash { get; }
    /// <summary>How many tokens (for a SentencePiece model: its added tokens only).</summary>
    public int Count => _parsed.Value.Count;
    public string Fingerprint => _parsed.Value.Fingerprint;

    /// <summary>True when both hold the same vocabulary: the same file bytes, or the same (id, token) pairs.</summary>
    public bool SameAs(TokenizerVocabulary other) =>
        Kind == other.Kind && ((From == other.From && FileHash == other.FileHash) || Fingerprint == other.Fingerprint);

    /// <summary>The vocabulary of the tokenizer in <paramref name="folder"/>, or null when the folder has no tokenizer.</summary>
    public static async Task<TokenizerVocabulary?> ReadAsync(ICheckpointStore store, string folder, CancellationToken ct)
    {
        var added = await ModelFolder.TryReadAsync(store, folder, "added_tokens.json", ct).ConfigureAwait(false);
        if (await ModelFolder.TryReadAsync(store, folder, ModelFolderFiles.TokenizerJson, ct).ConfigureAwait(false) is { } json)
            return TokenIdsFrom(ModelFolderFiles.TokenizerJson, json, null, () => FromTokenizerJson(json, ModelFolder.PathOf(folder, ModelFolderFiles.TokenizerJson)));
        if (await ModelFolder.TryReadAsync(store, folder, "vocab.json", ct).ConfigureAwait(false) is { } vocabJson)
            return TokenIdsFrom("vocab.json", vocabJson, added, () => [.. FromTokenMap(vocabJson, ModelFolder.PathOf(folder, "vocab.json")), .. AddedTokens(added, folder)]);
        if (await ModelFolder.TryReadAsync(store, folder, "vocab.txt", ct).ConfigureAwait(false) is { } vocabTxt)
            return TokenIdsFrom("vocab.txt", vocabTxt, added, () => [.. FromLines(vocabTxt), .. AddedTokens(added, folder)]);
        if (await ModelFolder.TryReadAsync(store, folder, ModelFolderFiles.SentencePiece, ct).ConfigureAwait(false) is { } sp)
        {
            var pairs = AddedTokens(added, folder).ToList();
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            sha.AppendData(sp);
            AppendCanonical(sha, pairs);
            string hash = Convert.ToHexStringLower(sha.GetHashAndReset());
            return new TokenizerVocabulary(SentencePieceModel, ModelFolderFiles.SentencePiece, hash, () => (pairs.Count, hash));
        }
        return null;
    }

    private static TokenizerVocabulary TokenIdsFrom(string from, byte[] file, byte[]? added, Func<List<(long, string)>> parse)
    {
        using var raw = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        raw.AppendData(file);
        if (added != null) raw.AppendData(added);
        return new TokenizerVocabulary(TokenIds, from, Convert.ToHexStringLower(raw.GetHashAndReset()), () =>
        {
            var distinct = parse().Distinct().ToList();
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            AppendCanonical(sha, distinct);
            return (distinct.Count, Convert.ToHexStringLower(sha.GetHashAndReset()));
        });
    }

    /// <summary>Hashes the pairs sorted by id then token, one "id\0token\n" each in UTF-8, without building the whole text.</summary>
    private static void AppendCanonical(IncrementalHash sha, IEnumerable<(long Id, string Token)> pairs)
    {
        var buffer = new byte[256];
        foreach (var (id, token) in pairs.Distinct().OrderBy(p => p.Id).ThenBy(p => p.Token, StringComparer.Ordinal))
        {
            int max = 21 + Encoding.UTF8.GetMaxByteCount(token.Length) + 2;
            if (buffer.Length < max) buffer = new byte[max];
            id.TryFormat(buffer, out int n, default, System.Globalization.CultureInfo.InvariantCulture);
            buffer[n++] = 0;
            n += Encoding.UTF8.GetBytes(token, buffer.AsSpan(n));
            buffer[n++] = (byte)'\n';
            sha.AppendData(buffer, 0, n);
        }
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
