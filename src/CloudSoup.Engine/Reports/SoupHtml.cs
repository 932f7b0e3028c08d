using System.Globalization;
using System.Net;
using System.Text;
using CloudSoup.Engine.Soups;

namespace CloudSoup.Engine.Reports;

/// <summary>The soup part of report.html: the plots, the coefficients chosen and the search steps.</summary>
public static class SoupHtml
{
    public static void AppendPlots(StringBuilder sb, MergeReport r)
    {
        string merged = r.Soup?.Method ?? "merged";
        if (r.Evaluation is { Ingredients.Count: > 0 } ev)
        {
            bool test = ev.Ingredients.Append(ev.Merged).All(m => m.Test != null);
            HtmlFigure.Append(sb, "plot-accuracy", $"Accuracy of the ingredients and {merged} ({(test ? "held-out and test" : "held-out")}; the axis starts at 0)",
                ReportPlots.IngredientBars(ev, merged), ReportPlots.Width, ReportPlots.Height);
            HtmlFigure.Append(sb, "plot-difference", $"Difference to the best ingredient ({ReportPlots.ShortName(ReportPlots.BestIngredient(ev).Model)}, chosen on held-out accuracy), in percentage points",
                ReportPlots.IngredientDifferences(ev, merged), ReportPlots.Width, ReportPlots.Height);
        }
        if (r.Soup is { Steps.Count: > 1 } soup)
            HtmlFigure.Append(sb, "plot-trajectory", $"{soup.Method} search: held-out accuracy after each step, as the difference to the best ingredient in percentage points",
                ReportPlots.Trajectory(soup), ReportPlots.Width, ReportPlots.Height);
    }

    public static void AppendSoup(StringBuilder sb, SoupReport soup)
    {
        static string E(string? s) => WebUtility.HtmlEncode(s ?? "");
        static string Pct(double v) => (100 * v).ToString("0.00", CultureInfo.InvariantCulture) + "%";
        sb.Append("<h2>Soup</h2><p>").Append(E(soup.Rule)).Append(". Held-out accuracy of the soup: <b>").Append(Pct(soup.HeldOutAccuracy))
          .Append("</b>; ").Append(soup.CandidatesEvaluated).Append(" candidates evaluated in memory (").Append(ByteCount.Html(soup.MemoryBytes))
          .Append(" of a ").Append(ByteCount.Html(soup.MemoryBudgetBytes)).Append(" budget).</p>");
        sb.Append("<table><tr><th>ingredient (best first)</th><th>held-out accuracy</th><th>coefficient</th></tr>");
        foreach (var i in soup.Ingredients)
            sb.Append("<tr><td>").Append(i.Used ? "" : "<s>").Append(E(i.Model)).Append(i.Used ? "" : "</s>").Append("</td><td>").Append(Pct(i.HeldOutAccuracy))
              .Append("</td><td>").Append(i.Coefficient.ToString("0.000", CultureInfo.InvariantCulture)).Append("</td></tr>");
        sb.Append("</table>");
        if (soup.Steps.Count == 0) return;
        sb.Append("<h3>Search steps</h3><table><tr><th>step</th><th class=\"l\">action</th><th class=\"l\">model</th><th>held-out accuracy</th><th>held-out loss</th><th>accepted</th><th>soup size</th></tr>");
        foreach (var s in soup.Steps)
            sb.Append("<tr><td>").Append(s.Step).Append("</td><td class=\"l\">").Append(E(s.Action)).Append("</td><td class=\"l\">").Append(E(s.Model ?? "–")).Append("</td><td>")
              .Append(Pct(s.HeldOutAccuracy)).Append("</td><td>").Append(s.HeldOutLoss.ToString("0.0000", CultureInfo.InvariantCulture)).Append("</td><td>")
              .Append(s.Accepted ? "yes" : "no").Append("</td><td>").Append(s.Size).Append("</td></tr>");
        sb.Append("</table>");
    }
}
