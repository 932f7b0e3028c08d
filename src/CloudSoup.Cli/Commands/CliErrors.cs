using System.CommandLine;
using CloudSoup.Control.Errors;

namespace CloudSoup.Cli.Commands;

/// <summary>Turns failures into one line on stderr and an exit code: 2 for bad input, 1 for anything else.</summary>
internal static class CliErrors
{
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (CloudSoupException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return e.IsRetriable ? 1 : 2;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("error: cancelled");
            return 130;
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (UnauthorizedAccessException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    /// <summary>Options people type that the CLI spells otherwise.</summary>
    private static readonly Dictionary<string, string> KnownMisspellings = new(StringComparer.OrdinalIgnoreCase)
    {
        ["--cuda"] = "--device cuda", ["--gpu"] = "--device cuda", ["--cpu"] = "--device cpu", ["--output"] = "--out",
    };

    /// <summary>
    /// A command line that does not parse: one line per problem on stderr (no wall of help text), a suggestion for
    /// an unknown option when one is close, where to find the usage, and exit code 2.
    /// </summary>
    public static int ParseErrors(ParseResult parsed)
    {
        var command = parsed.CommandResult.Command;
        var names = command.Options.SelectMany(o => o.Aliases.Append(o.Name)).Where(n => n.StartsWith('-')).Distinct().ToList();
        foreach (var error in parsed.Errors)
            Console.Error.WriteLine($"error: {error.Message.TrimEnd('.')}");
        var subcommands = command.Subcommands.Select(c => c.Name).ToList();
        foreach (var token in parsed.UnmatchedTokens)
        {
            string? hint = KnownMisspellings.TryGetValue(token, out var known) && names.Contains(known.Split(' ')[0]) ? known
                : Suggestions.Closest(token, token.StartsWith('-') ? names : subcommands);
            if (hint != null) Console.Error.WriteLine($"       did you mean {hint}?");
        }
        string path = command is RootCommand ? "cloudsoup" : $"cloudsoup {command.Name}";
        Console.Error.WriteLine($"       usage: {path} --help");
        return 2;
    }
}
