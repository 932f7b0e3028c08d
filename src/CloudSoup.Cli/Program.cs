using System.CommandLine;
using CloudSoup.Cli.Commands;

var root = new RootCommand("CloudSoup: merge neural-network checkpoints (model soups, task arithmetic, ...) locally or as a service on Azure Storage.");
root.Subcommands.Add(MergeCommand.Create());
foreach (var extra in CommandCatalog.Extra()) root.Subcommands.Add(extra);
return await root.Parse(args).InvokeAsync();
