// linear's fused float32 kernel (Merging/FusedLinear.cs) must give the tensor path's output byte for byte: weights
// that make a fused multiply-add differ from a multiply then an add, zero and negative weights, normalize on and off,
// sizes that end mid-vector and that libtorch splits over its threads at ragged points, negative zeros and infinities.
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Merging.Methods;
using TorchSharp;
using static CloudSoup.Tests.Merging.Methods.MethodFixture;

namespace CloudSoup.Tests.Merging.Methods;

public class FusedLinearTests
{
    [Theory]
    [InlineData(1, false)]
    [InlineData(7, true)]
    [InlineData(1_003, false)]
    [InlineData(1_003, true)]
    [InlineData(2 * Float32Memory.Block + 4_099, false)]
    [InlineData(2 * Float32Memory.Block + 4_099, true)]
    [InlineData(1_000_003, true)]
    public void The_fused_kernel_gives_the_tensor_paths_bytes(long n, bool normalize)
    {
        var models = Models(n, 4, seed: 17);
        AssertSame(models, [0.3, -1.7, 0.0, 0.0123], normalize);
        AssertSame(models, [1, 1, 1, 1], normalize);
        AssertSame(models, [0.1, 0.2, 0.3, 0.4], normalize);
    }

    [Fact]
    public void A_matrix_and_two_models_give_the_tensor_paths_bytes()
    {
        var models = Models(97 * 1_031, 2, seed: 5).Select(m => m.reshape(97, 1_031)).ToList();
        AssertSame(models, [0.55, 0.45], normalize: true);
    }

    [Fact]
    public void Infinities_stay_on_the_fused_path_and_NaN_outputs_take_the_tensor_path()
    {
        var models = Models(10_007, 3, seed: 3);
        models[0][400] = float.PositiveInfinity;
        models[2][401] = float.NegativeInfinity;
        Assert.NotNull(Fused(models, [0.5, 0.25, 0.25]));
        AssertSame(models, [0.5, 0.25, 0.25], normalize: true);
        models[1][400] = float.NegativeInfinity;   // inf − inf: a NaN output
        Assert.Null(Fused(models, [0.5, 0.25, 0.25]));
        AssertSame(models, [0.5, 0.25, 0.25], normalize: true);
        models[1][900] = float.NaN;
        AssertSame(models, [0.5, 0.25, 0.25], normalize: false);
    }

    [Fact]
    public void Other_dtypes_and_shapes_take_the_tensor_path()
    {
        var models = Models(1_000, 2, seed: 1);
        Assert.NotNull(Fused(models, [1, 1]));
        Assert.Null(Fused(models.Select(m => m.to_type(torch.ScalarType.Float64)).ToList(), [1, 1]));
        Assert.Null(Fused([models[0], models[1].reshape(10, 100)], [1, 1]));
        Assert.Null(Fused([models[0], models[1].reshape(100, 10).t()], [1, 1]));   // not contiguous
        Assert.Null(Fused(models, [0, 0]));
    }

    [Fact]
    public void The_kernel_vouches_for_a_finite_output_only()
    {
        using var buffers = new OutputBuffers();
        var models = Models(5_000, 2, seed: 9);
        var finite = FusedLinear.TryMerge(models, [0.5, 0.5], normalize: false, 1.0, buffers)!;
        Assert.True(buffers.IsVouchedFinite(finite));
        Assert.False(buffers.IsVouchedFinite(finite.narrow(0, 0, 100)));   // a part of it is not the output
        Assert.False(buffers.IsVouchedFinite(models[0]));
        models[1][4_321] = float.PositiveInfinity;
        var infinite = FusedLinear.TryMerge(models, [0.5, 0.5], normalize: false, 1.0, buffers)!;   // a new rental forgets the vouch
        Assert.False(buffers.IsVouchedFinite(infinite));
        Assert.Equal(float.PositiveInfinity, infinite[4_321].ToSingle());
    }

    private static torch.Tensor? Fused(List<torch.Tensor> models, double[] weights) =>
        FusedLinear.TryMerge(models, weights, normalize: true, weights.Sum(), buffers: null);

    private static List<torch.Tensor> Models(long n, int count, int seed)
    {
        var gen = new torch.Generator((ulong)seed);
        var models = Enumerable.Range(0, count).Select(_ => torch.randn(n, generator: gen) * 3).ToList();
        if (n > 8)
        {
            models[0][3] = -0.0f;              // −0 in every model: the sum starts at +0, as torch.zeros does
            for (int i = 1; i < count; i++) models[i][3] = -0.0f;
            models[count - 1][8] = 0.0f;
        }
        return models;
    }

    private static void AssertSame(List<torch.Tensor> models, double[] weights, bool normalize)
    {
        var pm = weights.Select(w => (IReadOnlyDictionary<string, object>)D(("weight", w))).ToList();
        var global = new Dictionary<string, object> { ["normalize"] = normalize };
        using var fused = new Linear().Merge(Input(new Linear(), null, models, global, pm));
        using var tensorPath = new Linear { Fused = false }.Merge(Input(new Linear(), null, models, global, pm));
        Assert.Equal(tensorPath.shape, fused.shape);
        var f = fused.flatten().data<float>().ToArray();
        var t = tensorPath.flatten().data<float>().ToArray();
        for (int i = 0; i < t.Length; i++)
            if (BitConverter.SingleToInt32Bits(t[i]) != BitConverter.SingleToInt32Bits(f[i]))
                Assert.Fail($"weights [{string.Join(", ", weights)}], normalize {normalize}: element {i} of {t.Length} differs: tensor path {t[i]:R}, fused {f[i]:R}");
    }
}
