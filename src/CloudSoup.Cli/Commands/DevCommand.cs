using CloudSoup.Worker.Hosting;
using CloudSoup.Cli.Dev;
using System.CommandLine;
using System.Net;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;

namespace CloudSoup.Cli.Commands;

/// <summary>
/// <c>cloudsoup dev</c>: the whole service in one process on this machine: the merge API, the blob drop
/// watcher (standing in for Event Grid) and a queue worker, against Azurite (started here unless a storage
/// connection string is given).
/// </summary>
internal static class DevCommand
{
    public static Command Create()
    {
        var storage = ServiceCommandSupport.StorageOption();
        var port = new Option<int>("--port", "-p") { Description = "Port for the API on 127.0.0.1 (0 picks a free one)", DefaultValueFactory = _ => 7071 };
        var noWorker = new Option<bool>("--no-worker") { Description = "Run the API and the drop watcher only (start workers with `cloudsoup worker`)" };
        var bind = new Option<string>("--bind") { Description = "Address to listen on (0.0.0.0 to serve beyond this machine, e.g. in the standalone host container)", DefaultValueFactory = _ => "127.0.0.1" };
        var cmd = new Command("dev", "Run the CloudSoup service locally: API + blob intake + worker, on Azurite unless --storage is given.") { storage, port, noWorker, bind };
        cmd.SetAction((parse, ct) => ServiceCommandSupport.RunAsync(() => RunAsync(parse.GetValue(storage), parse.GetValue(port), parse.GetValue(noWorker), parse.GetValue(bind)!, ct)));
        return cmd;
    }

    private static async Task<int> RunAsync(string? storage, int port, bool noWorker, string bind, CancellationToken ct)
    {
        var options = ServiceCommandSupport.Options(storage);
        if (!IPAddress.TryParse(bind, out var address))
        {
            Console.Error.WriteLine($"error: --bind '{bind}' is not an IP address");
            return 2;
        }
        AzuriteProcess? azurite = null;
        if (!ServiceCommandSupport.HasStorage(options))
        {
            Console.Error.WriteLine("starting Azurite (in memory; everything is gone when dev stops) ...");
            azurite = await AzuriteProcess.StartAsync(ct: ct);
            options.ConnectionString = azurite.ConnectionString;
        }
        try
        {
            await using var host = await CloudSoupHost.StartAsync(options, new CloudSoupHostOptions
            {
                Address = address,
                Port = port,
                RunWatcher = true,
                ExtraServices = noWorker ? null : s => s.AddCloudSoupWorkerHostedService(options, LocalServices.Evaluator),
            }, ct);
            PrintHelp(host.Url, options, azurite != null);
            await host.WaitForShutdownAsync(ct);
            return 0;
        }
        catch (IOException e) when (e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
        {
            Console.Error.WriteLine($"error: port {port} is in use; pick another with --port (0 = any free port)");
            return 1;
        }
        finally
        {
            if (azurite != null) await azurite.DisposeAsync();
        }
    }

    private static void PrintHelp(Uri url, CloudSoupOptions o, bool ownAzurite)
    {
        string api = url.ToString().TrimEnd('/');
        string cs = o.ConnectionString ?? "(identity-based storage)";
        Console.WriteLine($"""

            CloudSoup dev is running{(ownAzurite ? " on its own Azurite" : "")}. Ctrl+C stops it.

              API          {api}/api/merges
              storage      {cs}

            Submit a recipe (model references are blob paths, e.g. {o.CheckpointsContainer}/my-exp/a.safetensors):
              ./cloudsoup submit recipe.yaml --api {api}
              curl -X POST --data-binary @recipe.yaml {api}/api/merges

            Or drop files into storage (checked every {o.WatchInterval.TotalSeconds:0.#} s, the local stand-in for Event Grid):
              export CloudSoupStorage='{cs}'
              ./cloudsoup upload a.safetensors b.safetensors soup.yaml --to {o.CheckpointsContainer}/my-exp/
                (soup.yaml names files in the same folder, e.g. models: [a.safetensors, b.safetensors]; the job starts once all are there)
              ./cloudsoup upload my-merge.yaml --to {o.RecipesContainer}/
              (or az storage blob upload --connection-string "$CloudSoupStorage" -c CONTAINER -n NAME -f FILE)

            Follow jobs:   ./cloudsoup status --api {api}        ./cloudsoup status ID --wait --api {api}
            Outputs land in {o.MergedContainer}/<job-id>/<attempt>/ (model, report.json, report.html), listed by the job's "outputs";
            report: {api}/api/merges/<job-id>/report
            """);
    }
}
