// The "Recipe" section of report.html: what was merged and how, read from the resolved recipe as report.json keeps
// it (the content of recipe.resolved.json, RecipeJson's canonical form). Parameters are shown the way the recipe
// means them (docs/methods.md, "Parameter values"): a number, a gradient interpolated over the layers, or a filter
// list whose first matching entry wins. Every key is the recipe's own, so a reader can find it in the recipe.
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace CloudSoup.Engine.Reports;

public static class RecipeHtml
{
    private static readonly string[] SectionKeys = ["merge_method", "base_model", "models", "slices", "parameters"];

    private static string E(string? s) => WebUtility.HtmlEncode(s ?? "");

    public static void Append(StringBuilder sb, JsonObject recipe)
    {
        sb.Append("<h2 id=\"recipe\">Recipe</h2><table class=\"recipe-summary\"><tr><th>method</th><td class=\"l\"><b>").Append(E(Text(recipe["merge_method"]))).Append("</b></td></tr>")
          .Append("<tr><th>base model</th><td class=\"l\">").Append(recipe["base_model"] is { } b ? "<code>" + E(Text(b)) + "</code>" : "none").Append("</td></tr></table>");
        if (recipe["slices"] is JsonArray slices) AppendSlices(sb, slices);
        else if (recipe["models"] is JsonArray models) AppendModels(sb, models);

        sb.Append("<h3>Global parameters</h3>");
        if (recipe["parameters"] is JsonObject { Count: > 0 } global)
        {
            sb.Append("<table id=\"recipe-parameters\"><tr><th>parameter</th><th class=\"l\">value</th></tr>");
            foreach (var (key, value) in global) sb.Append("<tr><td><code>").Append(E(key)).Append("</code></td><td class=\"l\">").Append(Value(value)).Append("</td></tr>");
            sb.Append("</table>");
        }
        else sb.Append("<p>none (every value comes from the models' parameters or the method's defaults)</p>");

        var settings = recipe.Where(kv => !SectionKeys.Contains(kv.Key)).SelectMany(kv => Flatten(kv.Key, kv.Value)).ToList();
        if (settings.Count > 0)
        {
            sb.Append("<h3>Other settings</h3><table id=\"recipe-settings\"><tr><th>key</th><th class=\"l\">value</th></tr>");
            foreach (var (key, html) in settings) sb.Append("<tr><td><code>").Append(E(key)).Append("</code></td><td class=\"l\">").Append(html).Append("</td></tr>");
            sb.Append("</table>");
        }
        sb.Append("<details id=\"recipe-resolved\"><summary>Resolved recipe (recipe.resolved.json)</summary><pre>")
          .Append(E(recipe.ToJsonString(new JsonSerializerOptions { WriteIndented = true }))).Append("</pre></details>");
    }

    private static void AppendModels(StringBuilder sb, JsonArray models)
    {
        var names = models.OfType<JsonObject>().SelectMany(m => m["parameters"] is JsonObject p ? p.Select(kv => kv.Key) : []).Distinct().ToList();
        sb.Append("<h3>Models</h3><table id=\"recipe-models\"><tr><th>model</th>");
        foreach (var n in names) sb.Append("<th class=\"l\"><code>").Append(E(n)).Append("</code></th>");
        sb.Append("</tr>");
        foreach (var m in models.OfType<JsonObject>())
        {
            sb.Append("<tr><td><code>").Append(E(Text(m["model"]))).Append("</code></td>");
            foreach (var n in names)
                sb.Append("<td class=\"l\">").Append(m["parameters"] is JsonObject p && p[n] is { } v ? Value(v) : "–").Append("</td>");
            sb.Append("</tr>");
        }
        sb.Append("</table>");
        if (names.Count == 0) sb.Append("<p>No per-model parameters.</p>");
    }

