// PyTorch checkpoints in torch.save's zip format (`.pt`, `.pth`, `.bin`; torch ≥ 1.6), read WITHOUT executing the
// pickle (docs/contracts.md, "Checkpoint formats"; mergekit's comparable allowlist: mergekit/io/lazy_unpickle.py).
// The zip's central directory is read by
// ranged reads (never the whole file); `<archive>/data.pkl` is interpreted by RestrictedUnpickler, which only
// builds records for tensor-rebuild calls and refuses every other global; each tensor then becomes an ordinary
// TensorEntry pointing into its storage member `<archive>/data/<key>` (torch.save stores members uncompressed),
// so Checkpoint reads tensors lazily by byte range exactly as it does for safetensors.
using System.Buffers.Binary;
using System.Text;
using CloudSoup.Control.Errors;

namespace CloudSoup.Engine.Formats;

public static class TorchZipReader
{
    private const int MaxEntries = 1_000_000;
    private const long MaxPickleBytes = 256L << 20;
    /// <summary>Local-header reads in flight at once while opening (each is one round trip on Blob Storage).</summary>
    internal const int MaxConcurrentHeaderReads = 16;
    private const uint EocdSignature = 0x06054b50, Zip64LocatorSignature = 0x07064b50, Zip64EocdSignature = 0x06064b50;
    private const uint CentralSignature = 0x02014b50, LocalSignature = 0x04034b50;

    private sealed record Member(string Name, ushort Method, long CompressedSize, long Size, long LocalHeaderOffset);

    /// <summary>True when the file starts like a zip archive (torch.save's format since 1.6).</summary>
    private static async Task<bool> IsZipAsync(IByteSource src, CancellationToken ct)
    {
        if (src.Length < 4) return false;
        var head = new byte[4];
        await src.ReadAsync(0, head, ct).ConfigureAwait(false);
        return BinaryPrimitives.ReadUInt32LittleEndian(head) == LocalSignature;
    }

