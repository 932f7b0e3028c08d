// Loss barrier along the linear path θ(λ) = (1−λ)θ_A + λθ_B (Git Re-Basin; Frankle et al. 2020):
// barrier = max_λ [L(λ) − ((1−λ)L(0) + λL(1))] over an evenly spaced grid including both ends, so it is never
// negative (the endpoints score 0); a convex curve gives exactly 0. (The repo's plots use L(λ) − ½(L(0)+L(1)),
// which can go negative; the curve is returned so either can be drawn.)
namespace CloudSoup.Engine.Alignment;

public sealed record InterpolationPoint(double Lambda, double Loss, double Accuracy);

/// <param name="Barrier">Largest excess of the loss over the straight line between the endpoint losses.</param>
/// <param name="AccuracyBarrier">Largest shortfall of the accuracy below the straight line between the endpoint accuracies.</param>
public sealed record LossBarrierResult(IReadOnlyList<InterpolationPoint> Curve, double Barrier, double AccuracyBarrier, double BarrierLambda);

public static class LossBarrier
{
    public const int DefaultPoints = 11;

    /// <summary>λ = 0, 1/(points−1), …, 1.</summary>
    public static double[] Grid(int points = DefaultPoints)
    {
        if (points < 2) throw new ArgumentOutOfRangeException(nameof(points), "the interpolation grid needs at least the two endpoints");
        return Enumerable.Range(0, points).Select(i => i == points - 1 ? 1.0 : (double)i / (points - 1)).ToArray();
    }

    /// <summary>Evaluates <paramref name="evaluate"/> at every grid point, in order, and measures the barrier.</summary>
    public static async Task<LossBarrierResult> MeasureAsync(Func<double, CancellationToken, Task<(double Loss, double Accuracy)>> evaluate,
        int points = DefaultPoints, CancellationToken cancellationToken = default)
    {
        var curve = new List<InterpolationPoint>();
        foreach (double lambda in Grid(points))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (loss, accuracy) = await evaluate(lambda, cancellationToken).ConfigureAwait(false);
            curve.Add(new InterpolationPoint(lambda, loss, accuracy));
        }
        return FromCurve(curve);
    }

    /// <summary>The synchronous form, for pure functions of λ.</summary>
    public static LossBarrierResult Measure(Func<double, (double Loss, double Accuracy)> evaluate, int points = DefaultPoints) =>
        FromCurve(Grid(points).Select(l => { var (loss, acc) = evaluate(l); return new InterpolationPoint(l, loss, acc); }).ToList());

    /// <summary>The barrier of an already evaluated curve whose first point is λ=0 and last is λ=1.</summary>
    public static LossBarrierResult FromCurve(IReadOnlyList<InterpolationPoint> curve)
    {
        if (curve.Count < 2 || curve[0].Lambda != 0 || curve[^1].Lambda != 1)
            throw new ArgumentException("the curve must start at λ=0 and end at λ=1");
        if (curve.Any(p => !double.IsFinite(p.Loss)))
            throw new ArgumentException($"the loss is not finite at λ={curve.First(p => !double.IsFinite(p.Loss)).Lambda}");
        var (l0, l1) = (curve[0].Loss, curve[^1].Loss);
        var (a0, a1) = (curve[0].Accuracy, curve[^1].Accuracy);
        double barrier = double.NegativeInfinity, accBarrier = double.NegativeInfinity, at = 0;
        foreach (var p in curve)
        {
            double excess = p.Loss - ((1 - p.Lambda) * l0 + p.Lambda * l1);
            if (excess > barrier) { barrier = excess; at = p.Lambda; }
            accBarrier = Math.Max(accBarrier, (1 - p.Lambda) * a0 + p.Lambda * a1 - p.Accuracy);
        }
        return new LossBarrierResult(curve, barrier, accBarrier, at);
    }
}
