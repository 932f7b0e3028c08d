using CloudSoup.Control.Configuration;
using CloudSoup.Control.Jobs;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Control.Hosting;

/// <summary>
/// Runs the job reconciler every <see cref="CloudSoupOptions.ReconcileInterval"/> in the standalone and dev hosts
/// (the Functions app runs it on a timer instead). Several hosts may run it at once: a pass is idempotent.
/// </summary>
public sealed class ReconcilerService(JobReconciler reconciler, CloudSoupOptions options, ILogger<ReconcilerService> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.ReconcileInterval <= TimeSpan.Zero) return;
        using var timer = new PeriodicTimer(options.ReconcileInterval);
        do
        {
            try
            {
                await reconciler.RunOnceAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                log.LogWarning("reconciler pass failed: {Error}; trying again in {Interval}", e.Message.Split('\n')[0], options.ReconcileInterval);
            }
        }
        while (await WaitAsync(timer, stoppingToken).ConfigureAwait(false));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try { return await timer.WaitForNextTickAsync(ct).ConfigureAwait(false); }
        catch (OperationCanceledException) { return false; }
    }
}
