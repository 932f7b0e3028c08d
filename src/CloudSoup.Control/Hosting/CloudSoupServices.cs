using CloudSoup.Control.Api;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Intake;
using CloudSoup.Control.Jobs;
using Microsoft.Extensions.DependencyInjection;

namespace CloudSoup.Control.Hosting;

/// <summary>Registers the control plane's parts; used by the standalone host, the Functions app and the worker.</summary>
public static class CloudSoupServices
{
    public static IServiceCollection AddCloudSoupControlPlane(this IServiceCollection services, CloudSoupOptions options)
    {
        services.AddSingleton(options);
        services.AddSingleton(sp => new StorageClients(sp.GetRequiredService<CloudSoupOptions>()));
        services.AddSingleton(sp => new JobStore(sp.GetRequiredService<StorageClients>().JobsTable));
        services.AddSingleton<MergeSubmitter>();
        services.AddSingleton<BlobIntake>();
        services.AddSingleton<BlobDropWatcher>();
        services.AddSingleton<MergeApi>();
        services.AddSingleton<JobReconciler>();
        services.AddSingleton<ReconcilerService>();
        return services;
    }
}
