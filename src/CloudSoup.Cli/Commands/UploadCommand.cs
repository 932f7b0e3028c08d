using System.CommandLine;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Storage;
using CloudSoup.Worker.Storage;

namespace CloudSoup.Cli.Commands;

/// <summary><c>cloudsoup upload PATH... --to container/prefix/ [--storage CS]</c>: drop local files into the service's storage.</summary>
internal static class UploadCommand
{
    public static Command Create()
    {
        var paths = new Argument<string[]>("paths") { Description = "Local files or folders (a folder keeps its name and relative paths, e.g. a sharded checkpoint)", Arity = ArgumentArity.OneOrMore };
        var to = new Option<string>("--to")
        {
            Description = "Destination: container/prefix/ (e.g. checkpoints/my-exp/, recipes/, eval/my-exp/), or container/name for one file",
            Required = true,
        };
        var storage = ServiceCommandSupport.StorageOption();
        var cmd = new Command("upload", "Upload checkpoints, drop manifests (soup.yaml), recipes or evaluation data into the service's storage; manifests and recipes go last, so the job they start finds its inputs.")
            { paths, to, storage };
        cmd.SetAction((parse, ct) => ServiceCommandSupport.RunAsync(() => RunAsync(parse.GetValue(paths)!, parse.GetValue(to)!, parse.GetValue(storage), ct)));
        return cmd;
    }

    private static async Task<int> RunAsync(string[] paths, string to, string? storage, CancellationToken ct)
    {
        var options = ServiceCommandSupport.Options(storage);
        if (!ServiceCommandSupport.HasStorage(options))
            throw new InvalidOperationException("no storage: pass --storage CONNECTION_STRING or set CloudSoupStorage (`cloudsoup dev` prints the one for its Azurite)");
        var uploader = new BlobUploader(new StorageClients(options));
        var plan = uploader.Plan(paths, to);
        long total = plan.Sum(p => new FileInfo(p.LocalPath).Length);
        Console.Out.WriteLine($"uploading {plan.Count} file(s), {total / 1e6:0.0} MB ...");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        // Synchronous, so the per-file lines come in upload order (System.Progress posts them to the thread pool); on stdout with the rest.
        await uploader.UploadAsync(plan, new ProgressRelay<UploadedBlob>(u => Console.Out.WriteLine($"  {u.Blob}  {u.Bytes / 1e6:0.0} MB")), ct);
        Console.Out.WriteLine($"done in {sw.Elapsed.TotalSeconds:0.0} s");
        return 0;
    }
}
