using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using CloudSoup.Control.Configuration;

namespace CloudSoup.Worker.Queue;

/// <summary>The worker process: one job at a time, sleeping IdlePollInterval when the queue is empty. Scale by adding processes.</summary>
public sealed class QueueWorker(JobProcessor processor, StorageClients storage, ILogger<QueueWorker> log) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        log.LogInformation("worker {Worker} reading queue {Queue}", processor.WorkerId, storage.Options.JobsQueue);
        while (!stoppingToken.IsCancellationRequested)
        {
            bool handled;
            try
            {
                handled = await processor.ProcessNextAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                log.LogWarning("worker loop error: {Error}", e.Message);
                handled = false;
            }
            if (handled) continue;
            try { await Task.Delay(storage.Options.IdlePollInterval, stoppingToken).ConfigureAwait(false); }
            catch (OperationCanceledException) { break; }
        }
    }
}
