using CloudSoup.Control.Methods;
using System.CommandLine;
using System.Globalization;
using Spectre.Console;

namespace CloudSoup.Cli.Commands;

/// <summary><c>cloudsoup methods [NAME]</c>: the merge methods a recipe can name, and each one's parameters and defaults.</summary>
internal static class MethodsCommand
{
    public static Command Create()
    {
        var name = new Argument<string?>("name") { Description = "Show one method's parameters", Arity = ArgumentArity.ZeroOrOne };
        var cmd = new Command("methods", "List the merge methods (merge_method values), or one method's parameters and defaults.") { name };
        cmd.SetAction((parse, ct) => CliErrors.RunAsync(() => Task.FromResult(Run(parse.GetValue(name)))));
        return cmd;
    }

    private static int Run(string? name)
    {
        if (name is null)
        {
            var table = new Table().AddColumn("merge_method").AddColumn("base_model").AddColumn("what it does");
            foreach (var m in MethodCatalog.All.OrderBy(m => m.Name, StringComparer.Ordinal))
                table.AddRow(m.Name, Base(m.BaseModel), Markup.Escape(m.Description));
            AnsiConsole.Write(table);
            Console.WriteLine("Details: cloudsoup methods NAME, and docs/methods.md.");
            return 0;
        }
        var method = MethodCatalog.Get(name);
        Console.WriteLine($"{method.Name}: {method.Description}");
        Console.WriteLine($"base_model: {Base(method.BaseModel)}; at least {method.MinModels} model(s)");
        if (method.Parameters.Count == 0)
        {
            Console.WriteLine("no parameters");
            return 0;
        }
        var p = new Table().AddColumn("parameter").AddColumn("level").AddColumn("default").AddColumn("allowed").AddColumn("meaning");
        foreach (var s in method.Parameters)
            p.AddRow(s.Name, s.PerModel ? "per model" : "global", Markup.Escape(s.Required && s.Default is null ? "(required)" : Format(s.Default)),
                Markup.Escape(Allowed(s)), Markup.Escape(s.Help ?? ""));
        AnsiConsole.Write(p);
        return 0;
    }

    private static string Base(BaseModelUse use) => use switch
    {
        BaseModelUse.Required => "required",
        BaseModelUse.Optional => "optional",
        _ => "not used",
    };

    private static string Format(object? value) => value switch
    {
        null => "–",
        double d => d.ToString(CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        _ => value.ToString()!,
    };

    private static string Allowed(ParameterSpec s) => s.Kind switch
    {
        ParameterKind.Bool => "true | false",
        ParameterKind.Reference => "a checkpoint reference",
        ParameterKind.Text => s.Choices is { Count: > 0 } c ? string.Join(" | ", c) : "text",
        _ => (double.IsNegativeInfinity(s.Min) ? "" : (s.MinExclusive ? "> " : ">= ") + s.Min.ToString(CultureInfo.InvariantCulture))
             + (double.IsPositiveInfinity(s.Max) ? "" : (double.IsNegativeInfinity(s.Min) ? "" : ", ") + "<= " + s.Max.ToString(CultureInfo.InvariantCulture)),
    };
}
