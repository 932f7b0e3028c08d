using System.Globalization;
using System.Net;
using System.Text;

namespace CloudSoup.Engine.Reports;

/// <summary>report.html: one self-contained page for people.</summary>
public static class HtmlReport
{
    /// <summary>The page's style: the plots' font (ReportStyle), numbers right-aligned, text left-aligned (class l).</summary>
    public static readonly string Css =
        "body{font-family:" + ReportStyle.CssFontFamily + ";margin:2em;max-width:62em;color:#222}" +
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right;vertical-align:top}th{background:#f4f4f4}" +
        "td:first-child,th:first-child,.l{text-align:left}.verdict{font-size:1.2em;margin:1em 0}" +
        "figure{margin:1.5em 0}figcaption{font-weight:bold;margin-bottom:.4em}figure img{display:block;max-width:100%;height:auto}" +
        ".bytes{border-bottom:1px dotted #999;cursor:help}.note{color:#666;font-size:.9em}ul.filters{margin:0;padding-left:1.2em}" +
        "code,pre{font-family:\"DejaVu Sans Mono\",Menlo,Consolas,monospace;font-size:.9em}details{margin:1em 0}summary{cursor:pointer}pre{background:#f8f8f8;border:1px solid #ddd;padding:.8em;overflow:auto;max-height:40em}";

    public static string Render(MergeReport r)
    {
        static string E(string? s) => WebUtility.HtmlEncode(s ?? "");
        static string Pct(double v) => (100 * v).ToString("0.00", CultureInfo.InvariantCulture) + "%";
        var sb = new StringBuilder();
        sb.Append("<!doctype html><html><head><meta charset=\"utf-8\"><title>CloudSoup report ").Append(E(r.JobId ?? r.Name)).Append("</title>")
          .Append("<style>").Append(Css).Append("</style></head><body>");
        sb.Append("<h1>CloudSoup merge report</h1>");
        sb.Append("<p>Method <b>").Append(E(r.Method)).Append("</b>");
        if (r.BaseModel != null) sb.Append(", base <code>").Append(E(r.BaseModel)).Append("</code>");
        sb.Append(", ").Append(r.Inputs.Count).Append(" inputs, finished ").Append(E(r.Finished.ToString("u", CultureInfo.InvariantCulture))).Append(".</p>");
        if (r.Evaluation is { } ev)
        {
            if (ReportVerdict.For(r) is { } verdict) sb.Append("<p class=\"verdict\">").Append(E(verdict)).Append("</p>");
            SoupHtml.AppendPlots(sb, r);
            sb.Append("<h2>Evaluation</h2><table><tr><th>model</th><th>held-out accuracy</th><th>held-out loss</th><th>test accuracy</th></tr>");
            foreach (var m in ev.Ingredients.Append(ev.Merged))
                sb.Append("<tr><td>").Append(m == ev.Merged ? "<b>merged</b>" : E(m.Model)).Append("</td><td>").Append(Pct(m.HeldOut.Accuracy))
                  .Append("</td><td>").Append(m.HeldOut.Loss.ToString("0.0000", CultureInfo.InvariantCulture)).Append("</td><td>")
                  .Append(m.Test is { } t ? Pct(t.Accuracy) : "–").Append("</td></tr>");
            sb.Append("</table>");
        }
        if (r.Soup is { } soup) SoupHtml.AppendSoup(sb, soup);
        if (r.Alignment is { } al) AlignmentPlots.AppendSection(sb, al);
        if (r.ScopeAlignment is { } sc)
        {
            static string F(double v) => v.ToString("0.#####", System.Globalization.CultureInfo.InvariantCulture);
            sb.Append("<h2>Weight scope alignment</h2><p>").Append(E(sc.Fusion)).Append(" fusion of ").Append(sc.Tensors.Count).Append(" layers (")
              .Append(E(sc.Layers)).Append("); every model re-scoped to the target mean/std before merging.</p>")
              .Append("<table><tr><th>layer</th><th>target μ, σ</th>");
            foreach (var m in sc.Models) sb.Append("<th>").Append(E(ReportPlots.ShortName(m))).Append(" μ, σ before → after</th>");
            sb.Append("</tr>");
            foreach (var layer in sc.Tensors.Take(200))
            {
                sb.Append("<tr><td><code>").Append(E(layer.Tensor)).Append("</code></td><td>").Append(F(layer.Target.Mean)).Append(", ").Append(F(layer.Target.Std)).Append("</td>");
                foreach (var m in sc.Models)
                {
                    var s = layer.Models.FirstOrDefault(x => x.Model == m);
                    sb.Append("<td>").Append(s is null ? "–" : $"{F(s.Before.Mean)}, {F(s.Before.Std)} → {F(s.After.Mean)}, {F(s.After.Std)}").Append("</td>");
                }
                sb.Append("</tr>");
            }
            sb.Append("</table>");
            if (sc.Tensors.Count > 200) sb.Append("<p>(first 200 layers; all are in report.json)</p>");
        }
        if (r.BatchNormReset is { } bn)
            sb.Append("<p>BatchNorm running statistics re-estimated on ").Append(bn.Examples).Append(" held-out examples (").Append(E(bn.Method))
              .Append("): ").Append(bn.Tensors.Count).Append(" tensors. The merged model's metrics above use them.</p>");
        if (r.Recipe is { } recipe) RecipeHtml.Append(sb, recipe);
        if (r.Fishers is { Count: > 0 } fishers)
        {
            sb.Append("<h2>Fishers computed in this job</h2><table><tr><th>model</th><th>labels</th><th>examples</th><th>seconds</th><th>written to</th></tr>");
            foreach (var f in fishers)
                sb.Append("<tr><td><code>").Append(E(f.Model)).Append("</code></td><td>").Append(E(f.Labels)).Append("</td><td>").Append(f.Samples)
                  .Append("</td><td>").Append(f.Seconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)).Append("</td><td><code>").Append(E(f.Output)).Append("</code></td></tr>");
            sb.Append("</table>");
        }
        if (r.NonFinite.Count > 0)
        {
            var models = r.NonFinite.SelectMany(t => t.Inputs).Select(i => i.Model).Distinct().ToList();
            sb.Append("<h2>NaN and infinite values</h2><p class=\"verdict\">⚠ ").Append(r.NonFinite.Count)
              .Append(r.NonFinite.Count == 1 ? " tensor holds" : " tensors hold").Append(" NaN or infinite values (count per input model and in the merged output; NaN / ∞).</p>")
              .Append("<table><tr><th>tensor</th>");
            foreach (var m in models) sb.Append("<th>").Append(E(ReportPlots.ShortName(m))).Append("</th>");
            sb.Append("<th>merged</th></tr>");
            foreach (var t in r.NonFinite.Take(200))
            {
                sb.Append("<tr><td><code>").Append(E(t.Tensor)).Append("</code></td>");
                foreach (var m in models)
                    sb.Append("<td>").Append(t.Inputs.FirstOrDefault(i => i.Model == m) is { } c ? $"{c.Nan} / {c.Inf}" : "–").Append("</td>");
                sb.Append("<td>").Append(t.OutputNan + t.OutputInf > 0 ? $"{t.OutputNan} / {t.OutputInf}" : "–").Append("</td></tr>");
            }
            sb.Append("</table>");
            if (r.NonFinite.Count > 200) sb.Append("<p>(first 200 tensors; all are in report.json)</p>");
        }
        sb.Append("<h2>Inputs</h2><ul>");
        foreach (var i in r.Inputs) sb.Append("<li><code>").Append(E(i.Model)).Append("</code> (").Append(ByteCount.Html(i.Bytes)).Append(")</li>");
        sb.Append("</ul><h2>Outputs</h2><ul>");
        foreach (var o in r.Outputs) sb.Append("<li><code>").Append(E(o)).Append("</code></li>");
        sb.Append("</ul>");
        if (r.ModelFiles is { Notes.Count: > 0 } mf)
        {
            // What the output folder lacks to load like a Hugging Face model, and why (e.g. a lone .safetensors input has no config.json).
            sb.Append("<h2>Model files</h2><ul>");
            foreach (var n in mf.Notes) sb.Append("<li>").Append(E(n)).Append("</li>");
            sb.Append("</ul>");
        }
        sb.Append("<h2>Timings</h2><table><tr><th>phase</th><th>seconds</th></tr>");
        foreach (var (phase, s) in r.PhaseSeconds) sb.Append("<tr><td>").Append(E(phase)).Append("</td><td>").Append(s.ToString("0.000", CultureInfo.InvariantCulture)).Append("</td></tr>");
        sb.Append("</table><p>").Append(r.TensorsMerged).Append(" tensors merged, ").Append(r.TensorsCopied).Append(" copied; ")
          .Append(ByteCount.Html(r.BytesRead)).Append(" read, ").Append(ByteCount.Html(r.BytesWritten)).Append(" written; device ").Append(E(r.Device)).Append(".</p>");
        if (r.Parallelism is { } par)
        {
            sb.Append("<h2>Parts</h2><p>").Append(par.Parts).Append(par.Parts == 1 ? " part" : " parts");
            if (par.Note != null) sb.Append(": ").Append(E(par.Note));
            sb.Append("</p>");
            if (par.PartDetails.Count > 0)
            {
                sb.Append("<table><tr><th>part</th><th>work</th><th>worker</th><th>files</th><th>read</th><th>written</th><th>seconds</th><th>attempts</th></tr>");
                foreach (var p in par.PartDetails)
                    sb.Append("<tr><td>").Append(p.Part).Append("</td><td class=l>").Append(E(p.Work ?? "")).Append("</td><td>").Append(E(p.Worker ?? "")).Append("</td><td>").Append(p.Files.Count)
                      .Append("</td><td>").Append(ByteCount.Html(p.BytesRead)).Append("</td><td>").Append(ByteCount.Html(p.BytesWritten))
                      .Append("</td><td>").Append(p.Seconds.ToString("0.000", CultureInfo.InvariantCulture)).Append("</td><td>").Append(p.Attempts).Append("</td></tr>");
                sb.Append("</table>");
            }
        }
        foreach (var w in r.Warnings) sb.Append("<p>⚠ ").Append(E(w)).Append("</p>");
        sb.Append("</body></html>");
        return sb.ToString();
    }
}
