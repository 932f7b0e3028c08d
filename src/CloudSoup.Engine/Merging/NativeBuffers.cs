// Unmanaged scratch memory that lives as long as one merge of one tensor (the fused task-vector kernel's bit
// keep-masks, sce's variance and byte mask): given back together on Dispose, whatever path the merge leaves by.
// Within a merge the blocks come from the merge's ScratchBuffers and go back there for the next tensor, so a kernel
// writes into pages already mapped instead of new ones (the kernel zeroes and faults in every page of a fresh block:
// 8 % of an sce profile, bench/README.md, "Sixth round").
using System.Runtime.InteropServices;

namespace CloudSoup.Engine.Merging;

internal sealed unsafe class NativeBuffers(ScratchBuffers? pool = null) : IDisposable
{
    private readonly List<nint> _buffers = [];

    /// <summary>An uninitialized buffer of <paramref name="bytes"/> bytes, given back with this object.</summary>
    public nint Allocate(long bytes)
    {
        var p = pool?.Rent(bytes) ?? (nint)NativeMemory.Alloc((nuint)Math.Max(1, bytes));
        _buffers.Add(p);
        return p;
    }

    public void Dispose()
    {
        foreach (var p in _buffers)
            if (pool is not null) pool.Return(p);
            else NativeMemory.Free((void*)p);
        _buffers.Clear();
    }
}

/// <summary>
/// The scratch blocks of one merge, kept between tensors: a few free blocks wait for the next rental, which takes the
/// smallest that fits. Blocks too small for a rental are freed rather than kept, so the pool holds no more than the
/// merge's largest tensors already needed at once, and all of it is freed when the merge ends.
/// </summary>
public sealed unsafe class ScratchBuffers : IDisposable
{
    /// <summary>At most this many blocks wait for a rental.</summary>
    internal const int MaxFree = 6;

    private readonly object _gate = new();
    private readonly List<(nint Address, long Bytes)> _free = [];
    private readonly Dictionary<nint, long> _rented = [];

    /// <summary>A block of at least <paramref name="bytes"/> bytes (contents undefined), until <see cref="Return"/>.</summary>
    public nint Rent(long bytes)
    {
        bytes = Math.Max(1, bytes);
        lock (_gate)
        {
            int best = -1;
            for (int i = 0; i < _free.Count; i++)
                if (_free[i].Bytes >= bytes && (best < 0 || _free[i].Bytes < _free[best].Bytes)) best = i;
            nint address;
            if (best >= 0)
            {
                (address, bytes) = _free[best];
                _free.RemoveAt(best);
            }
            else
            {
                // Nothing fits: the blocks too small for this one go (a merge's tensors are seldom smaller than the last).
                for (int i = _free.Count - 1; i >= 0; i--)
                    if (_free[i].Bytes < bytes) { NativeMemory.AlignedFree((void*)_free[i].Address); _free.RemoveAt(i); }
                address = (nint)NativeMemory.AlignedAlloc((nuint)bytes, 64);
            }
            _rented[address] = bytes;
            return address;
        }
    }

    /// <summary>Gives back a block <see cref="Rent"/> returned.</summary>
    public void Return(nint address)
    {
        lock (_gate)
        {
            if (!_rented.Remove(address, out long bytes)) throw new ArgumentException("not a block rented here", nameof(address));
            _free.Add((address, bytes));
            if (_free.Count <= MaxFree) return;
            int smallest = 0;
            for (int i = 1; i < _free.Count; i++) if (_free[i].Bytes < _free[smallest].Bytes) smallest = i;
            NativeMemory.AlignedFree((void*)_free[smallest].Address);
            _free.RemoveAt(smallest);
        }
    }

    /// <summary>The bytes of the blocks waiting for a rental (for tests).</summary>
    internal long FreeBytes
    {
        get { lock (_gate) return _free.Sum(f => f.Bytes); }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var (address, _) in _free) NativeMemory.AlignedFree((void*)address);
            _free.Clear();
            foreach (var address in _rented.Keys) NativeMemory.AlignedFree((void*)address);   // a kernel that never gave back
            _rented.Clear();
        }
    }
}
