using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Jobs;
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Merging;

public class OutputBuffersTests
{
    private static bool SameMemory(torch.Tensor a, torch.Tensor b) =>
        Unsafe.AreSame(ref MemoryMarshal.GetReference(a.bytes), ref MemoryMarshal.GetReference(b.bytes));

    private static bool SameBytes(torch.Tensor a, torch.Tensor b) => a.bytes.SequenceEqual(b.bytes);

    [Fact]
    public void A_written_output_comes_back_zeroed_for_a_smaller_tensor_of_its_dtype()
    {
        using var buffers = new OutputBuffers();
        using var first = buffers.Zeros(torch.ones(4, 4));
        first.fill_(7f);
        long elements = buffers.TakeBack(first);
        Assert.Equal(16, elements);
        buffers.Recycle(first.alias(), elements);

        using var second = buffers.Zeros(torch.ones(2, 3));
        Assert.True(SameMemory(first, second));   // the same memory
        Assert.Equal(new long[] { 2, 3 }, second.shape);
        Assert.Equal(new float[6], second.data<float>().ToArray());
    }

    [Fact]
    public unsafe void A_buffer_abandoned_inside_a_dispose_scope_outlives_the_scope()
    {
        // A fused kernel that leaves a NaN output to the tensor path abandons its rented buffer inside its own dispose
        // scope; the waiting buffer must not be disposed with that scope (the next rental found an empty handle).
        using var buffers = new OutputBuffers();
        nint address;
        using (torch.NewDisposeScope())
        {
            var rented = buffers.Uninitialized(torch.ones(4, 4));
            address = (nint)Float32Memory.Of(rented);
            Float32Memory.Abandon(rented, buffers);
        }
        using var next = buffers.Zeros(torch.ones(3, 5));
        Assert.Equal(address, (nint)Float32Memory.Of(next));   // the abandoned buffer, reused
        Assert.Equal(new float[15], next.data<float>().ToArray());
    }

    [Fact]
    public void Another_dtype_a_larger_tensor_or_an_output_that_is_not_the_buffer_get_new_memory()
    {
        using var buffers = new OutputBuffers();
        using var rented = buffers.Zeros(torch.ones(8));
        using var other = rented * 2;                     // a method's own tensor: not the buffer
        Assert.Equal(0, buffers.TakeBack(other));

        using var again = buffers.Zeros(torch.ones(8));
        buffers.Recycle(again.alias(), buffers.TakeBack(again));
        using var doubles = buffers.Zeros(torch.ones(4, dtype: torch.ScalarType.Float64));
        Assert.Equal(torch.ScalarType.Float64, doubles.dtype);
        Assert.Equal(new double[4], doubles.data<double>().ToArray());
        buffers.Recycle(doubles.alias(), buffers.TakeBack(doubles));
        using var larger = buffers.Zeros(torch.ones(5, dtype: torch.ScalarType.Float64));
        Assert.False(SameMemory(doubles, larger));
        Assert.Equal(new double[5], larger.data<double>().ToArray());
    }

    [Fact]
    public async Task A_linear_merge_of_tensors_of_changing_sizes_writes_every_output_right_while_buffers_are_reused()
    {
        using var dir = new TempDir();
        // Sizes that grow, shrink and repeat, so outputs land in reused buffers of other sizes while the previous one is written.
        long[] sizes = [3000, 10, 2999, 5000, 5000, 1, 4096];
        Dictionary<string, torch.Tensor> Model(int seed)
        {
            var gen = new torch.Generator((ulong)seed);
            return sizes.Select((n, i) => (Name: $"t{i}", T: torch.randn(n, generator: gen))).ToDictionary(x => x.Name, x => x.T);
        }
        var a = Model(1);
        var b = Model(2);
        SafetensorsFiles.Write(dir["a.safetensors"], a);
        SafetensorsFiles.Write(dir["b.safetensors"], b);
        var recipe = RecipeParser.Parse("merge_method: linear\nmodels: [{model: a.safetensors, parameters: {weight: 1}}, {model: b.safetensors, parameters: {weight: 3}}]");
        await using (var sink = new LocalDirectorySink(dir["out"]))
            await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(recipe, sink, null, CancellationToken.None);

        var merged = SafetensorsFiles.Read(dir["out/model.safetensors"]);
        foreach (var name in a.Keys)
        {
            var expected = torch.zeros_like(a[name]).add_(a[name], alpha: 1).add_(b[name], alpha: 3).div_(4.0);
            Assert.True(SameBytes(expected, merged[name]), name);
        }
    }
}
