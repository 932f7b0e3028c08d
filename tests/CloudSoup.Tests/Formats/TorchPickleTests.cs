// zip-format PyTorch checkpoints through the restricted unpickler (Fixtures/pickle/make_fixtures.py, made with
// PyTorch 1.13): good files read tensor for tensor like the safetensors PyTorch wrote next to them; hostile and
// broken files fail with InvalidCheckpoint and a reason, and nothing in them runs.
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Storage;
using CloudSoup.Tests.Support;
using TorchSharp;

namespace CloudSoup.Tests.Formats;

public class TorchPickleTests
{
    private static readonly string Dir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "pickle");
    private static readonly LocalCheckpointStore Store = new(Dir);

    private static async Task<Dictionary<string, torch.Tensor>> ReadAll(string reference)
    {
        await using var c = await Checkpoint.OpenAsync(Store, reference, CancellationToken.None);
        var result = new Dictionary<string, torch.Tensor>();
        foreach (var n in c.TensorNames) result[n] = await c.ReadTensorAsync(n, CancellationToken.None);
        return result;
    }

    [Theory]
    [InlineData("mlp_f32.pt", "mlp_f32.expected.safetensors")]
    [InlineData("mlp_f16.pt", "mlp_f16.expected.safetensors")]
    [InlineData("mlp_bf16.pt", "mlp_bf16.expected.safetensors")]
    [InlineData("shared.pt", "shared.expected.safetensors")]
    [InlineData("wrapped.pt", "wrapped.expected.safetensors")]
    [InlineData("pytorch_model.bin", "mlp_f32.expected.safetensors")]
    [InlineData("many_storages.pt", "many_storages.expected.safetensors")]
    public async Task Good_checkpoints_read_like_the_tensors_pytorch_saved(string file, string expectedFile)
    {
        var got = await ReadAll(file);
        var expected = await ReadAll(expectedFile);
        Assert.Equal(expected.Keys.Order(), got.Keys.Order());
        foreach (var (name, t) in expected)
        {
            Assert.Equal(t.dtype, got[name].dtype);
            Assert.Equal(t.shape, got[name].shape);
            Assert.True(t.eq(got[name]).all().ToBoolean(), name);
        }
    }

    [Fact]
    public async Task A_folder_with_pytorch_model_bin_is_a_model()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir["hf"]);
        File.Copy(Path.Combine(Dir, "pytorch_model.bin"), dir["hf/pytorch_model.bin"]);
        await using var c = await Checkpoint.OpenAsync(new LocalCheckpointStore(dir.Path), "hf", CancellationToken.None);
        Assert.Equal(4, c.TensorNames.Count);
    }

    [Theory]
    [InlineData("hostile_system.pt", "os.system")]
    [InlineData("hostile_eval.pt", "builtins.eval")]
    [InlineData("noncontiguous.pt", "non-contiguous")]
    [InlineData("compressed.pt", "compressed")]
    [InlineData("truncated.pt", "truncated")]
    [InlineData("legacy.pt", "legacy")]
    public async Task Hostile_and_broken_checkpoints_are_refused_with_the_reason_and_run_nothing(string file, string reason)
    {
        string marker = Path.Combine(Directory.GetCurrentDirectory(), "cloudsoup-pwned");
        var e = await Assert.ThrowsAsync<CloudSoupException>(() => ReadAll(file));
        Assert.Equal(ErrorKind.InvalidCheckpoint, e.Kind);
        Assert.Contains(reason, e.Message);
        Assert.False(File.Exists(marker));
        Assert.False(File.Exists(Path.Combine(Dir, "cloudsoup-pwned")));
    }

    [Fact]
    public async Task A_pt_and_a_safetensors_checkpoint_merge_together()
    {
        using var dir = new TempDir();
        File.Copy(Path.Combine(Dir, "mlp_f32.pt"), dir["a.pt"]);
        var b = (await ReadAll("mlp_f32.expected.safetensors")).ToDictionary(kv => kv.Key, kv => kv.Value * 3);
        SafetensorsFiles.Write(dir["b.safetensors"], b);
        await using (var sink = new LocalDirectorySink(dir["out"]))
            await new MergeJobRunner(new LocalCheckpointStore(dir.Path)).RunAsync(RecipeParser.Parse("merge_method: linear\nmodels: [a.pt, b.safetensors]"), sink, null, CancellationToken.None);
        var merged = SafetensorsFiles.Read(dir["out/model.safetensors"]);
        var a = await ReadAll("mlp_f32.expected.safetensors");
        foreach (var (name, t) in a) Assert.True(merged[name].allclose(t * 2, rtol: 1e-6, atol: 1e-6), name);
    }

    [Fact]
    public async Task Storage_headers_are_read_concurrently_and_give_the_same_entries_as_one_at_a_time()
    {
        // Sequential reference: every unbuffered read completes before the next starts.
        await using var plain = FileByteSource.Open(Path.Combine(Dir, "many_storages.pt"));
        var sequential = await TorchZipReader.ReadAsync(new ConcurrencyProbe(plain, needed: 1), CancellationToken.None);
        // The opening must have two local-header reads in flight at once (the probe holds each read until a second
        // one arrives, and fails instead of waiting forever), and never more than the bound.
        var probe = new ConcurrencyProbe(plain, needed: 2);
        var concurrent = await TorchZipReader.ReadAsync(probe, CancellationToken.None);
        Assert.InRange(probe.MaxInFlight, 2, TorchZipReader.MaxConcurrentHeaderReads);
        Assert.Equal(48, probe.UnbufferedReads);
        Assert.Equal(sequential.Count, concurrent.Count);
        for (int i = 0; i < sequential.Count; i++)
        {
            Assert.Equal(sequential[i].Name, concurrent[i].Name);
            Assert.Equal(sequential[i].Offset, concurrent[i].Offset);
            Assert.Equal(sequential[i].ByteLength, concurrent[i].ByteLength);
            Assert.Equal(sequential[i].Shape, concurrent[i].Shape);
            Assert.Equal(sequential[i].DType, concurrent[i].DType);
        }
    }

    /// <summary>Passes reads through; holds each unbuffered read until <c>needed</c> are in flight together.</summary>
    private sealed class ConcurrencyProbe(IByteSource inner, int needed) : IByteSource
    {
        private readonly TaskCompletionSource _enough = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _inFlight;
        public int MaxInFlight;
        public int UnbufferedReads;
        public string Name => inner.Name;
        public long Length => inner.Length;
        public string Version => inner.Version;
        public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken ct) => inner.ReadAsync(offset, buffer, ct);

        public async ValueTask ReadUnbufferedAsync(long offset, Memory<byte> buffer, CancellationToken ct)
        {
            Interlocked.Increment(ref UnbufferedReads);
            int now = Interlocked.Increment(ref _inFlight);
            int seen;
            while (now > (seen = MaxInFlight) && Interlocked.CompareExchange(ref MaxInFlight, now, seen) != seen) { }
            if (now >= needed) _enough.TrySetResult();
            try
            {
                await _enough.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);   // a guard against a hang, not a timing check
                await inner.ReadAsync(offset, buffer, ct);
            }
            finally
            {
                Interlocked.Decrement(ref _inFlight);
            }
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [Fact]
    public void The_interpreter_refuses_unknown_opcodes_and_persistent_ids()
    {
        var e = Assert.Throws<CloudSoupException>(() => RestrictedUnpickler.Load([0x80, 0x02, (byte)'i', (byte)'.'], "x"));
        Assert.Contains("opcode 0x69", e.Message);
        // BINPERSID with a non-storage id: PROTO 2, SHORT_BINUNICODE "module", TUPLE1, BINPERSID, STOP.
        var pid = new byte[] { 0x80, 0x02, 0x8c, 6, (byte)'m', (byte)'o', (byte)'d', (byte)'u', (byte)'l', (byte)'e', 0x85, (byte)'Q', (byte)'.' };
        Assert.Contains("persistent id", Assert.Throws<CloudSoupException>(() => RestrictedUnpickler.Load(pid, "x")).Message);
    }
}
