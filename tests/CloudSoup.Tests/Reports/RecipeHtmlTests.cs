using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Reports;

namespace CloudSoup.Tests.Reports;

/// <summary>report.html's Recipe section: every model with its parameters as the recipe means them, the global parameters, the rest, and the resolved recipe itself.</summary>
public class RecipeHtmlTests
{
    internal const string Ties = """
        merge_method: ties
        base_model: base.safetensors
        models:
          - model: a.safetensors
            parameters:
              weight: [0.2, 0.5, 0.8]
              density: [{filter: self_attn, value: 0.5}, {filter: mlp, value: [0.3, 0.9]}, {value: 0.7}]
          - model: b.safetensors
            parameters: {weight: 0.3}
        parameters: {normalize: true, lambda: 0.9}
        output: {shard_size: 2GB}
        """;

    private static string Render(JsonObject recipe)
    {
        var sb = new StringBuilder();
        RecipeHtml.Append(sb, recipe);
        return sb.ToString();
    }

    [Fact]
    public void Models_and_their_parameters_are_spelled_out()
    {
        var recipe = RecipeParser.Parse(Ties);
        var html = Render(RecipeJson.ToJson(recipe));
        Assert.Contains("<h2 id=\"recipe\">Recipe</h2>", html);
        Assert.Contains("<b>ties</b>", html);
        Assert.Contains("<code>base.safetensors</code>", html);
        // One row per model, one column per parameter any model sets; a model without one shows a dash.
        var models = html[html.IndexOf("<table id=\"recipe-models\">", StringComparison.Ordinal)..];
        models = models[..(models.IndexOf("</table>", StringComparison.Ordinal) + 8)];
        Assert.Equal(3, models.Split("<tr>").Length - 1);
        Assert.Contains("<th class=\"l\"><code>weight</code></th>", models);
        Assert.Contains("<th class=\"l\"><code>density</code></th>", models);
        Assert.Contains("0.2 → 0.5 → 0.8 <span class=\"note\"", models);                 // a gradient
        Assert.Contains("(gradient over the layers)", models);
        Assert.Contains("<li>tensors containing <code>self_attn</code>: 0.5</li>", models);   // a filter list, in order
        Assert.Contains("<li>tensors containing <code>mlp</code>: 0.3 → 0.9", models);
        Assert.Contains("<li>any other tensor: 0.7</li>", models);
        Assert.Contains("(the first matching filter wins)", models);
        Assert.Contains("<tr><td><code>b.safetensors</code></td><td class=\"l\">–</td><td class=\"l\">0.3</td></tr>", models);   // density, weight
        // Global parameters and the other settings, byte sizes in human units.
        Assert.Contains("<tr><td><code>normalize</code></td><td class=\"l\">true</td></tr>", html);
        Assert.Contains("<tr><td><code>lambda</code></td><td class=\"l\">0.9</td></tr>", html);
        Assert.Contains("<tr><td><code>output.shard_size</code></td><td class=\"l\"><span class=\"bytes\" title=\"2,000,000,000 bytes\">2.00 GB</span></td></tr>", html);
        // The resolved recipe, exactly as recipe.resolved.json holds it, escaped, folded away.
        Assert.Contains("<details id=\"recipe-resolved\"><summary>Resolved recipe (recipe.resolved.json)</summary><pre>"
                        + WebUtility.HtmlEncode(RecipeJson.ToJsonString(recipe)) + "</pre></details>", html);
    }

    [Fact]
    public void Slices_list_each_source_with_its_layers()
    {
        var recipe = RecipeParser.Parse("""
            merge_method: linear
            slices:
              - sources:
                  - {model: a.safetensors, layer_range: [0, 2], parameters: {weight: 0.7}}
                  - {model: b.safetensors, layer_range: [0, 2], parameters: {weight: 0.3}}
            """);
        var html = Render(RecipeJson.ToJson(recipe));
        Assert.Contains("<h3>Slices</h3>", html);
        Assert.Contains("<td class=\"l\"><code>a.safetensors</code></td><td>0–2 (end excluded)</td><td class=\"l\">0.7</td>", html);
        Assert.Contains("<td class=\"l\"><code>b.safetensors</code></td><td>0–2 (end excluded)</td><td class=\"l\">0.3</td>", html);
    }

    [Fact]
    public void Nothing_from_the_recipe_reaches_the_page_unescaped()
    {
        const string hostile = "<script>alert(1)</script>";
        var recipe = new JsonObject
        {
            ["merge_method"] = "linear",
            ["base_model"] = hostile,
            ["models"] = new JsonArray(new JsonObject { ["model"] = hostile, ["parameters"] = new JsonObject { [hostile] = new JsonArray(new JsonObject { ["filter"] = hostile, ["value"] = hostile }) } }),
            ["parameters"] = new JsonObject { [hostile] = hostile },
            ["name"] = hostile,
            [hostile] = new JsonObject { [hostile] = hostile },
        };
        var html = Render(recipe);
        Assert.DoesNotContain("<script>", html);
        Assert.Contains("&lt;script&gt;", html);
    }

    [Fact]
    public void A_recipe_without_parameters_says_so()
    {
        var html = Render(RecipeJson.ToJson(RecipeParser.Parse("merge_method: model_stock\nbase_model: base.safetensors\nmodels: [a.safetensors, b.safetensors, c.safetensors]")));
        Assert.Contains("<p>No per-model parameters.</p>", html);
        Assert.Contains("<h3>Global parameters</h3><p>none", html);
    }
}
