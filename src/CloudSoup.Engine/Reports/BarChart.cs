// A grouped bar chart as data, before ScottPlot draws it: what ReportPlots shows (values, colours, legend, axis
// range) can be checked without reading pixels, and every colour a bar has is explained by the legend.
using ScottPlot;

namespace CloudSoup.Engine.Reports;

/// <summary>One kind of bar (e.g. "ingredients, held-out"): its colour and its legend text.</summary>
public sealed record BarSeries(string Legend, Color Color);

/// <param name="Label">The value as printed above (or, for a negative bar, below) the bar.</param>
public sealed record ChartBar(double Position, double Value, string Label, BarSeries Series);

/// <param name="Categories">Tick position and text under each group of bars.</param>
/// <param name="YTicks">Explicit y ticks, or null for ScottPlot's automatic ones.</param>
public sealed record BarChart(IReadOnlyList<ChartBar> Bars, IReadOnlyList<(double Position, string Text)> Categories,
    double YMin, double YMax, string YLabel, IReadOnlyList<double>? YTicks = null)
{
    public const double BarWidth = 0.4;

    /// <summary>The legend: one entry per series that has a bar, in the order they first appear.</summary>
    public IReadOnlyList<BarSeries> Legend => Bars.Select(b => b.Series).Distinct().ToList();

    public byte[] ToPng(int width, int height) => ReportStyle.Png(ToPlot(), width, height);

    public Plot ToPlot()
    {
        var plot = ReportStyle.NewPlot();
        var bars = plot.Add.Bars(Bars.Select(b => new Bar
        {
            Position = b.Position, Value = b.Value, Size = BarWidth, FillColor = b.Series.Color, LineWidth = 0, Label = b.Label,
        }).ToList());
        bars.ValueLabelStyle.FontName = ReportStyle.FontName;
        bars.ValueLabelStyle.FontSize = 11;
        if (YMin < 0) plot.Add.HorizontalLine(0, 1, ReportStyle.Zero);
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        foreach (var (position, text) in Categories) ticks.AddMajor(position, text);
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.Bottom.TickLabelStyle.Rotation = Categories.Count > 6 ? 30 : 0;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Categories.Count > 6 ? ScottPlot.Alignment.MiddleLeft : ScottPlot.Alignment.UpperCenter;
        if (YTicks is { } yTicks)
        {
            var y = new ScottPlot.TickGenerators.NumericManual();
            foreach (var t in yTicks) y.AddMajor(t, t.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture));
            plot.Axes.Left.TickGenerator = y;
        }
        plot.Axes.SetLimits(Categories.Min(c => c.Position) - 0.6, Categories.Max(c => c.Position) + 0.6, YMin, YMax);
        plot.YLabel(YLabel);
        plot.Grid.XAxisStyle.MajorLineStyle.Width = 0;
        ReportStyle.LegendBelow(plot, Legend.Select(s => ReportStyle.Swatch(s.Legend, s.Color)));
        return plot;
    }
}
