// The local stand-in for the Event Grid blob trigger (Azurite has no Event Grid): lists the recipes and
// checkpoints containers every WatchInterval, remembers each blob's ETag, and hands new or changed blobs
// to BlobIntake. Blobs already there when the watcher starts count as new, like a first container scan.
using Azure;
using CloudSoup.Control.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Control.Intake;

public sealed class BlobDropWatcher(StorageClients storage, BlobIntake intake, ILogger<BlobDropWatcher> log) : BackgroundService
{
    private readonly Dictionary<string, ETag> _seen = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _scanLock = new(1, 1);

    /// <summary>One pass over the intake containers; returns what intake did with each new or changed blob.</summary>
    public async Task<IReadOnlyList<IntakeResult>> ScanOnceAsync(CancellationToken ct)
    {
        var results = new List<IntakeResult>();
        await _scanLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            foreach (var name in new[] { storage.Options.RecipesContainer, storage.Options.CheckpointsContainer })
            {
                var container = storage.Container(name);
                var changed = new List<(string Blob, ETag ETag)>();
                try
                {
                    await foreach (var item in container.GetBlobsAsync(cancellationToken: ct).ConfigureAwait(false))
                    {
                        var etag = item.Properties.ETag ?? default;
                        if (!_seen.TryGetValue($"{name}/{item.Name}", out var known) || known != etag) changed.Add((item.Name, etag));
                    }
                }
                catch (RequestFailedException e) when (e.Status == 404)
                {
                    continue; // container not created yet
                }
                // soup.yaml files last, so a folder dropped in one go is checked once with everything in it
                foreach (var (blob, etag) in changed.OrderBy(c => c.Blob.EndsWith("/" + BlobIntake.SoupFileName, StringComparison.Ordinal) ? 1 : 0))
                {
                    try
                    {
                        results.Add(await intake.OnBlobCreatedAsync(name, blob, ct).ConfigureAwait(false));
                        _seen[$"{name}/{blob}"] = etag;
                    }
                    catch (Exception e) when (e is not OperationCanceledException)
                    {
                        log.LogWarning("intake of {Container}/{Blob} failed, will retry: {Error}", name, blob, e.Message);
                    }
                }
            }
        }
        finally
        {
            _scanLock.Release();
        }
        return results;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        log.LogInformation("watching {Recipes}/ and {Checkpoints}/ every {Interval} (local stand-in for the Event Grid blob trigger)",
            storage.Options.RecipesContainer, storage.Options.CheckpointsContainer, storage.Options.WatchInterval);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ScanOnceAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                log.LogWarning("blob scan failed: {Error}", e.Message);
            }
            try { await Task.Delay(storage.Options.WatchInterval, stoppingToken).ConfigureAwait(false); }
            catch (OperationCanceledException) { break; }
        }
    }
}
