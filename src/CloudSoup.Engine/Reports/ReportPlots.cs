// The plots embedded in report.html: rendered with ScottPlot 5 to PNG and inlined as base64 data URIs, so
// the page stays one self-contained file. Titles are the page's captions (SoupHtml), not part of the image, and
// every y-axis includes 0: absolute accuracies start at 0, and differences small enough to need a closer look are
// drawn as differences (percentage points against the best ingredient), around a visible zero line.
using System.Globalization;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Soups;
using ScottPlot;

namespace CloudSoup.Engine.Reports;

public static class ReportPlots
{
    public const int Width = 760, Height = 400;

    public static string DataUri(byte[] png) => "data:image/png;base64," + Convert.ToBase64String(png);

    public static string ShortName(string model)
    {
        var name = model.TrimEnd('/');
        name = name[(name.LastIndexOfAny(['/', '\\']) + 1)..];
        return name.EndsWith(".safetensors", StringComparison.Ordinal) ? name[..^".safetensors".Length] : name;
    }

    private static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>"+0.60", "−1.25", "0.00": a difference in percentage points with its sign.</summary>
    public static string SignedPoints(double points) =>
        Math.Round(points, 2) == 0 ? "0.00" : (points > 0 ? "+" : "−") + F(Math.Abs(points), "0.00");

    /// <summary>The ingredient a practitioner without the test set would call best: highest held-out accuracy (ReportVerdict uses the same).</summary>
    public static ModelEvaluation BestIngredient(EvaluationReport ev) => ev.Ingredients.OrderByDescending(i => i.HeldOut.Accuracy).First();

    /// <summary>The colours of the evaluation bars: ingredients in blues, the merged model in oranges, test lighter than held-out.</summary>
    public static (BarSeries HeldOut, BarSeries Test) Series(bool merged, string mergedLabel) => merged
        ? (new BarSeries(mergedLabel + ", held-out", ReportStyle.MergedHeldOut), new BarSeries(mergedLabel + ", test", ReportStyle.MergedTest))
        : (new BarSeries("ingredients, held-out", ReportStyle.IngredientHeldOut), new BarSeries("ingredients, test", ReportStyle.IngredientTest));

    /// <summary>
    /// Accuracy (%) of every ingredient and of the merged model, held-out and (when every model has one) test side by
    /// side, on an axis from 0 with room above the tallest bar for its value.
    /// </summary>
    public static BarChart AccuracyChart(EvaluationReport ev, string mergedLabel) =>
        Chart(ev, mergedLabel, m => 100 * m.Accuracy, v => F(v, "0.00"), values =>
        {
            double top = Math.Max(values.DefaultIfEmpty(0).Max(), 1) * 1.08;
            return (0, top, Enumerable.Range(0, 11).Select(i => i * 10.0).Where(t => t <= top).ToList());
        }, "accuracy (%)");

    /// <summary>
    /// Each model's accuracy minus the best ingredient's (by held-out accuracy), in percentage points, on held-out
    /// and test: the close-up of <see cref="AccuracyChart"/>, on an axis that always includes 0.
    /// </summary>
    public static BarChart DifferenceChart(EvaluationReport ev, string mergedLabel)
    {
        var best = BestIngredient(ev);
        return Chart(ev, mergedLabel, null, SignedPoints, values =>
        {
            double lo = Math.Min(0, values.Min()), hi = Math.Max(0, values.Max());
            double pad = Math.Max(hi - lo, 0.1) * 0.15;
            return (lo - (lo < 0 ? pad : 0), hi + pad, null);
        }, "difference (percentage points)", best);
    }

    private static BarChart Chart(EvaluationReport ev, string mergedLabel, Func<Metrics, double>? value, Func<double, string> label,
        Func<IReadOnlyList<double>, (double Lo, double Hi, IReadOnlyList<double>? Ticks)> axis, string yLabel, ModelEvaluation? baseline = null)
    {
        var models = ev.Ingredients.Append(ev.Merged).ToList();
        bool hasTest = models.All(m => m.Test != null) && (baseline is null || baseline.Test != null);
        double V(Metrics m, Metrics? b) => value?.Invoke(m) ?? 100 * (m.Accuracy - b!.Accuracy);
        var bars = new List<ChartBar>();
        var categories = new List<(double, string)>();
        for (int i = 0; i < models.Count; i++)
        {
            bool merged = i == models.Count - 1;
            var (heldOut, test) = Series(merged, mergedLabel);
            double offset = hasTest ? BarChart.BarWidth / 2 : 0;
            double h = V(models[i].HeldOut, baseline?.HeldOut);
            bars.Add(new ChartBar(i - offset, h, label(h), heldOut));
            if (hasTest)
            {
                double t = V(models[i].Test!, baseline?.Test);
                bars.Add(new ChartBar(i + offset, t, label(t), test));
            }
            categories.Add((i, merged ? mergedLabel : ShortName(models[i].Model)));
        }
        var (lo, hi, ticks) = axis(bars.Select(b => b.Value).ToList());
        return new BarChart(bars, categories, lo, hi, yLabel, ticks);
    }

