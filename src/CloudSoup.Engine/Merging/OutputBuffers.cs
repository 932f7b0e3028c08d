// Reuses the memory of a written output for the next output of a merge. A freshly allocated multi-megabyte tensor
// comes from new pages (mmap, or heap pages that malloc_trim gave back), and the kernel faults in and zeroes every
// page on its first write: the profile of a linear merge showed those faults as a large share of its system time
// (bench/README.md, "The engine at the speed of its inputs"). The overlapped writer hands each output back here once
// its bytes are written; the merge after the next one then accumulates into the same, already mapped, pages.
// At most one written buffer waits here, so a merge holds no more memory than without the reuse.
using TorchSharp;

namespace CloudSoup.Engine.Merging;

public sealed class OutputBuffers : IDisposable
{
    private readonly object _gate = new();
    private torch.Tensor? _free;        // a written buffer as one 1-D tensor over its whole storage, waiting for the next output
    private nint _rentedAddress;        // where the buffer handed out for the tensor being merged starts (0: none)
    private long _rentedElements;       // the elements of that buffer's whole storage
    private Vouched _finite;            // the rented output a kernel found all finite (address 0: none)
    private Vouched _inputsFinite;      // the rented output whose kernel found every input element finite

    private record struct Vouched(nint Address, long Elements);

    /// <summary>
    /// Zeros shaped like <paramref name="like"/> (its dtype, contiguous, CPU): the same values as torch.zeros_like, in
    /// the waiting buffer when it has that dtype and is big enough, else in a new one.
    /// </summary>
    public torch.Tensor Zeros(torch.Tensor like) => Rent(like, zeroed: true);

    /// <summary>
    /// Like <see cref="Zeros"/>, for a method that writes every element itself: the values are whatever the buffer held
    /// (no zeroing pass).
    /// </summary>
    public torch.Tensor Uninitialized(torch.Tensor like) => Rent(like, zeroed: false);

    private torch.Tensor Rent(torch.Tensor like, bool zeroed)
    {
        long n = like.NumberOfElements;
        if (like.device_type != DeviceType.CPU || n == 0) return zeroed ? torch.zeros_like(like) : torch.empty_like(like);
        torch.Tensor buffer;
        long storage;
        lock (_gate)
        {
            if (_free is { } free && free.dtype == like.dtype && free.NumberOfElements >= n)
            {
                _free = null;
                storage = free.NumberOfElements;
                using (free) buffer = free.narrow(0, 0, n);
                if (zeroed) buffer.zero_();
            }
            else
            {
                _free?.Dispose();
                _free = null;
                storage = n;
                buffer = zeroed ? torch.zeros(n, dtype: like.dtype) : torch.empty(n, dtype: like.dtype);
            }
            _rentedAddress = AddressOf(buffer);
            _rentedElements = storage;
            _finite = _inputsFinite = default;   // a new rental: nothing is vouched for until its kernel says so
        }
        using (buffer) return buffer.view(like.shape);
    }

    /// <summary>
    /// When <paramref name="output"/> (about to be written; its own handle) starts at the buffer handed out for this
    /// tensor, with its dtype, returns that buffer's length in elements, for <see cref="Recycle"/> once written; else 0.
    /// Call it while the method's result is still alive (the address cannot have been reused). Forgets the rental.
    /// </summary>
    public long TakeBack(torch.Tensor output)
    {
        lock (_gate)
        {
            long elements = _rentedAddress != 0 && output.NumberOfElements > 0 && AddressOf(output) == _rentedAddress ? _rentedElements : 0;
            _rentedAddress = 0;
            return elements;
        }
    }

    /// <summary>
    /// Said by a kernel that wrote every element of <paramref name="output"/>, a buffer rented here for this tensor, and
    /// saw each one finite: the executor then need not scan it again (<see cref="IsVouchedFinite"/>). Forgotten at the
    /// next rental.
    /// </summary>
    public void VouchFinite(torch.Tensor output) => Vouch(output, ref _finite);

    /// <summary>
    /// Said by a kernel that read every element of every input of this tensor (as the merge got them) and saw each one
    /// finite, while writing <paramref name="output"/>, a buffer rented here for this tensor: the executor then need
    /// not scan the inputs (<see cref="AreInputsVouchedFinite"/>; IVouchesForInputs). Forgotten at the next rental.
    /// </summary>
    public void VouchInputsFinite(torch.Tensor output) => Vouch(output, ref _inputsFinite);

    /// <summary>True when <paramref name="t"/> is the output a kernel vouched for (<see cref="VouchFinite"/>), whole.</summary>
    public bool IsVouchedFinite(torch.Tensor t) => IsVouched(t, ref _finite);

    /// <summary>True when <paramref name="t"/> is the output whose kernel vouched for its inputs (<see cref="VouchInputsFinite"/>), whole.</summary>
    public bool AreInputsVouchedFinite(torch.Tensor t) => IsVouched(t, ref _inputsFinite);

    private void Vouch(torch.Tensor output, ref Vouched vouched)
    {
        lock (_gate)
        {
            nint address = AddressOf(output);
            if (address != 0 && address == _rentedAddress) vouched = new Vouched(address, output.NumberOfElements);
        }
    }

    private bool IsVouched(torch.Tensor t, ref Vouched vouched)
    {
        if (t.device_type != DeviceType.CPU || t.NumberOfElements == 0) return false;
        lock (_gate) return vouched.Address != 0 && AddressOf(t) == vouched.Address && t.NumberOfElements == vouched.Elements;
    }

    /// <summary>Takes a written output that <see cref="TakeBack"/> accepted and keeps its memory for the next output.</summary>
    public void Recycle(torch.Tensor written, long storageElements)
    {
        lock (_gate)
        {
            using (written)
            {
                _free?.Dispose();
                // Ours, not the caller's: a kernel that abandons its output inside a dispose scope would otherwise
                // have the scope dispose the waiting buffer, and the next rental find an empty handle.
                _free = written.as_strided([storageElements], [1L], 0).DetachFromDisposeScope();
            }
        }
    }

    /// <summary>Takes back a buffer rented for this tensor that the method ended up not returning (owns <paramref name="rented"/>).</summary>
    public void Abandon(torch.Tensor rented)
    {
        long elements = TakeBack(rented);
        if (elements > 0) Recycle(rented, elements);
        else rented.Dispose();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _free?.Dispose();
            _free = null;
        }
    }

    private static unsafe nint AddressOf(torch.Tensor t) => (nint)Float32Memory.Of(t);   // an address to compare, whatever the dtype
}
