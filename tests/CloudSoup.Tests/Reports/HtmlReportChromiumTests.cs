using System.Diagnostics;
using System.Text.RegularExpressions;
using CloudSoup.Tests.Soups;
using CloudSoup.Tests.Support;
using Xunit.Abstractions;

namespace CloudSoup.Tests.Reports;

/// <summary>
/// report.html rendered by a real headless Chromium: the plots must be there as non-empty PNG data URIs and the
/// browser must decode them. Skipped (with a message) only when chromium is not installed; ./run-tests installs it.
/// </summary>
public partial class HtmlReportChromiumTests(ITestOutputHelper output)
{
    [GeneratedRegex("<img[^>]*id=\"(?<id>[^\"]+)\"[^>]*src=\"data:image/png;base64,(?<data>[A-Za-z0-9+/=]*)\"")]
    private static partial Regex DataUriImage();

    internal static string? FindChromium() =>
        new[] { "chromium", "chromium-browser", "google-chrome" }
            .SelectMany(n => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, n)))
            .FirstOrDefault(File.Exists);

    [ChromiumFact]
    public async Task Greedy_soup_report_shows_its_plots_in_chromium()
    {
        var chromium = FindChromium();
        using var dir = new TempDir();
        SoupTests.WriteIngredients(dir);
        await SoupTests.RunAsync(dir, SoupTests.Recipe("greedy_soup"));
        var html = await File.ReadAllTextAsync(dir["out/report.html"]);
        Assert.Contains("Greedy soup", html);
        Assert.Contains("the best ingredient", html);

        // A probe script (added to a copy only) records what the browser decoded once the page has loaded.
        // It also records each image's caption (the element before it), the page's font and whether the browser has it.
        var probe = html.Replace("</body>", "<script>window.addEventListener('load',()=>{const b=document.body;" +
            "b.setAttribute('data-decoded',[...document.images].map(i=>i.id+':'+i.naturalWidth+'x'+i.naturalHeight+':'+i.width+'x'+i.height).join(' '));" +
            "b.setAttribute('data-captions',[...document.images].map(i=>i.id+'='+(i.previousElementSibling&&i.previousElementSibling.tagName)).join(' '));" +
            "b.setAttribute('data-font',getComputedStyle(b).fontFamily.split(',')[0].replace(/\"/g,''));" +
            "b.setAttribute('data-font-available',document.fonts.check('16px \"DejaVu Sans\"'));" +
            "b.setAttribute('data-recipe-open',document.getElementById('recipe-resolved').open)});</script></body>");
        await File.WriteAllTextAsync(dir["probe.html"], probe);
        var dom = RunChromium(chromium!, dir, "--dump-dom", new Uri(dir["probe.html"]).AbsoluteUri);

        var images = DataUriImage().Matches(dom).ToDictionary(m => m.Groups["id"].Value, m => Convert.FromBase64String(m.Groups["data"].Value));
        Assert.Equal(["plot-accuracy", "plot-difference", "plot-trajectory"], images.Keys.Order());
        foreach (var (id, png) in images)
        {
            Assert.True(png.Length > 1000, $"{id} is only {png.Length} bytes");
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        }
        var decoded = Regex.Match(dom, "data-decoded=\"(?<v>[^\"]*)\"").Groups["v"].Value;
        output.WriteLine($"chromium decoded: {decoded}");
        // Drawn at twice the size the page shows them (sharp on high-density screens).
        foreach (var id in images.Keys) Assert.Contains($"{id}:1520x800:760x400", decoded);
        var captions = Regex.Match(dom, "data-captions=\"(?<v>[^\"]*)\"").Groups["v"].Value;
        Assert.Equal("plot-accuracy=FIGCAPTION plot-difference=FIGCAPTION plot-trajectory=FIGCAPTION", captions);
        Assert.Contains("data-font=\"DejaVu Sans\"", dom);   // the page asks for the plots' font ...
        Assert.Contains("data-font-available=\"true\"", dom);   // ... and this browser has it
        Assert.Contains("data-recipe-open=\"false\"", dom);   // the resolved recipe is folded away
        Assert.Contains("<h2 id=\"recipe\">Recipe</h2>", html);
        Assert.DoesNotContain("src=\"http", html);   // self-contained: nothing fetched from elsewhere
    }

    private static string RunChromium(string chromium, TempDir dir, string mode, string url)
    {
        var psi = new ProcessStartInfo(chromium) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                     "--no-first-run", "--disable-dev-shm-usage", "--window-size=1200,3000", $"--user-data-dir={dir["chromium-profile"]}", mode, url })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException("chromium did not finish within 120 s");
        }
        Assert.True(p.ExitCode == 0, $"chromium exited {p.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }
}

/// <summary>A fact that is skipped, saying why, when no chromium binary is on PATH.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (HtmlReportChromiumTests.FindChromium() is null)
            Skip = "chromium is not installed (apt-get install -y chromium; ./run-tests installs it when run as root)";
    }
}
