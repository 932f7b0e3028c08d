using CloudSoup.Control.Methods;
using System.Collections.Concurrent;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Merging.Methods;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Merging;

/// <summary>
/// Blob reads complete on thread-pool threads, and TorchSharp's dispose scopes belong to one thread: a scope held
/// across an await misses what is created after it, which then lives until a finalizer runs (the worker grew by
/// about three times the model size this way). These merges read through sources that always resume on another
/// thread and check that every tensor the merge made or read was freed when it returned.
/// </summary>
public class TensorLifetimeTests
{
    /// <summary>Reads that never complete synchronously, like a ranged blob read.</summary>
    private sealed class YieldingSource(IByteSource inner) : IByteSource
    {
        public string Name => inner.Name;
        public long Length => inner.Length;
        public string Version => inner.Version;

        public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct)
        {
            await Task.Yield();
            await inner.ReadAsync(offset, buffer, ct);
        }

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    private sealed class YieldingStore(LocalCheckpointStore inner) : ICheckpointStore
    {
        public async Task<IByteSource> OpenAsync(string path, CancellationToken ct) => new YieldingSource(await inner.OpenAsync(path, ct));
        public Task<string?> TryGetVersionAsync(string path, CancellationToken ct) => inner.TryGetVersionAsync(path, ct);
        public Task<byte[]> ReadAllAsync(string path, long maxBytes, CancellationToken ct) => inner.ReadAllAsync(path, maxBytes, ct);
    }

    /// <summary>Delegates to a real method and remembers every tensor it was given and returned.</summary>
    private sealed class Recording(IMergeMethod inner, ConcurrentBag<torch.Tensor> seen) : IMergeMethod
    {
        public MethodSignature Signature => inner.Signature;

        public torch.Tensor Merge(TensorMergeInput input)
        {
            foreach (var t in input.Tensors) seen.Add(t);
            var result = inner.Merge(input);
            seen.Add(result);
            return result;
        }
    }

    private static async Task<(MergePlan Plan, List<Checkpoint> Inputs)> PlanAsync(TempDir dir, string yaml, int models, int tensors)
    {
        for (int m = 0; m < models; m++)
        {
            var rng = new Random(m);
            RawSafetensors.Write(dir[$"m{m}.safetensors"],
                Enumerable.Range(0, tensors).Select(t => ($"layers.{t}.weight", RawSafetensors.Random(rng, "F32", [16, 8]))).ToList());
        }
        var store = new YieldingStore(new LocalCheckpointStore(dir.Path));
        var inputs = new List<Checkpoint>();
        for (int m = 0; m < models; m++) inputs.Add(await Checkpoint.OpenAsync(store, $"m{m}.safetensors", CancellationToken.None));
        return (MergePlanner.Plan(RecipeParser.Parse(yaml), inputs), inputs);
    }

    [Fact]
    public async Task A_merge_frees_every_tensor_it_reads_and_makes_even_when_reads_resume_on_other_threads()
    {
        using var dir = new TempDir();
        var (plan, inputs) = await PlanAsync(dir, """
            merge_method: linear
            models: [{model: m0.safetensors}, {model: m1.safetensors}, {model: m2.safetensors}]
            """, models: 3, tensors: 40);
        var seen = new ConcurrentBag<torch.Tensor>();
        plan = plan.WithMethod(new Recording(plan.Method, seen)) with
        {
            // Also sees each input tensor exactly as read (returned unchanged, so the executor owns it).
            InputTransform = (_, _, t) => { seen.Add(t); return t; },
        };
        var kept = new Dictionary<string, torch.Tensor>();
        await using (var sink = new LocalDirectorySink(dir["out"]))
        {
            await MergeExecutor.ExecuteAsync(plan, sink, null, kept, CancellationToken.None);
            await sink.CommitAsync(CancellationToken.None);
        }
        foreach (var c in inputs) await c.DisposeAsync();

        Assert.Equal(3 * 40 * 2 + 40, seen.Count);   // inputs as read, as the method saw them, and its results
        Assert.All(seen, t => Assert.True(t.IsInvalid, "a tensor outlived the merge (left for a finalizer)"));
        // What the caller asked to keep survives, and equals what was written.
        Assert.Equal(40, kept.Count);
        Assert.All(kept.Values, t => Assert.False(t.IsInvalid));
        var written = RawSafetensors.Read(dir["out/model.safetensors"]);
        var expected = Enumerable.Range(0, 3).Select(m => RawSafetensors.Read(dir[$"m{m}.safetensors"])).ToList();
        foreach (var (name, t) in written)
        {
            var k = kept[name].data<float>().ToArray();
            for (int i = 0; i < t.Values.Length; i++)
            {
                double mean = expected.Average(e => e[name].Values[i]);
                Assert.True(Math.Abs(t.Values[i] - mean) < 1e-6, $"{name}[{i}]");
                Assert.Equal(t.Values[i], k[i], 6);
            }
        }
        foreach (var t in kept.Values) t.Dispose();
    }

    [Fact]
    public async Task Whole_model_prepasses_free_what_they_read()
    {
        using var dir = new TempDir();
        var (plan, inputs) = await PlanAsync(dir, """
            merge_method: ties
            base_model: m0.safetensors
            models: [{model: m1.safetensors}, {model: m2.safetensors}]
            parameters: {density: 0.5, weight: 1, topk_scope: model}
            """, models: 3, tensors: 20);
        var seen = new ConcurrentBag<torch.Tensor>();
        plan = plan with { InputTransform = (_, _, t) => { seen.Add(t); return t; } };
        var (withThresholds, _) = await TopKPrepass.RunAsync(plan, t => new Ties { ModelThresholds = t }, null, CancellationToken.None);
        Assert.NotEmpty(seen);
        Assert.All(seen, t => Assert.True(t.IsInvalid, "the top-k pre-pass left a tensor for a finalizer"));
        Assert.IsType<Ties>(withThresholds.Method);
        foreach (var c in inputs) await c.DisposeAsync();
    }
}
