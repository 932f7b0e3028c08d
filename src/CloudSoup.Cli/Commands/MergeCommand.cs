using System.CommandLine;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Storage;

namespace CloudSoup.Cli.Commands;

/// <summary><c>cloudsoup merge RECIPE --out DIR</c>: the embedded default, local files only, no cloud.</summary>
internal static class MergeCommand
{
    public static Command Create()
    {
        var recipe = new Argument<FileInfo>("recipe") { Description = "Recipe file (YAML or JSON). Model paths in it are absolute or relative to this file." };
        var output = new Option<DirectoryInfo>("--out", "-o") { Description = "Directory for the merged model (weights, config.json and tokenizer from model folders, README.md model card), report.json and report.html", Required = true };
        var device = new Option<string?>("--device")
        {
            Description = "Where tensors are merged: cpu, cuda, cuda:N or auto (default: $CloudSoup__Device, else cpu). CUDA needs a build with -p:CloudSoupTorchBackend=cuda",
        };
        var cmd = new Command("merge", "Merge local checkpoints with a recipe (no cloud needed).") { recipe, output, device };
        cmd.SetAction((parse, ct) => CliErrors.RunAsync(() => RunAsync(parse.GetValue(recipe)!, parse.GetValue(output)!,
            parse.GetValue(device) ?? Environment.GetEnvironmentVariable("CloudSoup__Device"), ct)));
        return cmd;
    }

    private static async Task<int> RunAsync(FileInfo recipeFile, DirectoryInfo outDir, string? device, CancellationToken ct)
    {
        CloudSoup.Engine.Jobs.ComputeDevice.Resolve(device);   // an unknown or unavailable device fails before anything is read
        if (!recipeFile.Exists) throw CloudSoup.Control.Errors.CloudSoupException.Missing($"recipe file '{recipeFile.FullName}'");
        var recipe = RecipeParser.Parse(await RecipeText.ReadFileAsync(recipeFile.FullName, ct));
        foreach (var w in recipe.Warnings) Console.Error.WriteLine($"warning: {w}");
        var store = new LocalCheckpointStore(recipeFile.DirectoryName!);
        var progress = new ConsoleProgress();
        await using var sink = new LocalDirectorySink(outDir.FullName);
        var runner = new MergeJobRunner(store, LocalServices.Evaluator, device, LocalServices.Models());
        MergeReport report;
        try
        {
            report = await runner.RunAsync(recipe, sink, progress, ct);
        }
        finally
        {
            progress.Finish();   // ends the progress line, so an error message starts on a line of its own
        }
        ReportPrinter.Print(report);
        // What the job found on the way (NaN/Inf values): the recipe's own warnings were printed before it ran.
        foreach (var w in report.Warnings.Except(recipe.Warnings)) Console.Error.WriteLine($"warning: {w}");
        return 0;
    }
}
