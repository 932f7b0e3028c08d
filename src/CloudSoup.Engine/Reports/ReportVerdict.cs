using System.Globalization;
using CloudSoup.Engine.Evaluation;

namespace CloudSoup.Engine.Reports;

/// <summary>The one-line verdict at the top of report.html, e.g. "Greedy soup beats the best ingredient by +0.80 points on test, using 3 of 6."</summary>
public static class ReportVerdict
{
    public static string? For(MergeReport r)
    {
        if (r.Evaluation is not { Ingredients.Count: > 0 } ev) return null;
        // "Best" is chosen on held-out data, as a practitioner without the test set would; the comparison uses test when there is one.
        var best = ev.Ingredients.OrderByDescending(i => i.HeldOut.Accuracy).First();
        bool onTest = ev.Merged.Test != null && best.Test != null;
        double delta = onTest ? ev.Merged.Test!.Accuracy - best.Test!.Accuracy : ev.Merged.HeldOut.Accuracy - best.HeldOut.Accuracy;
        string who = r.Soup is { } soup ? char.ToUpperInvariant(soup.Method[0]) + soup.Method[1..].Replace('_', ' ') : $"The {r.Method} merge";
        string points = (delta >= 0 ? "+" : "−") + Math.Abs(100 * delta).ToString("0.00", CultureInfo.InvariantCulture);
        string verb = delta > 0 ? "beats" : delta == 0 ? "ties" : "trails";
        string line = $"{who} {verb} the best ingredient ({ReportPlots.ShortName(best.Model)}){(delta == 0 ? "" : $" by {points} points")} on {(onTest ? "test" : "held-out")} accuracy";
        if (r.Soup is { } s) line += $", using {s.Ingredients.Count(i => i.Used)} of {s.Ingredients.Count}";
        return line + ".";
    }
}
