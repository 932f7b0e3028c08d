using CloudSoup.Engine.Reports;

namespace CloudSoup.Tests.Infra;

/// <summary>
/// The worker renders report.html's plots with SkiaSharp, which draws text only in installed fonts. The .NET
/// runtime images carry none (github.com/dotnet/dotnet-docker, src/runtime-deps/10.0/noble/*/Dockerfile, installs no font package), and with no
/// font at all ScottPlot draws every label blank, so each worker image must install the font ReportStyle asks for.
/// </summary>
public class WorkerFontTests
{
    [Fact]
    public void Every_worker_image_installs_the_font_the_report_plots_ask_for()
    {
        Assert.Equal("DejaVu Sans", ReportStyle.FontName);   // the family Debian/Ubuntu's fonts-dejavu-core provides
        var dockerfile = Dockerfile.Parse(InfraRepo.PathOf("docker/worker.Dockerfile"));
        foreach (var variant in dockerfile.FinalVariants())
        {
            var runs = variant.Chain.SelectMany(s => s.Instructions).Where(i => i.Keyword == "RUN").Select(i => i.Arguments);
            Assert.True(runs.Any(r => System.Text.RegularExpressions.Regex.IsMatch(r, @"apt-get\s+install\b.*\bfonts-dejavu(-core)?\b")),
                $"worker.Dockerfile ({variant.Name}) installs no fonts-dejavu-core: the report's plots would have no text");
        }
    }
}
