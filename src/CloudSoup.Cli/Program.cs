using System.CommandLine;
using CloudSoup.Cli.Commands;

// Before anything loads libtorch: idle OpenMP threads sleep instead of spinning (OpenMpWaiting).
CloudSoup.Engine.Merging.OpenMpWaiting.PreferPassive();

var root = new RootCommand("CloudSoup: merge neural-network checkpoints (model soups, task arithmetic, ...) locally or as a service on Azure Storage.");
root.Subcommands.Add(MergeCommand.Create());
foreach (var extra in CommandCatalog.Extra()) root.Subcommands.Add(extra);
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0) return CliErrors.ParseErrors(parsed);
int code = await parsed.InvokeAsync();
if (args is ["merge", ..]) FastExit.Now(code);   // skips libtorch's static destructors: everything is written and closed by now
return code;
