using System.CommandLine;

namespace CloudSoup.Cli.Commands;

/// <summary>The subcommands besides merge (dev, demo, worker, submit, status, eval, ...).</summary>
internal static class CommandCatalog
{
    public static IEnumerable<Command> Extra()
    {
        yield return DevCommand.Create();
        yield return WorkerCommand.Create();
        yield return SubmitCommand.Create();
        yield return UploadCommand.Create();
        yield return StatusCommand.Create();
        yield return DownloadCommand.Create();
        yield return DemoCommand.Create();
        yield return EvalCommand.Create();
        yield return MethodsCommand.Create();
        yield return FisherCommand.Create();
    }
}
