using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Control.Jobs;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Storage;
using CloudSoup.Worker.Queue;
using CloudSoup.Worker.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Worker.Hosting;

/// <summary>Registers the queue worker and the blob adapters it merges through, over the control plane's parts.</summary>
public static class WorkerServices
{
    public static IServiceCollection AddCloudSoupWorker(this IServiceCollection services, CloudSoupOptions options, IJobEvaluator? evaluator = null)
    {
        if (!services.Any(d => d.ServiceType == typeof(StorageClients))) services.AddCloudSoupControlPlane(options);
        services.AddSingleton<ICheckpointStore>(sp => new BlobCheckpointStore(sp.GetRequiredService<StorageClients>().Blobs));
        services.AddSingleton(sp => new JobProcessor(
            sp.GetRequiredService<StorageClients>(), sp.GetRequiredService<JobStore>(), sp.GetRequiredService<ILogger<JobProcessor>>(),
            evaluator ?? sp.GetService<IJobEvaluator>() ?? new JobEvaluator(), sp.GetRequiredService<ICheckpointStore>()));
        services.AddSingleton<QueueWorker>();
        return services;
    }

    /// <summary>The worker as a hosted service of the same process (the dev command).</summary>
    public static IServiceCollection AddCloudSoupWorkerHostedService(this IServiceCollection services, CloudSoupOptions options, IJobEvaluator? evaluator = null)
    {
        services.AddCloudSoupWorker(options, evaluator);
        services.AddHostedService(sp => sp.GetRequiredService<QueueWorker>());
        return services;
    }
}
