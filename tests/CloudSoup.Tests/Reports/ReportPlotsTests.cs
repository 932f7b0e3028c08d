using CloudSoup.Engine.Alignment;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Soups;
using ScottPlot;

namespace CloudSoup.Tests.Reports;

/// <summary>
/// What report.html's plots show, checked on the charts as data and on ScottPlot's own render (axis limits it drew,
/// panels it laid out): bars from 0, a legend entry for every colour, the legend outside the data area, and the
/// close-up as a separate difference plot.
/// </summary>
public class ReportPlotsTests
{
    private static ModelEvaluation Model(string name, double heldOut, double? test) =>
        new(name, new Metrics(heldOut, 0.3, 2000), test is { } t ? new Metrics(t, 0.3, 2000) : null);

    /// <summary>Five close ingredients and a merged model 0.6 points better: the case that made a small gain look large.</summary>
    internal static EvaluationReport Close(bool test = true) => new("builtin:mlp", "heldout.safetensors", test ? "test.safetensors" : null,
        [Model("checkpoints/a.safetensors", 0.9345, test ? 0.9185 : null), Model("checkpoints/b.safetensors", 0.9245, test ? 0.906 : null),
         Model("checkpoints/c.safetensors", 0.9405, test ? 0.925 : null)],
        Model("merged", 0.9465, test ? 0.9310 : null));

    private static AxisLimits Rendered(Plot plot)
    {
        plot.GetImageBytes(ReportPlots.Width, ReportPlots.Height, ImageFormat.Png);
        return plot.LastRender.AxisLimits;
    }

    private static void AssertLegendOutsideTheData(Plot plot, int entries)
    {
        Assert.False(plot.Legend.IsVisible);   // the legend inside the data area is off ...
        var panel = Assert.Single(plot.Axes.GetPanels().OfType<ScottPlot.Panels.LegendPanel>());
        Assert.Equal(Edge.Bottom, panel.Edge);   // ... and drawn in a panel below it
        plot.GetImageBytes(ReportPlots.Width, ReportPlots.Height, ImageFormat.Png);
        var layout = plot.LastRender.Layout;
        Assert.True(layout.PanelOffsets[panel] > 0 && layout.PanelSizes[panel] > 0, "the legend panel takes no room below the data area");
        Assert.Equal(entries, plot.Legend.ManualItems.Count);
    }

    [Fact]
    public void Accuracy_bars_start_at_zero_with_room_for_their_values()
    {
        var chart = ReportPlots.AccuracyChart(Close(), "greedy_soup");
        Assert.Equal(0, chart.YMin);
        Assert.True(chart.YMax > chart.Bars.Max(b => b.Value) * 1.05, "no room above the tallest bar for its value");
        Assert.All(chart.YTicks!, t => Assert.InRange(t, 0, 100));
        Assert.Equal(0, Rendered(chart.ToPlot()).Bottom);   // what ScottPlot actually drew
        Assert.Equal(["93.45", "91.85", "92.45", "90.60", "94.05", "92.50", "94.65", "93.10"], chart.Bars.Select(b => b.Label));
        Assert.Equal(["a", "b", "c", "greedy_soup"], chart.Categories.Select(c => c.Text));
    }

    [Theory]
    [InlineData(true, 4)]
    [InlineData(false, 2)]
    public void Every_bar_colour_has_a_legend_entry(bool test, int colours)
    {
        foreach (var chart in new[] { ReportPlots.AccuracyChart(Close(test), "merged"), ReportPlots.DifferenceChart(Close(test), "merged") })
        {
            var barColours = chart.Bars.Select(b => b.Series.Color).Distinct().ToList();
            Assert.Equal(colours, barColours.Count);
            Assert.Equal(barColours.Count, chart.Legend.Count);
            Assert.Equal(chart.Legend.Count, chart.Legend.Select(s => s.Color).Distinct().Count());
            Assert.Equal(chart.Legend.Count, chart.Legend.Select(s => s.Legend).Distinct().Count());
            Assert.Contains(chart.Legend, s => s.Legend == "merged, held-out");
            if (test) Assert.Contains(chart.Legend, s => s.Legend == "merged, test");
            AssertLegendOutsideTheData(chart.ToPlot(), colours);
        }
    }

