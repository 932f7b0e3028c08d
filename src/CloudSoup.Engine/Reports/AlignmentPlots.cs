// The alignment section of report.html: per aligned model, the loss and accuracy along the linear path from the
// reference, as trained ("naive") and after permutation alignment, drawn with ScottPlot and embedded as PNG
// data URIs so the page stays one self-contained file; plus the matching objective per sweep.
using System.Globalization;
using System.Net;
using System.Text;
using CloudSoup.Engine.Alignment;

namespace CloudSoup.Engine.Reports;

public static class AlignmentPlots
{
    private static string F(double v, string fmt = "0.0000") => v.ToString(fmt, CultureInfo.InvariantCulture);

    public static void AppendSection(StringBuilder sb, AlignmentReport a)
    {
        static string E(string? s) => WebUtility.HtmlEncode(s ?? "");
        sb.Append("<h2>Alignment</h2><p>").Append(E(a.Method)).Append(" (spec <code>").Append(E(a.Spec)).Append("</code>, ")
          .Append(a.Permutations.Count).Append(" permutations) to <code>").Append(E(a.Reference)).Append("</code> in ")
          .Append(F(a.Seconds, "0.00")).Append(" s.</p>");
        sb.Append("<table><tr><th>model</th><th>sweeps</th><th>units moved</th><th>objective start → end</th><th>barrier naive</th><th>barrier aligned</th><th>midpoint acc. naive</th><th>midpoint acc. aligned</th></tr>");
        foreach (var m in a.Models.Where(m => !m.IsReference))
        {
            sb.Append("<tr><td>").Append(E(m.Model)).Append("</td><td>").Append(m.Sweeps).Append("</td><td>").Append(m.UnitsMoved).Append("</td><td>")
              .Append(m.Objective.Count > 0 ? $"{F(m.Objective[0], "0.###")} → {F(m.Objective[^1], "0.###")}" : "–").Append("</td>");
            if (m.Path is { } p)
                sb.Append("<td>").Append(F(p.Naive.Barrier)).Append("</td><td>").Append(F(p.Aligned.Barrier)).Append("</td><td>")
                  .Append(F(100 * Midpoint(p.Naive).Accuracy, "0.00")).Append("%</td><td>").Append(F(100 * Midpoint(p.Aligned).Accuracy, "0.00")).Append("%</td>");
            else sb.Append("<td>–</td><td>–</td><td>–</td><td>–</td>");
            sb.Append("</tr>");
        }
        sb.Append("</table>");
        foreach (var w in a.Warnings) sb.Append("<p>⚠ ").Append(E(w)).Append("</p>");
        int n = 0;
        foreach (var m in a.Models.Where(m => !m.IsReference))
        {
            n++;
            if (m.Path is { } p)
            {
                sb.Append("<h3>Path ").Append(E(a.Reference)).Append(" → ").Append(E(m.Model)).Append("</h3>");
                HtmlFigure.Append(sb, $"plot-path-loss-{n}", $"Held-out loss along the linear path from {ReportPlots.ShortName(a.Reference)} (λ = 0) to {ReportPlots.ShortName(m.Model)} (λ = 1)",
                    PathPlot(p, loss: true, m.Model), Width, Height);
                HtmlFigure.Append(sb, $"plot-path-accuracy-{n}", "Held-out accuracy along the same path (the axis starts at 0)",
                    PathPlot(p, loss: false, m.Model), Width, Height);
            }
            if (m.Objective.Count > 1)
                HtmlFigure.Append(sb, $"plot-objective-{n}", $"Weight-matching objective Σ⟨W_ref, π(W)⟩ after each sweep, {ReportPlots.ShortName(m.Model)} to {ReportPlots.ShortName(a.Reference)}",
                    ObjectivePlot(m), Width, ObjectiveHeight);
        }
    }

    private const int Width = 640, Height = 360, ObjectiveHeight = 300;

    /// <summary>The curve point closest to λ = 0.5.</summary>
    public static InterpolationPoint Midpoint(LossBarrierResult r) => r.Curve.MinBy(p => Math.Abs(p.Lambda - 0.5))!;

    /// <summary>The y range of a path plot: from 0 (accuracy up to 100 %, loss up to its largest value, padded).</summary>
    public static (double Lo, double Hi) PathAxis(AlignmentPath path, bool loss) =>
        loss ? (0, Math.Max(1e-6, path.Naive.Curve.Concat(path.Aligned.Curve).Max(c => c.Loss)) * 1.08) : (0, 102);

    public static byte[] PathPlot(AlignmentPath path, bool loss, string model) => ReportStyle.Png(PathFigure(path, loss, model), Width, Height);

    public static ScottPlot.Plot PathFigure(AlignmentPath path, bool loss, string model)
    {
        var plt = ReportStyle.NewPlot();
        var items = new List<ScottPlot.LegendItem>();
        foreach (var (curve, label, color) in new[] { (path.Naive, "naive (as trained)", ReportStyle.IngredientHeldOut), (path.Aligned, "aligned", ReportStyle.MergedHeldOut) })
        {
            var xs = curve.Curve.Select(c => c.Lambda).ToArray();
            var ys = curve.Curve.Select(c => loss ? c.Loss : 100 * c.Accuracy).ToArray();
            var s = plt.Add.Scatter(xs, ys, color);
            s.LineWidth = 2;
            s.MarkerSize = 6;
            items.Add(new ScottPlot.LegendItem { LabelText = label, LineColor = color, LineWidth = 2, MarkerShape = ScottPlot.MarkerShape.FilledCircle, MarkerColor = color, MarkerSize = 6, LabelFontName = ReportStyle.FontName });
        }
        var (lo, hi) = PathAxis(path, loss);
        plt.Axes.SetLimits(-0.03, 1.03, lo, hi);
        plt.XLabel("λ (0 = reference, 1 = " + ReportPlots.ShortName(model) + ")");
        plt.YLabel(loss ? "cross-entropy" : "accuracy (%)");
        ReportStyle.LegendBelow(plt, items);
        return plt;
    }

    public static byte[] ObjectivePlot(AlignedModel m)
    {
        var plt = ReportStyle.NewPlot();
        var s = plt.Add.Scatter(Enumerable.Range(0, m.Objective.Count).Select(i => (double)i).ToArray(), m.Objective.ToArray(), ReportStyle.IngredientHeldOut);
        s.LineWidth = 2;
        double lo = Math.Min(0, m.Objective.Min()), hi = Math.Max(0, m.Objective.Max());
        plt.Axes.SetLimits(-0.3, m.Objective.Count - 0.7, lo - (lo < 0 ? 0.08 * (hi - lo) : 0), hi + 0.08 * Math.Max(hi - lo, 1e-6));
        plt.XLabel("sweep (0 = identity permutation)");
        plt.YLabel("objective");
        return ReportStyle.Png(plt, Width, ObjectiveHeight);
    }
}
