using CloudSoup.Core.Evaluation;
using CloudSoup.Core.Storage;
using CloudSoup.Service.Api;
using CloudSoup.Service.Configuration;
using CloudSoup.Service.Intake;
using CloudSoup.Service.Jobs;
using CloudSoup.Service.Storage;
using CloudSoup.Service.Worker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Service.Hosting;

/// <summary>Registers the service's parts; used by the standalone host, the worker command and the Functions app.</summary>
public static class CloudSoupServices
{
    public static IServiceCollection AddCloudSoup(this IServiceCollection services, CloudSoupOptions options, IJobEvaluator? evaluator = null)
    {
        services.AddSingleton(options);
        services.AddSingleton(sp => new StorageClients(sp.GetRequiredService<CloudSoupOptions>()));
        services.AddSingleton(sp => new JobStore(sp.GetRequiredService<StorageClients>().JobsTable));
        services.AddSingleton<ICheckpointStore>(sp => new BlobCheckpointStore(sp.GetRequiredService<StorageClients>().Blobs));
        services.AddSingleton<MergeSubmitter>();
        services.AddSingleton<BlobIntake>();
        services.AddSingleton<BlobDropWatcher>();
        services.AddSingleton<MergeApi>();
        services.AddSingleton(sp => new JobProcessor(
            sp.GetRequiredService<StorageClients>(), sp.GetRequiredService<JobStore>(), sp.GetRequiredService<ILogger<JobProcessor>>(),
            evaluator ?? sp.GetService<IJobEvaluator>() ?? new JobEvaluator(), sp.GetRequiredService<ICheckpointStore>()));
        services.AddSingleton<QueueWorker>();
        return services;
    }
}