    /// <summary>The tensors of a torch.save zip checkpoint as entries into <paramref name="src"/>, in pickle order.</summary>
    public static async Task<IReadOnlyList<TensorEntry>> ReadAsync(IByteSource src, CancellationToken ct)
    {
        if (!await IsZipAsync(src, ct).ConfigureAwait(false))
            throw CloudSoupException.Checkpoint(src.Name, "not a zip-format PyTorch checkpoint; the legacy (non-zip) torch.save format is not supported: re-save it with torch >= 1.6 or convert it to safetensors");
        var members = await CentralDirectoryAsync(src, ct).ConfigureAwait(false);
        var pkl = members.Values.Where(m => m.Name == "data.pkl" || m.Name.EndsWith("/data.pkl", StringComparison.Ordinal))
            .OrderBy(m => m.Name.Count(c => c == '/')).FirstOrDefault()
            ?? throw CloudSoupException.Checkpoint(src.Name, "the zip archive has no data.pkl: not a torch.save checkpoint");
        string prefix = pkl.Name[..^"data.pkl".Length];
        if (members.TryGetValue(prefix + "byteorder", out var order))
        {
            var bytes = await MemberBytesAsync(src, order, 16, ct).ConfigureAwait(false);
            if (Encoding.ASCII.GetString(bytes).Trim() != "little")
                throw CloudSoupException.Checkpoint(src.Name, "the checkpoint was saved on a big-endian machine; only little-endian checkpoints are supported");
        }
        var pickle = await MemberBytesAsync(src, pkl, MaxPickleBytes, ct).ConfigureAwait(false);
        var tensors = RestrictedUnpickler.StateDict(pickle, src.Name);

        // Check every record first (cheap, no IO), then find where each storage's bytes start: one small read of its
        // zip local header per storage, however many tensors share it. On Blob Storage each is a round trip, so they
        // run concurrently (at most MaxConcurrentHeaderReads at once) rather than one after another; the entries are
        // the same whatever order the reads finish in.
        var records = new List<(string Name, TorchTensor Tensor, Member Member, int Size, long Elements)>();
        var storages = new List<Member>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, t) in tensors)
        {
            if (!members.TryGetValue(prefix + "data/" + t.Storage.Key, out var member))
                throw CloudSoupException.Checkpoint(src.Name, $"tensor {SafeText.Name(name)} refers to storage {SafeText.Name(t.Storage.Key)}, which the archive does not contain");
            int size = DTypes.SizeOf(t.Storage.DType);
            // Sizes come from the pickle: multiply checked, so 2^62 elements × 4 bytes cannot wrap to a small number.
            if (!TryMultiply(t.Storage.Elements, size, out long storageBytes) || member.Size != storageBytes)
                throw CloudSoupException.Checkpoint(src.Name, $"storage {SafeText.Name(t.Storage.Key)} holds {member.Size} bytes, but its record says {t.Storage.Elements} elements of {size} bytes");
            long elements = 1;
            foreach (long d in t.Shape)
                if (!TryMultiply(elements, d, out elements))
                    throw CloudSoupException.Checkpoint(src.Name, $"tensor {SafeText.Name(name)} has a shape whose size overflows");
            if (!IsContiguous(t.Shape, t.Stride))
                throw CloudSoupException.Checkpoint(src.Name, $"tensor {SafeText.Name(name)} is a non-contiguous view (stride [{string.Join(", ", t.Stride)}] for shape [{string.Join(", ", t.Shape)}]); re-save it with .contiguous() or convert to safetensors");
            if (t.Offset < 0 || elements > t.Storage.Elements || t.Offset > t.Storage.Elements - elements)
                throw CloudSoupException.Checkpoint(src.Name, $"tensor {SafeText.Name(name)} reaches past the end of its storage");
            records.Add((name, t, member, size, elements));
            if (seen.Add(member.Name)) storages.Add(member);
        }
        var dataStarts = new long[storages.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, storages.Count),
            new ParallelOptions { MaxDegreeOfParallelism = MaxConcurrentHeaderReads, CancellationToken = ct },
            async (i, token) => dataStarts[i] = await DataOffsetAsync(src, storages[i], token, unbuffered: true).ConfigureAwait(false)).ConfigureAwait(false);
        var startOf = new Dictionary<string, long>(StringComparer.Ordinal);
        for (int i = 0; i < storages.Count; i++) startOf[storages[i].Name] = dataStarts[i];
        var entries = new List<TensorEntry>(records.Count);
        foreach (var (name, t, member, size, elements) in records)
            entries.Add(new TensorEntry(name, t.Storage.DType, t.Shape, startOf[member.Name] + t.Offset * size, elements * size));
        return entries;
    }

    private static bool TryMultiply(long a, long b, out long product)
    {
        try { product = checked(a * b); return true; }
        catch (OverflowException) { product = 0; return false; }
    }

    private static bool IsContiguous(long[] shape, long[] stride)
    {
        if (shape.Length != stride.Length) return false;
        long expected = 1;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            if (shape[d] != 1 && stride[d] != expected) return false;
            expected *= shape[d];
        }
        return true;
    }

    private static async Task<Dictionary<string, Member>> CentralDirectoryAsync(IByteSource src, CancellationToken ct)
    {
        int tailLength = (int)Math.Min(src.Length, 22 + 65535);
        var tail = new byte[tailLength];
        await src.ReadAsync(src.Length - tailLength, tail, ct).ConfigureAwait(false);
        int eocd = -1;
        for (int i = tailLength - 22; i >= 0; i--)
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(i)) == EocdSignature) { eocd = i; break; }
        if (eocd < 0) throw CloudSoupException.Checkpoint(src.Name, "the zip archive has no end-of-central-directory record (truncated?)");
        long entries = BinaryPrimitives.ReadUInt16LittleEndian(tail.AsSpan(eocd + 10));
        long cdSize = BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(eocd + 12));
        long cdOffset = BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(eocd + 16));
        if (entries == 0xFFFF || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF)
        {
            // Zip64: the locator sits right before the end record and points at the zip64 end record.
            int locator = eocd - 20;
            if (locator < 0 || BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(locator)) != Zip64LocatorSignature)
                throw CloudSoupException.Checkpoint(src.Name, "the zip archive needs zip64 records but has no zip64 locator");
            long recordAt = BinaryPrimitives.ReadInt64LittleEndian(tail.AsSpan(locator + 8));
            var record = new byte[56];
            if (recordAt < 0 || recordAt + 56 > src.Length) throw CloudSoupException.Checkpoint(src.Name, "the zip64 end record lies outside the file");
            await src.ReadAsync(recordAt, record, ct).ConfigureAwait(false);
            if (BinaryPrimitives.ReadUInt32LittleEndian(record) != Zip64EocdSignature) throw CloudSoupException.Checkpoint(src.Name, "the zip64 end record is corrupt");
            entries = BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(32));
            cdSize = BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(40));
            cdOffset = BinaryPrimitives.ReadInt64LittleEndian(record.AsSpan(48));
        }
        if (entries > MaxEntries || cdSize > 512L << 20 || cdOffset < 0 || cdOffset + cdSize > src.Length)
            throw CloudSoupException.Checkpoint(src.Name, "the zip central directory is out of bounds");
        var cd = new byte[cdSize];
        await src.ReadAsync(cdOffset, cd, ct).ConfigureAwait(false);
        var members = new Dictionary<string, Member>(StringComparer.Ordinal);
        int p = 0;
        for (long e = 0; e < entries; e++)
        {
            if (p + 46 > cd.Length || BinaryPrimitives.ReadUInt32LittleEndian(cd.AsSpan(p)) != CentralSignature)
                throw CloudSoupException.Checkpoint(src.Name, "the zip central directory is corrupt");
            ushort method = BinaryPrimitives.ReadUInt16LittleEndian(cd.AsSpan(p + 10));
            long compressed = BinaryPrimitives.ReadUInt32LittleEndian(cd.AsSpan(p + 20));
            long size = BinaryPrimitives.ReadUInt32LittleEndian(cd.AsSpan(p + 24));
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(cd.AsSpan(p + 28));
            int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(cd.AsSpan(p + 30));
            int commentLength = BinaryPrimitives.ReadUInt16LittleEndian(cd.AsSpan(p + 32));
            long local = BinaryPrimitives.ReadUInt32LittleEndian(cd.AsSpan(p + 42));
            if (p + 46 + nameLength + extraLength + commentLength > cd.Length) throw CloudSoupException.Checkpoint(src.Name, "the zip central directory is corrupt");
            string name = Encoding.UTF8.GetString(cd, p + 46, nameLength);
            // Zip64 extended information: 8-byte values for the fields that are 0xFFFFFFFF, in this order.
            var extra = cd.AsSpan(p + 46 + nameLength, extraLength);
            for (int x = 0; x + 4 <= extra.Length;)
            {
                ushort id = BinaryPrimitives.ReadUInt16LittleEndian(extra[x..]);
                int len = BinaryPrimitives.ReadUInt16LittleEndian(extra[(x + 2)..]);
                if (x + 4 + len > extra.Length) break;
                if (id == 1)
                {
                    var z = extra.Slice(x + 4, len);
                    int q = 0;
                    if (size == 0xFFFFFFFF && q + 8 <= z.Length) { size = BinaryPrimitives.ReadInt64LittleEndian(z[q..]); q += 8; }
                    if (compressed == 0xFFFFFFFF && q + 8 <= z.Length) { compressed = BinaryPrimitives.ReadInt64LittleEndian(z[q..]); q += 8; }
                    if (local == 0xFFFFFFFF && q + 8 <= z.Length) local = BinaryPrimitives.ReadInt64LittleEndian(z[q..]);
                }
                x += 4 + len;
            }
            if (!members.TryAdd(name, new Member(name, method, compressed, size, local)))
                throw CloudSoupException.Checkpoint(src.Name, $"the zip archive lists {SafeText.Name(name)} twice");
            p += 46 + nameLength + extraLength + commentLength;
        }
        return members;
    }

    /// <summary>Where a member's bytes start (after its local header), checking it is stored uncompressed and inside the file.</summary>
    private static async Task<long> DataOffsetAsync(IByteSource src, Member m, CancellationToken ct, bool unbuffered = false)
    {
        if (m.Method != 0)
            throw CloudSoupException.Checkpoint(src.Name, $"zip member {SafeText.Name(m.Name)} is compressed (method {m.Method}); torch.save stores members uncompressed, so this file was repacked: re-save it with torch.save");
        if (m.CompressedSize != m.Size) throw CloudSoupException.Checkpoint(src.Name, $"zip member {SafeText.Name(m.Name)} has inconsistent sizes");
        var header = new byte[30];
        if (m.LocalHeaderOffset < 0 || m.LocalHeaderOffset + 30 > src.Length) throw CloudSoupException.Checkpoint(src.Name, $"zip member {SafeText.Name(m.Name)} lies outside the file");
        if (unbuffered) await src.ReadUnbufferedAsync(m.LocalHeaderOffset, header, ct).ConfigureAwait(false);
        else await src.ReadAsync(m.LocalHeaderOffset, header, ct).ConfigureAwait(false);
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != LocalSignature) throw CloudSoupException.Checkpoint(src.Name, $"zip member {SafeText.Name(m.Name)} has a corrupt local header");
        long start = m.LocalHeaderOffset + 30 + BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(26)) + BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(28));
        if (start + m.Size > src.Length) throw CloudSoupException.Checkpoint(src.Name, $"zip member {SafeText.Name(m.Name)} runs past the end of the file (truncated?)");
        return start;
    }

    private static async Task<byte[]> MemberBytesAsync(IByteSource src, Member m, long max, CancellationToken ct)
    {
        if (m.Size > max) throw CloudSoupException.Checkpoint(src.Name, $"zip member {SafeText.Name(m.Name)} is {m.Size} bytes, over the {max}-byte limit");
        long start = await DataOffsetAsync(src, m, ct).ConfigureAwait(false);
        var bytes = new byte[m.Size];
        await src.ReadAsync(start, bytes, ct).ConfigureAwait(false);
        return bytes;
    }
}
