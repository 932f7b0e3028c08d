// The plots embedded in report.html: rendered with ScottPlot 5 to PNG and inlined as base64 data URIs, so
// the page stays one self-contained file.
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Soups;
using ScottPlot;

namespace CloudSoup.Engine.Reports;

public static class ReportPlots
{
    private const int Width = 760, Height = 380;

    public static string DataUri(byte[] png) => "data:image/png;base64," + Convert.ToBase64String(png);

    public static string ShortName(string model)
    {
        var name = model.TrimEnd('/');
        name = name[(name.LastIndexOfAny(['/', '\\']) + 1)..];
        return name.EndsWith(".safetensors", StringComparison.Ordinal) ? name[..^".safetensors".Length] : name;
    }

    /// <summary>Accuracy of every ingredient and of the merged model, held-out and (when present) test side by side.</summary>
    public static byte[] IngredientBars(EvaluationReport ev, string mergedLabel)
    {
        var plot = new Plot();
        var models = ev.Ingredients.Append(ev.Merged).ToList();
        bool hasTest = models.All(m => m.Test != null);
        var heldOut = new List<Bar>();
        var test = new List<Bar>();
        double width = hasTest ? 0.4 : 0.8;
        for (int i = 0; i < models.Count; i++)
        {
            bool merged = i == models.Count - 1;
            heldOut.Add(new Bar { Position = i - (hasTest ? 0.2 : 0), Value = 100 * models[i].HeldOut.Accuracy, Size = width, FillColor = merged ? Colors.DarkOrange : Colors.SteelBlue });
            if (hasTest) test.Add(new Bar { Position = i + 0.2, Value = 100 * models[i].Test!.Accuracy, Size = width, FillColor = merged ? Colors.OrangeRed : Colors.LightSkyBlue });
        }
        plot.Add.Bars(heldOut).LegendText = "held-out";
        if (hasTest) plot.Add.Bars(test).LegendText = "test";
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int i = 0; i < models.Count; i++) ticks.AddMajor(i, i == models.Count - 1 ? mergedLabel : ShortName(models[i].Model));
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.Bottom.TickLabelStyle.Rotation = models.Count > 6 ? 30 : 0;
        double lo = Math.Max(0, 100 * models.Min(m => Math.Min(m.HeldOut.Accuracy, m.Test?.Accuracy ?? 1)) - 5);
        plot.Axes.SetLimitsY(lo, 100.5);
        plot.YLabel("accuracy (%)");
        plot.Title("Ingredients vs " + mergedLabel);
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        return plot.GetImageBytes(Width, Height, ImageFormat.Png);
    }

    /// <summary>Held-out accuracy after each step of a greedy/pruned/learned search, against the best ingredient.</summary>
    public static byte[] Trajectory(SoupReport soup)
    {
        var plot = new Plot();
        double[] xs = soup.Steps.Select((s, i) => (double)i).ToArray();
        double[] ys = soup.Steps.Select(s => 100 * s.HeldOutAccuracy).ToArray();
        var line = plot.Add.Scatter(xs, ys);
        line.LegendText = "candidate soup";
        var accepted = soup.Steps.Select((s, i) => (s, i)).Where(x => x.s.Accepted).ToList();
        var marks = plot.Add.Scatter(accepted.Select(x => (double)x.i).ToArray(), accepted.Select(x => 100 * x.s.HeldOutAccuracy).ToArray());
        marks.LineWidth = 0;
        marks.MarkerSize = 10;
        marks.LegendText = "accepted";
        var best = plot.Add.HorizontalLine(100 * soup.Ingredients.Max(i => i.HeldOutAccuracy));
        best.LegendText = "best ingredient";
        best.LinePattern = LinePattern.Dashed;
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int i = 0; i < soup.Steps.Count; i++)
        {
            var s = soup.Steps[i];
            string label = s.Action switch { "add" => "+" + ShortName(s.Model!), "remove" => "−" + ShortName(s.Model!), "start" => s.Model is null ? "all" : ShortName(s.Model), _ => s.Step.ToString() };
            if (soup.Steps.Count <= 16 || i % (soup.Steps.Count / 10 + 1) == 0) ticks.AddMajor(i, label);
        }
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.Bottom.TickLabelStyle.Rotation = soup.Steps.Count > 5 ? 30 : 0;
        plot.YLabel("held-out accuracy (%)");
        plot.Title($"{soup.Method}: search trajectory");
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        return plot.GetImageBytes(Width, Height, ImageFormat.Png);
    }
}
