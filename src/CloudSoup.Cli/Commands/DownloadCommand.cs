using System.CommandLine;
using CloudSoup.Cli.Download;
using CloudSoup.Control.Configuration;

namespace CloudSoup.Cli.Commands;

/// <summary>
/// <c>cloudsoup download JOB_ID --out DIR [--api URL | --storage CS]</c>: every file of a succeeded job into DIR,
/// streamed, resumable, each checked against the size (and MD5, when stored) the job lists.
/// </summary>
internal static class DownloadCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "Job id (as `cloudsoup submit` printed it, or from `cloudsoup status`)" };
        var output = new Option<string>("--out", "-o")
        {
            Description = "Folder to write the files into (created if missing). An interrupted download leaves NAME.partial there; running the command again resumes it",
            Required = true,
        };
        var api = ServiceCommandSupport.ApiOption();
        var apiKey = ServiceCommandSupport.ApiKeyOption();
        var storage = ServiceCommandSupport.StorageOption();
        storage.Description = "Read the job record and its blobs straight from this storage account (a connection string) instead of through an API";
        var cmd = new Command("download", "Download every output file of a succeeded merge job (the model or its shards and index, the files written beside it, the reports, the resolved recipe) from a running CloudSoup API, or straight from storage with --storage.")
            { id, output, api, apiKey, storage };
        cmd.SetAction((parse, ct) => ServiceCommandSupport.RunAsync(() =>
            RunAsync(parse.GetValue(id)!, parse.GetValue(output)!, parse.GetValue(api), parse.GetValue(apiKey), parse.GetValue(storage), ct)));
        return cmd;
    }

    private static async Task<int> RunAsync(string id, string outDir, string? api, string? apiKey, string? storage, CancellationToken ct)
    {
        using IJobFileSource source = storage != null
            ? new StorageFileSource(new StorageClients(ServiceCommandSupport.Options(storage)))
            : new ApiFileSource(new ApiClient(ServiceCommandSupport.Api(api), ServiceCommandSupport.ApiKey(apiKey)));
        IReadOnlyList<DownloadedFile> files;
        using (var progress = new ConsoleProgress())
            files = await new JobDownloader(source).DownloadAsync(id, outDir, progress, ct);
        // The per-file lines were the progress display's; this is the one line a script may read.
        Console.Out.WriteLine($"{files.Count} file(s), {JobDownloader.Bytes(files.Sum(f => f.Size))}, in {Path.GetFullPath(outDir)}");
        return 0;
    }
}
