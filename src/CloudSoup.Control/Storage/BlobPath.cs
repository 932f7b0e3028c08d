using CloudSoup.Control.Errors;

namespace CloudSoup.Control.Storage;

/// <summary>
/// A model reference in the service: "container/path/inside/container". The first segment must be a valid
/// container name (3-63 lowercase letters, digits and hyphens), so typos fail with a clear message.
/// </summary>
public readonly record struct BlobPath(string Container, string Name)
{
    public override string ToString() => $"{Container}/{Name}";

    public static bool TryParse(string? path, out BlobPath result)
    {
        result = default;
        if (string.IsNullOrWhiteSpace(path)) return false;
        int slash = path.IndexOf('/');
        if (slash <= 0 || slash == path.Length - 1) return false;
        string container = path[..slash], name = path[(slash + 1)..];
        if (!IsContainerName(container) || name.StartsWith('/') || name.Split('/').Any(s => s is "." or "..")) return false;
        result = new BlobPath(container, name);
        return true;
    }

    /// <summary>Parses or throws a MissingInput error saying what a blob path looks like.</summary>
    public static BlobPath Parse(string path) =>
        TryParse(path, out var p) ? p
            : throw new CloudSoupException(ErrorKind.MissingInput, $"'{path}' is not a blob path: expected container/path, e.g. checkpoints/my-experiment/model.safetensors");

    public static bool IsContainerName(string s) =>
        s.Length is >= 3 and <= 63 && s.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-')
        && s[0] != '-' && s[^1] != '-' && !s.Contains("--", StringComparison.Ordinal);
}
