// NaN and infinite values in the tensors a merge reads and writes. A merge propagates them silently (a weighted
// average with one NaN is NaN), so the executor counts them per tensor, per input model and in the output, for the
// report (report.json "nonFinite"), and refuses them when the recipe says nonfinite: refuse.
//
// Cheap on purpose: one sum per tensor. If the sum is finite, every element is (NaN and ±inf propagate through
// addition; +inf + -inf is NaN), so the common case costs one reduction and no mask. Only a non-finite sum (an
// overflow of large finite values, or the real thing) pays for the exact count.
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
        // 16-bit sums would overflow at 65,504 (float16) long before any value is infinite: accumulate in float32.
        var sum = t.dtype is torch.ScalarType.Float16 or torch.ScalarType.BFloat16 ? t.sum(type: torch.ScalarType.Float32) : t.sum();
        if (double.IsFinite(sum.ToDouble())) return null;
        long nan = torch.isnan(t).sum().ToInt64();
        long inf = torch.isinf(t).sum().ToInt64();
        return nan + inf == 0 ? null : new NonFiniteCount(nan, inf);
    }
}
