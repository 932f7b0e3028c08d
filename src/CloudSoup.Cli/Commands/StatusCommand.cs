using System.CommandLine;
using System.Globalization;
using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Api;
using CloudSoup.Control.Jobs;
using Spectre.Console;

namespace CloudSoup.Cli.Commands;

/// <summary><c>cloudsoup status [ID] [--api URL] [--wait]</c>: one job, or the newest jobs; --wait follows a job to its end.</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var id = new Argument<string?>("id") { Description = "Job id (omit to list the newest jobs)", Arity = ArgumentArity.ZeroOrOne };
        var api = ServiceCommandSupport.ApiOption();
        var wait = new Option<bool>("--wait", "-w") { Description = "Poll until the job succeeds or fails, showing its phase and progress; exit 0 if it succeeded, 1 if it failed" };
        var apiKey = ServiceCommandSupport.ApiKeyOption();
        var cmd = new Command("status", "Show a merge job (or list jobs) from a running CloudSoup API.") { id, api, wait, apiKey };
        cmd.SetAction((parse, ct) => ServiceCommandSupport.RunAsync(() => RunAsync(parse.GetValue(id), parse.GetValue(api), parse.GetValue(wait), parse.GetValue(apiKey), ct)));
        return cmd;
    }

    private static async Task<int> RunAsync(string? id, string? api, bool wait, string? apiKey, CancellationToken ct)
    {
        using var client = new ApiClient(ServiceCommandSupport.Api(api), ServiceCommandSupport.ApiKey(apiKey));
        if (id is null)
        {
            if (wait)
            {
                Console.Error.WriteLine("error: --wait needs a job id");
                return 2;
            }
            PrintList(await client.ListAsync(ct));
            return 0;
        }
        var job = await client.GetAsync(id, ct) ?? throw CloudSoup.Control.Errors.CloudSoupException.Missing($"job '{id}'");
        if (wait)
        {
            var progress = new ConsoleProgress();
            while (!JobStatus.IsFinished(job.Status))
            {
                progress.Report(new JobProgress(job.Phase is { } phase && JobPhase.All.Contains(phase) ? phase : JobPhase.Queued, job.Progress, job.Status == JobStatus.Queued && job.LastError != null ? $"retrying after: {job.LastError}" : null));
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
                job = await client.GetAsync(id, ct) ?? throw CloudSoup.Control.Errors.CloudSoupException.Missing($"job '{id}'");
            }
            progress.Finish();
        }
        Print(job, ServiceCommandSupport.Api(api));
        return job.Status == JobStatus.Failed ? 1 : 0;
    }

    private static void Print(JobView j, Uri api)
    {
        foreach (var line in Lines(j, api)) Console.WriteLine(line);
    }

    /// <summary>What `status ID` prints for <paramref name="j"/>, a line each: the job, each part of a split job, the files.</summary>
    /// <param name="api">The API's base address: the report link is printed in full, ready to open.</param>
    internal static IEnumerable<string> Lines(JobView j, Uri api)
    {
        yield return $"job       {j.Id}";
        yield return $"status    {j.Status}{(j.Phase != null && !JobStatus.IsFinished(j.Status) ? $" ({j.Phase}, {j.Progress * 100:0}%)" : "")}";
        if (j.Name != null || j.Method != null) yield return $"recipe    {j.Name ?? "(unnamed)"} [{j.Method}]";
        if (j.Source != null) yield return $"source    {j.Source}";
        yield return $"created   {j.Created.ToLocalTime():yyyy-MM-dd HH:mm:ss}";
        if (j.Started is { } s) yield return $"started   {s.ToLocalTime():yyyy-MM-dd HH:mm:ss}";
        if (j.Finished is { } f) yield return $"finished  {f.ToLocalTime():yyyy-MM-dd HH:mm:ss}";
        if (j.Attempts > 1) yield return $"attempts  {j.Attempts}";
        if (j.Requeues > 0) yield return $"resent    {j.Requeues} time{(j.Requeues == 1 ? "" : "s")} by the reconciler (a lost message or a vanished worker)";
        if (j.Error != null) yield return $"error     {j.Error}";
        foreach (var p in j.Parts ?? [])
            yield return $"part {p.Part,-4} {p.Status}{(p.Phase != null && !JobStatus.IsFinished(p.Status) ? $" ({p.Phase}, {p.Progress * 100:0}%)" : "")}, " +
                              (p.Work ?? $"{p.Shards} shard{(p.Shards == 1 ? "" : "s")}") + $", {Bytes(p.InputBytes)} in" +
                              (p.Worker != null ? $", {p.Worker}" : "") + (p.Status == JobStatus.Succeeded ? $", {Bytes(p.BytesWritten)} out in {p.Seconds:0.0} s" : "") +
                              (p.Attempts > 1 ? $", attempts {p.Attempts}" : "") + (p.Resends > 0 ? $", resent {p.Resends}" : "") + (p.LastError != null && p.Status != JobStatus.Succeeded ? $", last error: {p.LastError}" : "");
        // The files with their sizes where the API lists them; the raw output paths from an API that predates them.
        if (j.Files is { Count: > 0 } files)
            foreach (var file in files) yield return $"file      {file.Name}  {(file.Size is { } size ? Bytes(size) : "(missing)")}";
        else
            foreach (var o in j.Outputs) yield return $"output    {o}";
        if (j.Status == JobStatus.Succeeded) yield return $"report    {new Uri(api, j.Links.Report.TrimStart('/'))}";
        if (j.Status == JobStatus.Succeeded) yield return $"download  cloudsoup download {j.Id} --out DIR{(api.ToString().TrimEnd('/') == ServiceCommandSupport.DefaultApi ? "" : $" --api {api}")}";
    }

    private static string Bytes(long bytes) => CloudSoup.Cli.Download.JobDownloader.Bytes(bytes);

    private static void PrintList(IReadOnlyList<JobView> jobs)
    {
        if (jobs.Count == 0)
        {
            Console.WriteLine("no jobs yet");
            return;
        }
        // Ids never wrap (they are copied into `cloudsoup status ID`); the error column takes what width is left.
        var table = new Table().AddColumn(new TableColumn("id").NoWrap()).AddColumn(new TableColumn("status").NoWrap())
            .AddColumn(new TableColumn("phase").NoWrap()).AddColumn(new TableColumn("progress").RightAligned().NoWrap())
            .AddColumn(new TableColumn("created").NoWrap()).AddColumn("method").AddColumn("from").AddColumn("error");
        foreach (var j in jobs)
            table.AddRow(j.Id, j.Status, JobStatus.IsFinished(j.Status) ? "" : j.Phase ?? "",
                JobStatus.IsFinished(j.Status) ? "" : (j.Progress * 100).ToString("0", CultureInfo.InvariantCulture) + "%",
                j.Created.ToLocalTime().ToString("MM-dd HH:mm:ss", CultureInfo.InvariantCulture),
                Markup.Escape(j.Method ?? ""), Markup.Escape(j.Name ?? j.Source ?? ""), Markup.Escape(j.Error ?? ""));
        AnsiConsole.Write(table);
    }
}
