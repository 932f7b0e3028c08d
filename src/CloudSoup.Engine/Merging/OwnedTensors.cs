// Tensors owned across awaits. TorchSharp's dispose scopes belong to a thread, and an await may resume on
// another one: a scope that spans an await collects tensors from whatever else runs on its thread and misses
// the ones created after the await (they live until a finalizer runs, which the GC, blind to native memory,
// may not schedule for gigabytes). So async code keeps what it reads here and opens scopes only around
// synchronous compute, detaching the results it keeps.
using TorchSharp;

namespace CloudSoup.Engine.Merging;

public sealed class OwnedTensors : IDisposable
{
    private readonly List<torch.Tensor> _items = [];

    /// <summary>Takes ownership of <paramref name="tensor"/> (detached from any dispose scope) and returns it.</summary>
    public torch.Tensor Add(torch.Tensor tensor)
    {
        _items.Add(tensor.DetachFromDisposeScope());
        return tensor;
    }

    public torch.Tensor[] AddRange(torch.Tensor[] tensors)
    {
        foreach (var t in tensors) Add(t);
        return tensors;
    }

    public void Dispose()
    {
        foreach (var t in _items) t.Dispose();
        _items.Clear();
    }
}
