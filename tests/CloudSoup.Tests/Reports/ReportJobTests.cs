using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CloudSoup.Engine.Reports;
using CloudSoup.Tests.Soups;
using CloudSoup.Tests.Support;

namespace CloudSoup.Tests.Reports;

/// <summary>A real job (ties with a gradient and a filter list, evaluated) and what its report.json and report.html say about the recipe and the bytes.</summary>
public partial class ReportJobTests
{
    private const string Recipe = """
        merge_method: ties
        base_model: good0.safetensors
        models:
          - model: good1.safetensors
            parameters:
              weight: [0.2, 0.8]
              density: [{filter: bias, value: 1.0}, {value: 0.5}]
          - model: good2.safetensors
            parameters: {weight: 0.6, density: 0.7}
        parameters: {normalize: true}
        evaluation: {model: 'builtin:mlp', data: heldout.safetensors, test: test.safetensors}
        """;

    [GeneratedRegex(@"\d+ bytes\)")]
    private static partial Regex RawByteCount();

    [GeneratedRegex(@"<code>good1\.safetensors</code> \(<span class=""bytes"" title=""(?<exact>[\d,]+) bytes"">(?<human>[\d.]+ (B|kB))</span>\)")]
    private static partial Regex InputLine();

    [Fact]
    public async Task Report_carries_the_resolved_recipe_and_human_byte_counts()
    {
        using var dir = new TempDir();
        SoupTests.WriteIngredients(dir);
        var report = await SoupTests.RunAsync(dir, Recipe);

        // report.json: the recipe exactly as recipe.resolved.json has it, added next to every key it had before.
        var json = JsonNode.Parse(await File.ReadAllTextAsync(dir["out/report.json"]))!.AsObject();
        var resolved = JsonNode.Parse(await File.ReadAllTextAsync(dir["out/recipe.resolved.json"]));
        Assert.True(JsonNode.DeepEquals(resolved, json["recipe"]), "report.json's recipe differs from recipe.resolved.json");
        foreach (var key in new[] { "method", "baseModel", "inputs", "outputs", "tensorsMerged", "tensorsCopied", "bytesRead", "bytesWritten", "phaseSeconds", "device", "evaluation", "warnings", "methodNotes", "finished" })
            Assert.True(json.ContainsKey(key), $"report.json lost '{key}'");
        Assert.Equal(report.Inputs.Single(i => i.Model == "good1.safetensors").Bytes, json["inputs"]!.AsArray().Single(i => (string?)i!["model"] == "good1.safetensors")!["bytes"]!.GetValue<long>());

        var html = await File.ReadAllTextAsync(dir["out/report.html"]);
        Assert.Contains("<h2 id=\"recipe\">Recipe</h2>", html);
        Assert.Contains("0.2 → 0.8", html);
        Assert.Contains("<li>tensors containing <code>bias</code>: 1</li><li>any other tensor: 0.5</li>", html);
        Assert.Contains("<tr><td><code>normalize</code></td><td class=\"l\">true</td></tr>", html);
        Assert.Contains("<details id=\"recipe-resolved\">", html);
        // Byte counts in units, the exact count in the tooltip; none left raw.
        var input = InputLine().Match(html);
        Assert.True(input.Success, "the input line has no human byte count");
        Assert.Equal(report.Inputs.Single(i => i.Model == "good1.safetensors").Bytes.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), input.Groups["exact"].Value);
        Assert.DoesNotMatch(RawByteCount(), html);
        Assert.Contains("read, <span class=\"bytes\"", html);
        // Plot titles are captions on the page, above their images.
        Assert.Contains("<figure><figcaption>Accuracy of the ingredients and merged (held-out and test; the axis starts at 0)</figcaption><img id=\"plot-accuracy\"", html);
        Assert.Contains("<figure><figcaption>Difference to the best ingredient (", html);
    }

    [Fact]
    public async Task A_report_json_written_before_the_recipe_was_added_still_renders()
    {
        using var dir = new TempDir();
        SoupTests.WriteIngredients(dir);
        await SoupTests.RunAsync(dir, Recipe);
        var json = JsonNode.Parse(await File.ReadAllTextAsync(dir["out/report.json"]))!.AsObject();
        json.Remove("recipe");
        var old = JsonSerializer.Deserialize<MergeReport>(json.ToJsonString(), MergeReport.Json)!;
        Assert.Null(old.Recipe);
        var html = HtmlReport.Render(old);
        Assert.DoesNotContain("id=\"recipe\"", html);
        Assert.Contains("<h2>Evaluation</h2>", html);
        Assert.DoesNotContain("\"recipe\"", System.Text.Encoding.UTF8.GetString(old.ToJsonBytes()));   // and writes none back
    }
}
