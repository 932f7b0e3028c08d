extern alias CloudSoupFunctions;

using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using CloudSoup.Control.Api;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Intake;
using CloudSoup.Tests.Service;
using CloudSoupFunctions::CloudSoup.Functions;
using Microsoft.Extensions.DependencyInjection;

namespace CloudSoup.Tests.Functions;

/// <summary>
/// The Functions host's composition (FunctionsApp.Build, as Program.cs calls it) from app settings: the storage
/// the service ends up talking to is the one the settings name, for both ways the deployment can name it.
/// Built only: nothing here starts the worker or calls storage.
/// </summary>
[Collection(AzuriteCollection.Name)]
public class FunctionsCompositionTests(AzuriteFixture azurite)
{
    [Fact]
    public void A_connection_string_setting_points_every_client_at_that_account_with_the_named_resources()
    {
        var settings = new Dictionary<string, string?>
        {
            ["CloudSoupStorage"] = azurite.ConnectionString,
            ["CloudSoup__JobsQueue"] = "fn-jobs",
            ["CloudSoup__PoisonQueue"] = "fn-jobs-poison",
            ["CloudSoup__MergedContainer"] = "fn-merged",
            ["CloudSoup__JobsTable"] = "fnjobs",
            ["CloudSoup__MaxAttempts"] = "7",
        };
        using var host = FunctionsTestHost.Build(settings);

        var options = host.Services.GetRequiredService<CloudSoupOptions>();
        Assert.True(options.UsesConnectionString);
        Assert.Equal(azurite.ConnectionString, options.ConnectionString);
        Assert.Equal(7, options.MaxAttempts);
        Assert.Equal("checkpoints", options.CheckpointsContainer);     // not set: the default

        var storage = host.Services.GetRequiredService<StorageClients>();
        Assert.Same(options, storage.Options);
        Assert.Equal(new BlobServiceClient(azurite.ConnectionString).Uri, storage.Blobs.Uri);
        Assert.Equal(new QueueServiceClient(azurite.ConnectionString).Uri, storage.Queues.Uri);
        Assert.Equal(new TableServiceClient(azurite.ConnectionString).Uri, storage.Tables.Uri);
        Assert.Equal("fn-jobs", storage.JobsQueue.Name);
        Assert.Equal("fn-jobs-poison", storage.PoisonQueue.Name);
        Assert.Equal("fnjobs", storage.JobsTable.Name);
        Assert.Equal("fn-merged", storage.Container(options.MergedContainer).Name);

        AssertTriggersResolve(host.Services);
    }

    [Fact]
    public void Identity_based_settings_point_every_client_at_the_service_URIs_with_the_managed_identity()
    {
        var settings = new Dictionary<string, string?>
        {
            ["CloudSoupStorage__blobServiceUri"] = "https://soupacct.blob.core.windows.net",
            ["CloudSoupStorage__queueServiceUri"] = "https://soupacct.queue.core.windows.net",
            ["CloudSoupStorage__tableServiceUri"] = "https://soupacct.table.core.windows.net",
            ["CloudSoupStorage__clientId"] = "00000000-0000-0000-0000-00000000c0de",
            ["CloudSoupStorage__credential"] = "managedidentity",           // read by the Functions host's bindings, not by the service
        };
        using var host = FunctionsTestHost.Build(settings);

        var options = host.Services.GetRequiredService<CloudSoupOptions>();
        Assert.False(options.UsesConnectionString);
        Assert.Equal("00000000-0000-0000-0000-00000000c0de", options.ClientId);
        var storage = host.Services.GetRequiredService<StorageClients>();
        Assert.Equal(new Uri("https://soupacct.blob.core.windows.net"), storage.Blobs.Uri);
        Assert.Equal("soupacct", storage.Blobs.AccountName);
        Assert.Equal(new Uri("https://soupacct.queue.core.windows.net"), storage.Queues.Uri);
        Assert.Equal(new Uri("https://soupacct.table.core.windows.net"), storage.Tables.Uri);
        Assert.Equal(new Uri("https://soupacct.queue.core.windows.net/merge-jobs"), storage.JobsQueue.Uri);
        Assert.Equal(new Uri("https://soupacct.blob.core.windows.net/recipes"), storage.Container(options.RecipesContainer).Uri);

        AssertTriggersResolve(host.Services);
    }

    [Fact]
    public void With_part_of_the_identity_settings_the_app_refuses_with_the_settings_to_set()
    {
        using var host = FunctionsTestHost.Build(new Dictionary<string, string?> { ["CloudSoupStorage__blobServiceUri"] = "https://soupacct.blob.core.windows.net" });
        Assert.Equal(new Uri("https://soupacct.blob.core.windows.net"), host.Services.GetRequiredService<CloudSoupOptions>().BlobServiceUri);
        var e = Assert.Throws<InvalidOperationException>(() => host.Services.GetRequiredService<StorageClients>());
        Assert.Contains("CloudSoupStorage__queueServiceUri", e.Message);
    }

    /// <summary>Every trigger and what it calls comes out of the host's container (as the worker creates them per invocation).</summary>
    private static void AssertTriggersResolve(IServiceProvider services)
    {
        Assert.NotNull(ActivatorUtilities.CreateInstance<MergeHttpTriggers>(services));
        Assert.NotNull(ActivatorUtilities.CreateInstance<IntakeTriggers>(services));
        Assert.NotNull(ActivatorUtilities.CreateInstance<ReconcileTimer>(services));
        Assert.Same(services.GetRequiredService<MergeApi>(), services.GetRequiredService<MergeApi>());
        Assert.Same(services.GetRequiredService<BlobIntake>(), services.GetRequiredService<BlobIntake>());
    }
}
