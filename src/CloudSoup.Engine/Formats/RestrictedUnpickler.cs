// A pickle interpreter that executes nothing (docs/contracts.md, "Checkpoint formats"): it understands the
// opcodes torch.save writes for a
// state dict (protocols 2–5) and builds plain records. The only globals it accepts are an allowlist —
// collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter, and the torch.*Storage classes —
// and "calling" one (REDUCE) only builds a record. Any other global (os.system, builtins.eval, ...), any other
// persistent id, and any opcode outside the list is refused with the reason, before anything could run.
using System.Buffers.Binary;
using System.Text;
using CloudSoup.Control.Errors;

namespace CloudSoup.Engine.Formats;

public sealed record TorchStorage(DType DType, string Key, long Elements);

public sealed record TorchTensor(TorchStorage Storage, long Offset, long[] Shape, long[] Stride);

public static class RestrictedUnpickler
{
    private const int MaxStack = 1 << 20, MaxMemo = 1 << 20;

    private static readonly Dictionary<string, DType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = DType.F32, ["DoubleStorage"] = DType.F64, ["HalfStorage"] = DType.F16, ["BFloat16Storage"] = DType.BF16,
        ["LongStorage"] = DType.I64, ["IntStorage"] = DType.I32, ["ShortStorage"] = DType.I16, ["CharStorage"] = DType.I8,
        ["ByteStorage"] = DType.U8, ["BoolStorage"] = DType.BOOL,
    };

    private sealed record Global(string Module, string Name);
    private sealed class Mark;
    private static readonly Mark TheMark = new();

    /// <summary>The checkpoint's tensors by name: the top-level dict, or the dict under "state_dict" or "model" when the top level holds no tensors.</summary>
    public static List<(string Name, TorchTensor Tensor)> StateDict(byte[] pickle, string source)
    {
        var root = Load(pickle, source);
        if (root is not Dictionary<object, object?> top) throw CloudSoupException.Checkpoint(source, "the pickle does not hold a dict of tensors (a state_dict)");
        var dict = top;
        if (!top.Values.Any(v => v is TorchTensor))
            foreach (var key in new[] { "state_dict", "model" })
                if (top.TryGetValue(key, out var inner) && inner is Dictionary<object, object?> d && d.Values.Any(v => v is TorchTensor)) { dict = d; break; }
        var result = dict.Where(kv => kv.Key is string && kv.Value is TorchTensor).Select(kv => ((string)kv.Key, (TorchTensor)kv.Value!)).ToList();
        if (result.Count == 0) throw CloudSoupException.Checkpoint(source, "the pickle holds no tensors at the top level (nor under state_dict or model)");
        return result;
    }

    /// <summary>Interprets <paramref name="pickle"/> into lists, tuples (object[]), dicts, strings, numbers and tensor records.</summary>
    public static object? Load(byte[] pickle, string source)
    {
        var stack = new List<object?>();
        var memo = new Dictionary<long, object?>();
        int p = 0;
        Exception Bad(string why) => CloudSoupException.Checkpoint(source, $"unsafe or unsupported pickle: {why}");
        byte Byte() => p < pickle.Length ? pickle[p++] : throw Bad("it ends early");
        ReadOnlySpan<byte> Take(long n)
        {
            if (n < 0 || p + n > pickle.Length) throw Bad("it ends early");
            var s = pickle.AsSpan(p, (int)n);
            p += (int)n;
            return s;
        }
        string Line()
        {
            int end = Array.IndexOf(pickle, (byte)'\n', p);
            if (end < 0 || end - p > 1000) throw Bad("a malformed GLOBAL");
            var s = Encoding.ASCII.GetString(pickle, p, end - p);
            p = end + 1;
            return s;
        }
        void Push(object? o)
        {
            if (stack.Count >= MaxStack) throw Bad("its stack grows too large");
            stack.Add(o);
        }
        object? Pop()
        {
            if (stack.Count == 0) throw Bad("it pops an empty stack");
            var o = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return o;
        }
        List<object?> PopToMark()
        {
            int m = stack.FindLastIndex(o => ReferenceEquals(o, TheMark));
            if (m < 0) throw Bad("a missing MARK");
            var items = stack.GetRange(m + 1, stack.Count - m - 1);
            stack.RemoveRange(m, stack.Count - m);
            return items;
        }
        void Memoize(long key)
        {
            if (stack.Count == 0) throw Bad("it memoizes an empty stack");
            if (memo.Count >= MaxMemo) throw Bad("its memo grows too large");
            memo[key] = stack[^1];
        }
        object? Get(long key) => memo.TryGetValue(key, out var o) ? o : throw Bad($"it refers to memo entry {key}, which does not exist");
        Global Allowed(string module, string name)
        {
            bool ok = (module, name) switch
            {
                ("collections", "OrderedDict") => true,
                ("torch._utils", "_rebuild_tensor_v2" or "_rebuild_parameter") => true,
                ("torch", _) => StorageTypes.ContainsKey(name),
                _ => false,
            };
            return ok ? new Global(module, name) : throw Bad($"it imports {SafeText.Line($"{module}.{name}", 120)}, which is not a tensor-rebuild function (refused; nothing was executed)");
        }
        void SetItems(object? target, List<object?> kv)
        {
            if (target is not Dictionary<object, object?> d) throw Bad("SETITEM(S) on something that is not a dict");
            for (int i = 0; i + 1 < kv.Count; i += 2) d[kv[i] ?? "None"] = kv[i + 1];
        }

        while (true)
        {
            byte op = Byte();
            switch (op)
            {
                case 0x80: Byte(); break;                                          // PROTO
                case 0x95: Take(8); break;                                         // FRAME
                case (byte)'}': Push(new Dictionary<object, object?>()); break;    // EMPTY_DICT
                case (byte)']': Push(new List<object?>()); break;                  // EMPTY_LIST
                case (byte)')': Push(Array.Empty<object?>()); break;               // EMPTY_TUPLE
                case (byte)'(': Push(TheMark); break;                              // MARK
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'X': { long n = BinaryPrimitives.ReadUInt32LittleEndian(Take(4)); Push(Encoding.UTF8.GetString(Take(n))); break; }
                case 0x8c: { int n = Byte(); Push(Encoding.UTF8.GetString(Take(n))); break; }       // SHORT_BINUNICODE
                case (byte)'T': { long n = BinaryPrimitives.ReadUInt32LittleEndian(Take(4)); Push(Encoding.Latin1.GetString(Take(n))); break; }
                case (byte)'U': { int n = Byte(); Push(Encoding.Latin1.GetString(Take(n))); break; }  // SHORT_BINSTRING
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                case (byte)'K': Push((long)Byte()); break;
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                case 0x8a:                                                         // LONG1
                {
                    int n = Byte();
                    if (n > 8) throw Bad("an integer wider than 64 bits");
                    var b = Take(n);
                    long v = 0;
                    for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
                    if (n > 0 && n < 8 && (b[n - 1] & 0x80) != 0) v -= 1L << (8 * n);
                    Push(v);
                    break;
                }
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;          // BINFLOAT
                case (byte)'t': Push(PopToMark().ToArray()); break;
                case 0x85: Push(new[] { Pop() }); break;
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); SetItems(stack.Count > 0 ? stack[^1] : null, [k, v]); break; }
                case (byte)'u': { var kv = PopToMark(); SetItems(stack.Count > 0 ? stack[^1] : null, kv); break; }
                case (byte)'a': { var v = Pop(); if (stack.Count == 0 || stack[^1] is not List<object?> l) throw Bad("APPEND to something that is not a list"); l.Add(v); break; }
                case (byte)'e': { var vs = PopToMark(); if (stack.Count == 0 || stack[^1] is not List<object?> l) throw Bad("APPENDS to something that is not a list"); l.AddRange(vs); break; }
                case (byte)'q': Memoize(Byte()); break;
                case (byte)'r': Memoize(BinaryPrimitives.ReadUInt32LittleEndian(Take(4))); break;
                case 0x94: Memoize(memo.Count); break;                             // MEMOIZE
                case (byte)'h': Push(Get(Byte())); break;
                case (byte)'j': Push(Get(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;
                case (byte)'c': { string module = Line(); string name = Line(); Push(Allowed(module, name)); break; }   // GLOBAL
                case 0x93:                                                         // STACK_GLOBAL
                {
                    var name = Pop() as string ?? throw Bad("STACK_GLOBAL without a name");
                    var module = Pop() as string ?? throw Bad("STACK_GLOBAL without a module");
                    Push(Allowed(module, name));
                    break;
                }
                case (byte)'Q': Push(PersistentStorage(Pop(), Bad)); break;       // BINPERSID
                case (byte)'R':                                                    // REDUCE: only builds records
                {
                    var args = Pop() as object?[] ?? throw Bad("REDUCE without an argument tuple");
                    var f = Pop() as Global ?? throw Bad("REDUCE of something that is not an allowed function");
                    Push(Apply(f, args, Bad));
                    break;
                }
                case (byte)'b': Pop(); break;                                      // BUILD: state (e.g. OrderedDict._metadata) ignored
                case (byte)'.': return stack.Count == 1 ? stack[0] : throw Bad("STOP with an unbalanced stack");
                default: throw Bad($"opcode 0x{op:x2} at byte {p - 1} is not one a state dict needs");
            }
        }
    }

    private static TorchStorage PersistentStorage(object? pid, Func<string, Exception> bad)
    {
        if (pid is not object?[] { Length: 5 } t || t[0] is not "storage" || t[1] is not Global { Module: "torch" } type || t[2] is not string key || t[4] is not long elements)
            throw bad("a persistent id that is not ('storage', type, key, location, size)");
        if (elements < 0) throw bad("a negative storage size");
        return new TorchStorage(StorageTypes[type.Name], key, elements);
    }

    private static object? Apply(Global f, object?[] args, Func<string, Exception> bad)
    {
        switch (f.Name)
        {
            case "OrderedDict":
                if (args.Length != 0) throw bad("OrderedDict called with arguments");
                return new Dictionary<object, object?>();
            case "_rebuild_tensor_v2":
                if (args.Length < 4 || args[0] is not TorchStorage storage || args[1] is not long offset || args[2] is not object?[] size || args[3] is not object?[] stride)
                    throw bad("_rebuild_tensor_v2 with unexpected arguments");
                return new TorchTensor(storage, offset, Longs(size, bad), Longs(stride, bad));
            case "_rebuild_parameter":
                if (args.Length < 1 || args[0] is not TorchTensor tensor) throw bad("_rebuild_parameter without a tensor");
                return tensor;
            default:
                throw bad($"{f.Module}.{f.Name} cannot be called");
        }
    }

    private static long[] Longs(object?[] values, Func<string, Exception> bad) =>
        values.Select(v => v is long l && l >= 0 ? l : throw bad("a tensor size or stride that is not a non-negative integer")).ToArray();
}
