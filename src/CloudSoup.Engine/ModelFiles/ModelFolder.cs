// Where a model reference's side files (config.json, the tokenizer) live. A folder reference is its own folder; a
// weights file with Hugging Face's standard name (model.safetensors, pytorch_model.bin, their shards and indexes) sits
// in its model's folder; any other single file (e.g. ft-a.safetensors among several checkpoints) has no folder of its
// own, so nothing beside it is taken for its configuration.
using System.Text.RegularExpressions;
using CloudSoup.Control.Storage;
using CloudSoup.Engine.Storage;

namespace CloudSoup.Engine.ModelFiles;

public static partial class ModelFolder
{
    [GeneratedRegex(@"^(model|pytorch_model)(-\d+-of-\d+)?\.(safetensors|bin)(\.index\.json)?$")]
    private static partial Regex StandardWeightsName();

    private static readonly string[] FileExtensions = [".safetensors", ".bin", ".pt", ".pth", ".json"];

    /// <summary>The folder holding <paramref name="reference"/>'s side files ("." for the store's root), or null for a lone weights file.</summary>
    public static string? Of(string reference)
    {
        string r = reference.TrimEnd('/');
        int slash = r.LastIndexOf('/');
        string name = r[(slash + 1)..];
        if (!FileExtensions.Any(e => name.EndsWith(e, StringComparison.OrdinalIgnoreCase))) return r;
        if (!StandardWeightsName().IsMatch(name)) return null;
        return slash < 0 ? "." : r[..slash];
    }

    public static string PathOf(string folder, string file) => folder == "." ? file : folder + "/" + file;

    /// <summary>File <paramref name="file"/> of <paramref name="folder"/> when it exists (at most <see cref="ModelFolderFiles.MaxBytes"/>), else null.</summary>
    public static async Task<byte[]?> TryReadAsync(ICheckpointStore store, string folder, string file, CancellationToken ct)
    {
        string path = PathOf(folder, file);
        if (await store.TryGetVersionAsync(path, ct).ConfigureAwait(false) is null) return null;
        return await store.ReadAllAsync(path, ModelFolderFiles.MaxBytes, ct).ConfigureAwait(false);
    }
}
