using CloudSoup.Engine.Alignment;

namespace CloudSoup.Tests.Alignment;

public class LossBarrierTests
{
    [Fact]
    public void Barrier_of_a_bump_over_a_sloped_chord()
    {
        // L(λ) = 1 + λ + 2·sin(πλ): chord from 1 to 2, excess 2·sin(πλ), largest (2) at λ = 0.5.
        // Accuracy 0.9 − 0.4·sin(πλ) has a shortfall of 0.4 at the midpoint.
        var r = LossBarrier.Measure(l => (1 + l + 2 * Math.Sin(Math.PI * l), 0.9 - 0.4 * Math.Sin(Math.PI * l)));
        Assert.Equal(11, r.Curve.Count);
        Assert.Equal(2.0, r.Barrier, 12);
        Assert.Equal(0.5, r.BarrierLambda, 12);
        Assert.Equal(0.4, r.AccuracyBarrier, 12);
        Assert.Equal(0.0, r.Curve[0].Lambda);
        Assert.Equal(1.0, r.Curve[^1].Lambda);
        Assert.Equal(1 + 0.3 + 2 * Math.Sin(0.3 * Math.PI), r.Curve[3].Loss, 12);
    }

    [Fact]
    public void Convex_path_has_zero_barrier()
    {
        var r = LossBarrier.Measure(l => (Math.Pow(l - 0.3, 2), 1.0), points: 25);
        Assert.Equal(25, r.Curve.Count);
        Assert.Equal(0.0, r.Barrier, 12);
    }

    [Fact]
    public async Task Async_form_visits_every_grid_point_in_order()
    {
        var seen = new List<double>();
        var r = await LossBarrier.MeasureAsync(async (l, ct) => { await Task.Yield(); seen.Add(l); return (l * (1 - l), 0.5); }, points: 5);
        Assert.Equal(new[] { 0, 0.25, 0.5, 0.75, 1 }, seen);
        Assert.Equal(0.25, r.Barrier, 12);
    }

    [Fact]
    public void Non_finite_loss_and_too_few_points_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => LossBarrier.Measure(_ => (0, 0), points: 1));
        var e = Assert.Throws<ArgumentException>(() => LossBarrier.Measure(l => (l == 0.5 ? double.NaN : 0, 0)));
        Assert.Contains("λ=0.5", e.Message);
    }
}
