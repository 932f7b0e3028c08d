// A model checkpoint as CloudSoup reads it: one safetensors or PyTorch file, or an HF-sharded folder
// (model.safetensors.index.json or pytorch_model.bin.index.json + shards). Opening reads headers only; tensor bytes are read on demand,
// each straight into the memory of the tensor that will hold it, or, for a local file, mapped (MappedTensors).
using System.Text.Json;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Storage;
using TorchSharp;

namespace CloudSoup.Engine.Formats;

public sealed class Checkpoint : IAsyncDisposable
{
    private readonly Dictionary<string, (IByteSource Source, TensorEntry Entry)> _tensors;
    private readonly List<IByteSource> _sources;
    private readonly bool _ownsSources;

    private Checkpoint(string reference, List<IByteSource> sources, Dictionary<string, (IByteSource, TensorEntry)> tensors, List<string> order, bool ownsSources = true)
    {
        Reference = reference;
        _sources = sources;
        _tensors = tensors;
        TensorNames = order;
        _ownsSources = ownsSources;
    }

    /// <summary>
    /// A virtual checkpoint whose tensor <c>Name</c> is tensor <c>FromName</c> of <c>From</c> (e.g. a layer slice
    /// renumbered). It reads through the originals' byte sources and does not own them: dispose the originals.
    /// </summary>
    public static Checkpoint Compose(string reference, IEnumerable<(string Name, Checkpoint From, string FromName)> parts)
    {
        var map = new Dictionary<string, (IByteSource, TensorEntry)>(StringComparer.Ordinal);
        var order = new List<string>();
        var sources = new List<IByteSource>();
        foreach (var (name, from, fromName) in parts)
        {
            if (!from._tensors.TryGetValue(fromName, out var t))
                throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{from.Reference} has no tensor {SafeText.Name(fromName)}");
            if (!map.TryAdd(name, (t.Source, t.Entry with { Name = name })))
                throw new InvalidOperationException($"the composed checkpoint {reference} names {SafeText.Name(name)} twice");
            order.Add(name);
            if (!sources.Contains(t.Source)) sources.Add(t.Source);
        }
        return new Checkpoint(reference, sources, map, order, ownsSources: false);
    }

    /// <summary>The reference the user wrote (path or blob path).</summary>
    public string Reference { get; }

    /// <summary>Tensor names in file order.</summary>
    public IReadOnlyList<string> TensorNames { get; }

    /// <summary>Version stamps of every file read (for job ids and reports).</summary>
    public IReadOnlyList<(string File, string Version)> Files => _sources.Select(s => (s.Name, s.Version)).ToList();

    public long TotalBytes => _tensors.Values.Sum(t => t.Entry.ByteLength);

    public bool Contains(string name) => _tensors.ContainsKey(name);

    public TensorEntry Entry(string name) =>
        _tensors.TryGetValue(name, out var t) ? t.Entry : throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{Reference} has no tensor {SafeText.Name(name)}");

    /// <summary>Hugging Face's names for PyTorch weights in a model folder: one file, or shards listed by an index.</summary>
    public const string TorchSingleFileName = "pytorch_model.bin";
    public const string TorchIndexFileName = "pytorch_model.bin.index.json";