    public static byte[] IngredientBars(EvaluationReport ev, string mergedLabel) => AccuracyChart(ev, mergedLabel).ToPng(Width, Height);

    public static byte[] IngredientDifferences(EvaluationReport ev, string mergedLabel) => DifferenceChart(ev, mergedLabel).ToPng(Width, Height);

    /// <summary>The y range of <see cref="Trajectory"/>: the steps' differences to the best ingredient and 0 (the best ingredient's line), padded.</summary>
    public static (double Lo, double Hi) TrajectoryAxis(SoupReport soup)
    {
        double best = soup.Ingredients.Max(i => i.HeldOutAccuracy);
        var ys = soup.Steps.Select(s => 100 * (s.HeldOutAccuracy - best)).Append(0).ToList();
        double lo = ys.Min(), hi = ys.Max(), pad = Math.Max(hi - lo, 0.1) * 0.15;
        return (lo - pad, hi + pad);
    }

    /// <summary>
    /// Held-out accuracy after each step of a greedy/pruned/learned search, as the difference to the best ingredient
    /// (percentage points; the dashed line at 0 is the best ingredient), each point labelled with its accuracy.
    /// </summary>
    public static byte[] Trajectory(SoupReport soup) => ReportStyle.Png(TrajectoryPlot(soup), Width, Height);

    public static Plot TrajectoryPlot(SoupReport soup)
    {
        var plot = ReportStyle.NewPlot();
        double best = soup.Ingredients.Max(i => i.HeldOutAccuracy);
        double[] xs = soup.Steps.Select((s, i) => (double)i).ToArray();
        double[] ys = soup.Steps.Select(s => 100 * (s.HeldOutAccuracy - best)).ToArray();
        plot.Add.HorizontalLine(0, 1.5f, ReportStyle.Zero, LinePattern.Dashed);
        var line = plot.Add.Scatter(xs, ys, ReportStyle.IngredientHeldOut);
        line.MarkerSize = 6;
        var accepted = soup.Steps.Select((s, i) => (s, i)).Where(x => x.s.Accepted).ToList();
        var marks = plot.Add.ScatterPoints(accepted.Select(x => (double)x.i).ToArray(), accepted.Select(x => ys[x.i]).ToArray(), ReportStyle.MergedHeldOut);
        marks.MarkerSize = 11;
        if (soup.Steps.Count <= 16)
            for (int i = 0; i < soup.Steps.Count; i++)
            {
                var text = plot.Add.Text(F(100 * soup.Steps[i].HeldOutAccuracy, "0.00") + "%", xs[i], ys[i]);
                text.LabelFontName = ReportStyle.FontName;
                text.LabelFontSize = 11;
                text.LabelAlignment = ScottPlot.Alignment.LowerCenter;
                text.LabelOffsetY = -8;
            }
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int i = 0; i < soup.Steps.Count; i++)
        {
            var s = soup.Steps[i];
            string label = s.Action switch { "add" => "+" + ShortName(s.Model!), "remove" => "−" + ShortName(s.Model!), "start" => s.Model is null ? "all" : ShortName(s.Model), _ => s.Step.ToString(CultureInfo.InvariantCulture) };
            if (soup.Steps.Count <= 16 || i % (soup.Steps.Count / 10 + 1) == 0) ticks.AddMajor(i, label);
        }
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.Bottom.TickLabelStyle.Rotation = soup.Steps.Count > 5 ? 30 : 0;
        plot.Axes.Bottom.TickLabelStyle.Alignment = soup.Steps.Count > 5 ? ScottPlot.Alignment.MiddleLeft : ScottPlot.Alignment.UpperCenter;
        var (lo, hi) = TrajectoryAxis(soup);
        plot.Axes.SetLimits(-0.5, soup.Steps.Count - 0.5, lo, hi);
        plot.YLabel("difference (percentage points)");
        ReportStyle.LegendBelow(plot,
        [
            new LegendItem { LabelText = "candidate soup at each step", LineColor = ReportStyle.IngredientHeldOut, LineWidth = 1.5f, MarkerShape = MarkerShape.FilledCircle, MarkerColor = ReportStyle.IngredientHeldOut, MarkerSize = 6, LabelFontName = ReportStyle.FontName },
            new LegendItem { LabelText = "step accepted", MarkerShape = MarkerShape.FilledCircle, MarkerColor = ReportStyle.MergedHeldOut, MarkerSize = 11, LineWidth = 0, LabelFontName = ReportStyle.FontName },
            new LegendItem { LabelText = $"best ingredient ({F(100 * best, "0.00")}%)", LineColor = ReportStyle.Zero, LineWidth = 1.5f, LinePattern = LinePattern.Dashed, LabelFontName = ReportStyle.FontName },
        ]);
        return plot;
    }
}
