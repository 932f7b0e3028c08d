// Reads a recipe's bytes from a request body or a file without ever holding more than RecipeLimits.MaxBytes + 1 of
// them, so an oversized recipe is refused before it is buffered, decoded or parsed (HTTP, `cloudsoup merge`,
// `cloudsoup submit`; blob intake and the worker read the same bound with ranged reads).
using System.Text;

namespace CloudSoup.Control.Recipes;

public static class RecipeText
{
    /// <summary>The recipe in <paramref name="stream"/> as text; a CloudSoupException (field "recipe") when it is over the limit.</summary>
    public static async Task<string> ReadAsync(Stream stream, CancellationToken ct)
    {
        var buffer = new byte[RecipeLimits.MaxBytes + 1];
        int total = 0, n;
        while (total < buffer.Length && (n = await stream.ReadAsync(buffer.AsMemory(total), ct).ConfigureAwait(false)) > 0) total += n;
        if (total > RecipeLimits.MaxBytes) throw RecipeParser.TooLarge();
        return Decode(buffer.AsSpan(0, total));
    }

    /// <summary>A recipe file's text, refused by its size before it is read when the file system knows the size.</summary>
    public static async Task<string> ReadFileAsync(string path, CancellationToken ct)
    {
        await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, useAsync: true);
        if (file.CanSeek && file.Length > RecipeLimits.MaxBytes) throw RecipeParser.TooLarge();
        return await ReadAsync(file, ct).ConfigureAwait(false);
    }

    /// <summary>UTF-8 (invalid sequences become U+FFFD), without a leading byte order mark.</summary>
    public static string Decode(ReadOnlySpan<byte> bytes)
    {
        ReadOnlySpan<byte> bom = [0xEF, 0xBB, 0xBF];
        return Encoding.UTF8.GetString(bytes.StartsWith(bom) ? bytes[bom.Length..] : bytes);
    }
}
