// The per-model sparsification of a big tensor runs its models in parallel; the output must be the serial one, byte for byte.
using CloudSoup.Engine.Merging;
using CloudSoup.Engine.Merging.Methods;
using TorchSharp;
using static CloudSoup.Tests.Merging.Methods.MethodFixture;

namespace CloudSoup.Tests.Merging.Methods;

public class ParallelSparsifyTests
{
    private static IMergeMethod Create(string name) => name switch
    {
        "ties" => new Ties(),
        "breadcrumbs_ties" => new BreadcrumbsTies(),
        "dare_ties" => new DareTies(),
        "della" => new Della(),
        _ => new TaskArithmetic(),
    };

    [Theory]
    [InlineData("ties", false)]
    [InlineData("breadcrumbs_ties", false)]
    [InlineData("dare_ties", false)]
    [InlineData("della", false)]
    [InlineData("task_arithmetic", false)]
    [InlineData("ties", true)]               // a NaN in one model's trim, found while the others are trimmed beside it
    [InlineData("breadcrumbs_ties", true)]
    public void Models_sparsified_in_parallel_give_the_serial_output_byte_for_byte(string name, bool nan)
    {
        var method = Create(name);
        var gen = new torch.Generator(5);
        long n = 3 * TaskArithmeticFamily.ParallelSparsifyElements / 2;   // big enough for the parallel path
        var b = torch.randn(n, generator: gen).reshape(-1, 512);
        var others = Enumerable.Range(0, 3).Select(_ => b + 0.01 * torch.randn(n, generator: gen).reshape(-1, 512)).ToList();
        if (nan) others[1][7, 3] = float.NaN;
        var perModel = Enumerable.Range(0, 3).Select(i => (IReadOnlyDictionary<string, object>)(method is TaskArithmetic
            ? D(("weight", 0.5 + i))
            : method is BreadcrumbsTies ? D(("weight", 0.5 + i), ("density", 0.5), ("gamma", 0.01)) : D(("weight", 0.5 + i), ("density", 0.4)))).ToList();
        using var parallel = method.Merge(Input(method, b, others, perModel: perModel, seed: 9));
        long before = TaskArithmeticFamily.ParallelSparsifyElements;
        torch.Tensor serial;
        try
        {
            TaskArithmeticFamily.ParallelSparsifyElements = long.MaxValue;
            serial = method.Merge(Input(method, b, others, perModel: perModel, seed: 9));
        }
        finally
        {
            TaskArithmeticFamily.ParallelSparsifyElements = before;
        }
        using (serial)
            Assert.True(parallel.bytes.SequenceEqual(serial.bytes));
        if (nan) Assert.True(parallel.isnan().any().ToBoolean(), "the NaN reaches the output (the tensor path's)");
    }
}