    /// <summary>
    /// Opens <paramref name="reference"/>: a .safetensors file, an index (.safetensors.index.json or
    /// pytorch_model.bin.index.json), or a folder holding model.safetensors.index.json, model.safetensors,
    /// pytorch_model.bin.index.json or pytorch_model.bin (in that order of preference); a zip-format PyTorch checkpoint
    /// (.pt/.pth/.bin), read through a restricted unpickler that executes nothing.
    /// </summary>
    public static async Task<Checkpoint> OpenAsync(ICheckpointStore store, string reference, CancellationToken ct)
    {
        string r = reference.TrimEnd('/');
        if (IsTorchFile(r))
            return await OpenTorchAsync(store, reference, r, ct).ConfigureAwait(false);
        if (r.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            return await OpenSingleAsync(store, reference, r, ct).ConfigureAwait(false);
        if (r.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return await OpenIndexAsync(store, reference, r, ct).ConfigureAwait(false);
        string index = r + "/" + SafetensorsLayout.IndexFileName;
        if (await store.TryGetVersionAsync(index, ct).ConfigureAwait(false) != null)
            return await OpenIndexAsync(store, reference, index, ct).ConfigureAwait(false);
        string single = r + "/" + SafetensorsLayout.SingleFileName;
        if (await store.TryGetVersionAsync(single, ct).ConfigureAwait(false) != null)
            return await OpenSingleAsync(store, reference, single, ct).ConfigureAwait(false);
        string torchIndex = r + "/" + TorchIndexFileName;
        if (await store.TryGetVersionAsync(torchIndex, ct).ConfigureAwait(false) != null)
            return await OpenIndexAsync(store, reference, torchIndex, ct).ConfigureAwait(false);
        string torch = r + "/" + TorchSingleFileName;
        if (await store.TryGetVersionAsync(torch, ct).ConfigureAwait(false) != null)
            return await OpenTorchAsync(store, reference, torch, ct).ConfigureAwait(false);
        throw new CloudSoupException(ErrorKind.MissingInput,
            $"model '{reference}' not found: it is not a .safetensors or .pt/.bin file, and none of {SafetensorsLayout.IndexFileName}, {SafetensorsLayout.SingleFileName}, {TorchIndexFileName} or {TorchSingleFileName} exists under it");
    }

    private static bool IsTorchFile(string path) =>
        path.EndsWith(".bin", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pt", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pth", StringComparison.OrdinalIgnoreCase);

    /// <summary>A torch.save zip checkpoint, read through the restricted unpickler (TorchZipReader): no code runs.</summary>
    private static async Task<Checkpoint> OpenTorchAsync(ICheckpointStore store, string reference, string path, CancellationToken ct)
    {
        var src = await store.OpenAsync(path, ct).ConfigureAwait(false);
        try
        {
            var entries = await TorchZipReader.ReadAsync(src, ct).ConfigureAwait(false);
            var map = new Dictionary<string, (IByteSource, TensorEntry)>(StringComparer.Ordinal);
            foreach (var e in entries)
                if (!map.TryAdd(e.Name, (src, e))) throw CloudSoupException.Checkpoint(path, $"tensor {SafeText.Name(e.Name)} appears twice");
            return new Checkpoint(reference, [src], map, entries.Select(e => e.Name).ToList());
        }
        catch
        {
            await src.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>A safetensors file held in memory (validated like any other).</summary>
    public static Task<Checkpoint> FromBytesAsync(string reference, byte[] safetensors, CancellationToken ct) =>
        FromSourceAsync(reference, new MemoryByteSource(reference, safetensors), ct);

    private static async Task<Checkpoint> OpenSingleAsync(ICheckpointStore store, string reference, string path, CancellationToken ct) =>
        await FromSourceAsync(reference, await store.OpenAsync(path, ct).ConfigureAwait(false), ct).ConfigureAwait(false);

    private static async Task<Checkpoint> FromSourceAsync(string reference, IByteSource src, CancellationToken ct)
    {
        try
        {
            var header = await SafetensorsHeader.ReadAsync(src, ct).ConfigureAwait(false);
            var map = new Dictionary<string, (IByteSource, TensorEntry)>(StringComparer.Ordinal);
            foreach (var e in header.Tensors) map[e.Name] = (src, e);
            return new Checkpoint(reference, [src], map, header.Tensors.Select(t => t.Name).ToList());
        }
        catch
        {
            await src.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<Checkpoint> OpenIndexAsync(ICheckpointStore store, string reference, string indexPath, CancellationToken ct)
    {
        var bytes = await store.ReadAllAsync(indexPath, 64 << 20, ct).ConfigureAwait(false);
        Dictionary<string, string> weightMap;
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw CloudSoupException.Checkpoint(indexPath, "index has no weight_map object");
            weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in wm.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw CloudSoupException.Checkpoint(indexPath, $"weight_map entry {SafeText.Name(p.Name)} is not a file name");
                string file = p.Value.GetString()!;
                if (file.Contains('/') || file.Contains('\\') || file is "." or "..")
                    throw CloudSoupException.Checkpoint(indexPath, $"weight_map entry {SafeText.Name(p.Name)} points outside the checkpoint folder ({SafeText.Name(file)})");
                if (!file.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) && !IsTorchFile(file))
                    throw CloudSoupException.Checkpoint(indexPath, $"weight_map entry {SafeText.Name(p.Name)} names a shard that is neither .safetensors nor a PyTorch .bin/.pt/.pth file");
                weightMap[p.Name] = file;
            }
        }
        catch (JsonException e)
        {
            throw CloudSoupException.Checkpoint(indexPath, $"index is not valid JSON ({e.Message.Split('.')[0]})");
        }
        string dir = indexPath.Contains('/') ? indexPath[..indexPath.LastIndexOf('/')] : ".";
        var sources = new List<IByteSource>();
        var map = new Dictionary<string, (IByteSource, TensorEntry)>(StringComparer.Ordinal);
        var order = new List<string>();
        try
        {
            foreach (var file in weightMap.Values.Distinct().OrderBy(f => f, StringComparer.Ordinal))
            {
                var src = await store.OpenAsync(dir + "/" + file, ct).ConfigureAwait(false);
                sources.Add(src);
                // HF shards PyTorch weights the same way (pytorch_model-0000k-of-0000N.bin + pytorch_model.bin.index.json);
                // each shard goes through the same restricted unpickler as a single .bin, its tensors read lazily.
                var tensors = IsTorchFile(file)
                    ? await TorchZipReader.ReadAsync(src, ct).ConfigureAwait(false)
                    : (await SafetensorsHeader.ReadAsync(src, ct).ConfigureAwait(false)).Tensors;
                foreach (var e in tensors)
                {
                    if (!weightMap.TryGetValue(e.Name, out var owner) || owner != file) continue; // the index decides
                    if (map.ContainsKey(e.Name))
                        throw CloudSoupException.Checkpoint(indexPath, $"tensor {SafeText.Name(e.Name)} appears in more than one shard");
                    map[e.Name] = (src, e);
                    order.Add(e.Name);
                }
            }
            var missing = weightMap.Keys.Where(k => !map.ContainsKey(k)).Take(3).ToList();
            if (missing.Count > 0)
                throw CloudSoupException.Checkpoint(indexPath, $"the index lists tensors its shards do not contain: {string.Join(", ", missing)}");
            return new Checkpoint(reference, sources, map, order);
        }
        catch
        {
            foreach (var s in sources) await s.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// One tensor as a new CPU tensor of its stored dtype (owned by the caller, in no dispose scope): a private mapping
    /// of a local file, or its bytes read straight into the tensor's native memory.
    /// </summary>
    public async Task<torch.Tensor> ReadTensorAsync(string name, CancellationToken ct)
    {
        var (src, e) = _tensors.TryGetValue(name, out var t) ? t : throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{Reference} has no tensor {SafeText.Name(name)}");
        if (e.ByteLength > int.MaxValue)
            throw new CloudSoupException(ErrorKind.InvalidCheckpoint, $"{Reference}: tensor {SafeText.Name(name)} is {e.ByteLength} bytes; tensors over 2 GiB are not supported yet");
        // A local file is mapped rather than copied when it can be (MappedTensors).
        if (src is FileByteSource file && MappedTensors.TryMap(file, e) is { } mapped) return mapped;
        // Detached: the caller owns it, and a dispose scope of whichever thread this runs on must not claim it.
        var tensor = torch.empty(e.Shape, TorchDTypes.ToScalarType(e.DType)).DetachFromDisposeScope();
        try
        {
            if (e.ByteLength > 0)
            {
                // No managed staging buffer: the source fills libtorch's allocation directly, so a tensor
                // costs its size once, not twice.
                using var native = new NativeMemory(tensor.bytes);
                await src.ReadAsync(e.Offset, native.Memory, ct).ConfigureAwait(false);
            }
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_ownsSources) return;
        foreach (var s in _sources) await s.DisposeAsync().ConfigureAwait(false);
    }
}
