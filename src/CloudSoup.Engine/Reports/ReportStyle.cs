// One look for report.html and the plots inside it. ScottPlot draws text with SkiaSharp, which only knows the
// fonts installed on the machine that renders the report; the page is read elsewhere, in a browser with its own
// fonts. Both name DejaVu Sans first (docker/worker.Dockerfile installs it: the .NET runtime images have no fonts,
// and without any font ScottPlot draws no text at all), and the page falls back to Verdana, whose shapes and widths
// DejaVu Sans (a Bitstream Vera derivative) follows, so a reader without DejaVu sees the page close to the plots.
using ScottPlot;
using SkiaSharp;

namespace CloudSoup.Engine.Reports;

public static class ReportStyle
{
    /// <summary>The font every plot asks SkiaSharp for.</summary>
    public const string FontName = "DejaVu Sans";

    /// <summary>The page's CSS font stack: the plots' font first, then a look-alike, then the browser's sans-serif.</summary>
    public const string CssFontFamily = "\"DejaVu Sans\", Verdana, \"Bitstream Vera Sans\", sans-serif";

    /// <summary>Every colour in the plots has a legend entry; the page's table headers use the same names.</summary>
    public static readonly Color IngredientHeldOut = Color.FromHex("#4682B4");   // steel blue
    public static readonly Color IngredientTest = Color.FromHex("#9CC8E8");
    public static readonly Color MergedHeldOut = Color.FromHex("#D9650B");      // dark orange
    public static readonly Color MergedTest = Color.FromHex("#F7B36B");
    public static readonly Color Zero = Color.FromHex("#444444");

    /// <summary>The family SkiaSharp actually draws with when asked for <see cref="FontName"/> (another one when it is not installed), or null when the machine has no font at all.</summary>
    public static string? RenderedFontFamily()
    {
        if (!SKFontManager.Default.FontFamilies.Any()) return null;
        using var typeface = SKFontManager.Default.MatchFamily(FontName);
        return typeface?.FamilyName ?? Fonts.Default;
    }

    /// <summary>A line for the report's warnings when the plots cannot be drawn in <see cref="FontName"/>, else null.</summary>
    public static string? FontWarning() => RenderedFontFamily() switch
    {
        null => $"no fonts are installed where this report was rendered, so its plots have no text; install {FontName} (Debian/Ubuntu: fonts-dejavu-core)",
        FontName => null,
        var other => $"{FontName} is not installed where this report was rendered; its plots use {other} (Debian/Ubuntu: fonts-dejavu-core)",
    };

    /// <summary>A plot whose every text (ticks, labels, legend, bar values) uses <see cref="FontName"/>.</summary>
    public static Plot NewPlot()
    {
        var plot = new Plot();
        plot.Font.Set(FontName);
        plot.Legend.FontName = FontName;
        return plot;
    }

    /// <summary>A legend below the data area, items side by side, so it never covers a bar or a point.</summary>
    public static void LegendBelow(Plot plot, IEnumerable<LegendItem> items)
    {
        plot.Legend.ManualItems.Clear();
        plot.Legend.ManualItems.AddRange(items);
        plot.Legend.DisplayPlottableLegendItems = false;
        plot.Legend.Orientation = Orientation.Horizontal;
        plot.Legend.ShadowColor = Colors.Transparent;
        plot.Legend.OutlineColor = Color.FromHex("#cccccc");
        plot.ShowLegend(Edge.Bottom);
    }

    /// <summary>Pixels per CSS pixel: plots are drawn at twice the size the page shows them, so they stay sharp on high-density screens.</summary>
    public const int PixelDensity = 2;

    /// <summary>The plot as PNG, <paramref name="width"/> × <paramref name="height"/> CSS pixels at <see cref="PixelDensity"/>.</summary>
    public static byte[] Png(Plot plot, int width, int height)
    {
        plot.ScaleFactor = PixelDensity;
        return plot.GetImageBytes(width * PixelDensity, height * PixelDensity, ImageFormat.Png);
    }

    public static LegendItem Swatch(string label, Color color) => new() { LabelText = label, FillColor = color, LabelFontName = FontName };
}
