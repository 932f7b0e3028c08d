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
        foreach (var m in a.Models.Where(m => !m.IsReference))
        {
            if (m.Path is { } p)
            {
                sb.Append("<h3>Path ").Append(E(a.Reference)).Append(" → ").Append(E(m.Model)).Append("</h3>");
                Img(sb, PathPlot(p, loss: true, m.Model), "loss along the interpolation path");
                Img(sb, PathPlot(p, loss: false, m.Model), "accuracy along the interpolation path");
            }
            if (m.Objective.Count > 1) Img(sb, ObjectivePlot(m), "weight-matching objective per sweep");
        }
    }

    /// <summary>The curve point closest to λ = 0.5.</summary>
    public static InterpolationPoint Midpoint(LossBarrierResult r) => r.Curve.MinBy(p => Math.Abs(p.Lambda - 0.5))!;

    private static void Img(StringBuilder sb, byte[] png, string alt) =>
        sb.Append("<p><img alt=\"").Append(alt).Append("\" src=\"data:image/png;base64,").Append(Convert.ToBase64String(png)).Append("\"></p>");

    public static byte[] PathPlot(AlignmentPath path, bool loss, string model)
    {
        var plt = new ScottPlot.Plot();
        foreach (var (curve, label) in new[] { (path.Naive, "naive"), (path.Aligned, "aligned") })
        {
            var xs = curve.Curve.Select(c => c.Lambda).ToArray();
            var ys = curve.Curve.Select(c => loss ? c.Loss : 100 * c.Accuracy).ToArray();
            var s = plt.Add.Scatter(xs, ys);
            s.LegendText = label;
        }
        plt.Title($"{(loss ? "loss" : "accuracy")}: reference → {model}");
        plt.XLabel("λ (0 = reference, 1 = model)");
        plt.YLabel(loss ? "cross-entropy" : "accuracy (%)");
        plt.ShowLegend();
        return plt.GetImageBytes(560, 360, ScottPlot.ImageFormat.Png);
    }

    public static byte[] ObjectivePlot(AlignedModel m)
    {
        var plt = new ScottPlot.Plot();
        var s = plt.Add.Scatter(Enumerable.Range(0, m.Objective.Count).Select(i => (double)i).ToArray(), m.Objective.ToArray());
        s.LegendText = "Σ⟨W_ref, π(W)⟩";
        plt.Title($"weight-matching objective: {m.Model}");
        plt.XLabel("sweep (0 = identity)");
        plt.YLabel("objective");
        return plt.GetImageBytes(560, 300, ScottPlot.ImageFormat.Png);
    }
}
