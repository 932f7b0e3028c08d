// NaN and infinite values in the tensors a merge reads and writes. A merge propagates them silently (a weighted
// average with one NaN is NaN), so the executor counts them per tensor, per input model and in the output, for the
// report (report.json "nonFinite"), and refuses them when the recipe says nonfinite: refuse.
//
// Cheap on purpose: one reduction per tensor, torch.aminmax (a single pass, no mask, nothing allocated but two
// scalars). Both the minimum and the maximum are finite exactly when every element is: NaN propagates through
// min and max, and a ±inf element is the maximum or the minimum. Unlike a sum it cannot overflow, so a large finite
// tensor (a float16 one sums past 65,504 easily) never pays for the exact count, which only tensors that really hold
// NaN or ±inf do. Cost per dtype, measured: bench/README.md ("NaN/Inf check").
using TorchSharp;

namespace CloudSoup.Engine.Merging;

/// <summary>How many elements of a tensor are NaN and how many ±infinite.</summary>
public sealed record NonFiniteCount(long Nan, long Inf)
{
    public long Total => Nan + Inf;

    public override string ToString() =>
        Nan > 0 && Inf > 0 ? $"{Nan} NaN and {Inf} infinite values" : Nan > 0 ? $"{Nan} NaN value{(Nan == 1 ? "" : "s")}" : $"{Inf} infinite value{(Inf == 1 ? "" : "s")}";
}

/// <summary>One input model's non-finite values in one tensor.</summary>
public sealed record NonFiniteInput(string Model, long Nan, long Inf);

/// <summary>A tensor with non-finite values in some input or in its merged output.</summary>
public sealed record NonFiniteTensor(string Tensor, IReadOnlyList<NonFiniteInput> Inputs, long OutputNan, long OutputInf);

public static class NonFiniteValues
{
    /// <summary>The tensor's NaN and infinite counts, or null when every element is finite (always for integer dtypes).</summary>
    public static NonFiniteCount? Count(torch.Tensor t)
    {
        if (!t.is_floating_point() || t.NumberOfElements == 0) return null;
        using var scope = torch.NewDisposeScope();
        var (min, max) = torch.aminmax(t);
        if (double.IsFinite(min.ToDouble()) && double.IsFinite(max.ToDouble())) return null;
        long nan = torch.count_nonzero(torch.isnan(t)).ToInt64();
        long inf = torch.count_nonzero(torch.isinf(t)).ToInt64();
        return nan + inf == 0 ? null : new NonFiniteCount(nan, inf);
    }
}