    [Fact]
    public void The_close_up_is_a_separate_difference_plot_around_zero()
    {
        var chart = ReportPlots.DifferenceChart(Close(), "merged");
        // Best ingredient by held-out accuracy: c (94.05%); merged is +0.60 held-out and +0.60 test (93.10 − 92.50).
        Assert.Equal("difference (percentage points)", chart.YLabel);
        Assert.Equal(["−0.60", "−0.65", "−1.60", "−1.90", "0.00", "0.00", "+0.60", "+0.60"], chart.Bars.Select(b => b.Label));
        Assert.Equal(0.6, chart.Bars[^1].Value, 9);
        Assert.True(chart.YMin < -1.9 && chart.YMax > 0.6, $"axis {chart.YMin}..{chart.YMax} cuts a bar");
        var drawn = Rendered(chart.ToPlot());
        Assert.True(drawn.Bottom < 0 && drawn.Top > 0, "the zero line is off the plot");
    }

    [Fact]
    public void Trajectory_is_drawn_against_the_best_ingredient_with_the_legend_below()
    {
        var soup = new SoupReport("greedy_soup", "add if not worse",
            [new SoupIngredient("a", 0.9405, 0.2, 0.5, true), new SoupIngredient("b", 0.9390, 0.2, 0.5, true)],
            [new SoupStep(0, "start", "a", 0.9405, 0.2, true, 1), new SoupStep(1, "add", "b", 0.9425, 0.2, true, 2)],
            0.9425, 0.2, 1000, 1000, 8L << 30, 2);
        var (lo, hi) = ReportPlots.TrajectoryAxis(soup);
        Assert.True(lo < 0 && hi > 0.2, $"axis {lo}..{hi} leaves out the best ingredient's line (0) or the last step (+0.20)");
        var plot = ReportPlots.TrajectoryPlot(soup);
        AssertLegendOutsideTheData(plot, 3);
        Assert.Contains(plot.Legend.ManualItems, i => i.LabelText == "best ingredient (94.05%)");
    }

    [Fact]
    public void Alignment_path_plots_start_at_zero_with_the_legend_below()
    {
        LossBarrierResult Curve(double dip) => new([new(0, 0.2, 0.94), new(0.5, 0.2 + dip, 0.94 - dip / 2), new(1, 0.2, 0.95)], dip, dip / 2, 0.5);
        var path = new AlignmentPath(Curve(1.2), Curve(0.01));
        foreach (bool loss in new[] { true, false })
        {
            var plot = AlignmentPlots.PathFigure(path, loss, "checkpoints/b.safetensors");
            AssertLegendOutsideTheData(plot, 2);
            Assert.Equal(0, Rendered(plot).Bottom);
        }
        Assert.True(AlignmentPlots.PathAxis(path, loss: true).Hi > 1.4);
        Assert.True(AlignmentPlots.PathAxis(path, loss: false).Hi >= 100);
    }

    [Fact]
    public void Plots_and_page_use_one_font()
    {
        Assert.StartsWith($"\"{ReportStyle.FontName}\"", ReportStyle.CssFontFamily);
        Assert.Contains("font-family:" + ReportStyle.CssFontFamily, HtmlReport.Css);
        var plot = ReportPlots.AccuracyChart(Close(), "merged").ToPlot();
        Assert.Equal(ReportStyle.FontName, plot.Axes.Left.TickLabelStyle.FontName);
        Assert.Equal(ReportStyle.FontName, plot.Axes.Left.Label.FontName);
        Assert.All(plot.Legend.ManualItems, i => Assert.Equal(ReportStyle.FontName, i.LabelFontName));
        // SkiaSharp draws in that family here (fonts-dejavu-core is installed; the worker image installs it too,
        // tests/CloudSoup.Tests/Infra/WorkerFontTests.cs), so the report carries no font warning.
        Assert.Equal(ReportStyle.FontName, ReportStyle.RenderedFontFamily());
        Assert.Null(ReportStyle.FontWarning());
    }
}
