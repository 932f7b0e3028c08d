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
        if (r.Evaluation is { Ingredients.Count: > 0 } ev)
            Img(sb, ReportPlots.IngredientBars(ev, r.Soup?.Method ?? "merged"), "accuracy of the ingredients and the merged model", "plot-accuracy");
        if (r.Soup is { Steps.Count: > 1 } soup)
            Img(sb, ReportPlots.Trajectory(soup), $"{soup.Method} search trajectory", "plot-trajectory");
    }

    public static void AppendSoup(StringBuilder sb, SoupReport soup)
    {
        static string E(string? s) => WebUtility.HtmlEncode(s ?? "");
        static string Pct(double v) => (100 * v).ToString("0.00", CultureInfo.InvariantCulture) + "%";
        sb.Append("<h2>Soup</h2><p>").Append(E(soup.Rule)).Append(". Held-out accuracy of the soup: <b>").Append(Pct(soup.HeldOutAccuracy))
          .Append("</b>; ").Append(soup.CandidatesEvaluated).Append(" candidates evaluated in memory (").Append(soup.MemoryBytes.ToString("N0", CultureInfo.InvariantCulture))
          .Append(" of ").Append(soup.MemoryBudgetBytes.ToString("N0", CultureInfo.InvariantCulture)).Append(" bytes budget).</p>");
        sb.Append("<table><tr><th>ingredient (best first)</th><th>held-out accuracy</th><th>coefficient</th></tr>");
        foreach (var i in soup.Ingredients)
            sb.Append("<tr><td>").Append(i.Used ? "" : "<s>").Append(E(i.Model)).Append(i.Used ? "" : "</s>").Append("</td><td>").Append(Pct(i.HeldOutAccuracy))
              .Append("</td><td>").Append(i.Coefficient.ToString("0.000", CultureInfo.InvariantCulture)).Append("</td></tr>");
        sb.Append("</table>");
        if (soup.Steps.Count == 0) return;
        sb.Append("<h3>Search steps</h3><table><tr><th>step</th><th>action</th><th>model</th><th>held-out accuracy</th><th>held-out loss</th><th>accepted</th><th>soup size</th></tr>");
        foreach (var s in soup.Steps)
            sb.Append("<tr><td>").Append(s.Step).Append("</td><td>").Append(E(s.Action)).Append("</td><td>").Append(E(s.Model ?? "–")).Append("</td><td>")
              .Append(Pct(s.HeldOutAccuracy)).Append("</td><td>").Append(s.HeldOutLoss.ToString("0.0000", CultureInfo.InvariantCulture)).Append("</td><td>")
              .Append(s.Accepted ? "yes" : "no").Append("</td><td>").Append(s.Size).Append("</td></tr>");
        sb.Append("</table>");
    }

    private static void Img(StringBuilder sb, byte[] png, string alt, string id) =>
        sb.Append("<p><img id=\"").Append(id).Append("\" alt=\"").Append(WebUtility.HtmlEncode(alt)).Append("\" width=\"760\" height=\"380\" src=\"").Append(ReportPlots.DataUri(png)).Append("\"></p>");
}
