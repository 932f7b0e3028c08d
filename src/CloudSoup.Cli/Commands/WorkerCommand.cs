using CloudSoup.Worker.Hosting;
using System.CommandLine;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Worker.Queue;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Cli.Commands;

/// <summary>
/// <c>cloudsoup worker [--once]</c>: the queue worker alone, the container's entry point. With --once it handles
/// at most one message and exits 0 (also when the queue is empty), the shape of a Container Apps job execution.
/// </summary>
internal static class WorkerCommand
{
    public static Command Create()
    {
        var storage = ServiceCommandSupport.StorageOption();
        var once = new Option<bool>("--once") { Description = "Process at most one message, then exit 0 (exit 0 at once when the queue is empty)" };
        var cmd = new Command("worker", "Run a queue worker: take merge jobs from the merge-jobs queue and run them.") { storage, once };
        cmd.SetAction((parse, ct) => ServiceCommandSupport.RunAsync(() => RunAsync(parse.GetValue(storage), parse.GetValue(once), ct)));
        return cmd;
    }

    private static async Task<int> RunAsync(string? storage, bool once, CancellationToken ct)
    {
        var options = ServiceCommandSupport.Options(storage);
        options.Validate();
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.Logging.AddFilter("System.Net.Http", LogLevel.Warning);
        builder.Services.AddCloudSoupWorker(options, LocalServices.Evaluator);
        if (!once) builder.Services.AddHostedService(sp => sp.GetRequiredService<QueueWorker>());
        using var host = builder.Build();
        await host.Services.GetRequiredService<StorageClients>().EnsureCreatedAsync(ct);

        if (once)
        {
            bool handled = await host.Services.GetRequiredService<JobProcessor>().ProcessNextAsync(ct);
            Console.Error.WriteLine(handled ? "handled one message" : $"queue {options.JobsQueue} is empty");
            return 0;
        }
        await host.RunAsync(ct);
        return 0;
    }
}