    private static void AppendSlices(StringBuilder sb, JsonArray slices)
    {
        var sources = slices.OfType<JsonObject>().SelectMany((s, i) => (s["sources"] as JsonArray ?? []).OfType<JsonObject>().Select(src => (Slice: i, Source: src))).ToList();
        var names = sources.SelectMany(x => x.Source["parameters"] is JsonObject p ? p.Select(kv => kv.Key) : []).Distinct().ToList();
        sb.Append("<h3>Slices</h3><table id=\"recipe-models\"><tr><th>slice</th><th class=\"l\">model</th><th>layers</th>");
        foreach (var n in names) sb.Append("<th class=\"l\"><code>").Append(E(n)).Append("</code></th>");
        sb.Append("</tr>");
        foreach (var (slice, src) in sources)
        {
            var range = src["layer_range"] as JsonArray;
            sb.Append("<tr><td>").Append(slice).Append("</td><td class=\"l\"><code>").Append(E(Text(src["model"]))).Append("</code></td><td>")
              .Append(range is { Count: 2 } ? $"{E(Text(range[0]))}–{E(Text(range[1]))} (end excluded)" : "–").Append("</td>");
            foreach (var n in names)
                sb.Append("<td class=\"l\">").Append(src["parameters"] is JsonObject p && p[n] is { } v ? Value(v) : "–").Append("</td>");
            sb.Append("</tr>");
        }
        sb.Append("</table><p>A model's parameters are given on its first source and hold for all its slices.</p>");
    }

    /// <summary>A recipe section as dotted keys (evaluation.batch_size) with readable values; byte sizes in human units.</summary>
    private static IEnumerable<(string Key, string Html)> Flatten(string key, JsonNode? node) => node switch
    {
        JsonObject o => o.SelectMany(kv => Flatten(key + "." + kv.Key, kv.Value)),
        JsonValue v when key.EndsWith("shard_size", StringComparison.Ordinal) && v.TryGetValue(out long bytes) => [(key, ByteCount.Html(bytes))],
        JsonArray a => [(key, string.Join(", ", a.Select(x => x is JsonValue ? Value(x) : "<code>" + E(x?.ToJsonString() ?? "null") + "</code>")))],
        _ => [(key, Value(node))],
    };

    /// <summary>One parameter value in HTML: a number, a gradient (a → b → c over the layers), a filter list, or a step list.</summary>
    public static string Value(JsonNode? node)
    {
        switch (node)
        {
            case null: return "null";
            case JsonValue v:
                return v.GetValueKind() switch
                {
                    JsonValueKind.String => "<code>" + E(v.GetValue<string>()) + "</code>",
                    _ => E(v.ToJsonString()),
                };
            case JsonArray a when a.Count > 0 && a.All(x => x is JsonValue xv && xv.GetValueKind() == JsonValueKind.Number):
                return string.Join(" → ", a.Select(x => E(x!.ToJsonString()))) + " <span class=\"note\" title=\"a gradient: the value is interpolated linearly from the first layer to the last\">(gradient over the layers)</span>";
            case JsonArray a when a.Count > 0 && a.All(x => x is JsonObject xo && xo.ContainsKey("value")):
                var sb = new StringBuilder("<ul class=\"filters\">");
                var entries = a.OfType<JsonObject>().ToList();
                for (int i = 0; i < entries.Count; i++)
                {
                    string? filter = entries[i]["filter"] is JsonValue f && f.GetValueKind() == JsonValueKind.String ? f.GetValue<string>() : null;
                    string which = filter is null or "*" ? (i == 0 ? "any tensor" : "any other tensor") : "tensors containing <code>" + E(filter) + "</code>";
                    sb.Append("<li>").Append(which).Append(": ").Append(Value(entries[i]["value"])).Append("</li>");
                }
                return sb.Append("</ul><span class=\"note\">(the first matching filter wins)</span>").ToString();
            case JsonArray a when a.Count > 0 && a.All(x => x is JsonValue):
                return string.Join(" | ", a.Select(Value)) + " <span class=\"note\" title=\"the layers are split into as many equal runs as there are values\">(steps over the layers)</span>";
            default:
                return "<code>" + E(node.ToJsonString()) + "</code>";
        }
    }

    private static string Text(JsonNode? node) => node switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        null => "",
        _ => node.ToJsonString(),
    };
}
