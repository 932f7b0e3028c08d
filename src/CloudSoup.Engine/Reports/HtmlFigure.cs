using System.Net;
using System.Text;

namespace CloudSoup.Engine.Reports;

/// <summary>A plot in report.html: the title is an HTML caption above the image (the page's font, never clipped), the image a PNG data URI.</summary>
public static class HtmlFigure
{
    public static void Append(StringBuilder sb, string id, string caption, byte[] png, int width, int height) =>
        sb.Append("<figure><figcaption>").Append(WebUtility.HtmlEncode(caption)).Append("</figcaption><img id=\"")
          .Append(id).Append("\" alt=\"").Append(WebUtility.HtmlEncode(caption)).Append("\" width=\"").Append(width).Append("\" height=\"").Append(height)
          .Append("\" src=\"").Append(ReportPlots.DataUri(png)).Append("\"></figure>");
}
