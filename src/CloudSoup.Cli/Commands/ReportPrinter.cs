using System.Globalization;
using CloudSoup.Engine.Reports;
using Spectre.Console;

namespace CloudSoup.Cli.Commands;

internal static class ReportPrinter
{
    public static void Print(MergeReport report)
    {
        if (report.Evaluation is { } ev)
        {
            var table = new Table().AddColumn("model").AddColumn(new TableColumn("held-out acc").RightAligned())
                .AddColumn(new TableColumn("held-out loss").RightAligned()).AddColumn(new TableColumn("test acc").RightAligned());
            foreach (var m in ev.Ingredients)
                table.AddRow(Markup.Escape(Short(m.Model)), Pct(m.HeldOut.Accuracy), m.HeldOut.Loss.ToString("0.0000", CultureInfo.InvariantCulture), m.Test is { } t ? Pct(t.Accuracy) : "-");
            table.AddRow($"[bold]merged ({Markup.Escape(report.Method)})[/]", Pct(ev.Merged.HeldOut.Accuracy), ev.Merged.HeldOut.Loss.ToString("0.0000", CultureInfo.InvariantCulture), ev.Merged.Test is { } mt ? Pct(mt.Accuracy) : "-");
            AnsiConsole.Write(table);
        }
        Console.WriteLine($"merged {report.TensorsMerged} tensors ({report.TensorsCopied} copied) from {report.Inputs.Count} models with '{report.Method}' in {report.PhaseSeconds.Values.Sum():0.00} s");
        foreach (var o in report.Outputs) Console.WriteLine($"  {o}");
    }

    private static string Short(string model) => model.TrimEnd('/').Split('/')[^1];

    private static string Pct(double v) => (100 * v).ToString("0.00", CultureInfo.InvariantCulture) + "%";
}
