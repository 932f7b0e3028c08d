using CloudSoup.Cli.Dev;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using CloudSoup.Tests.Support;
using Microsoft.Extensions.Configuration;

namespace CloudSoup.Tests.Service;

public class CloudSoupOptionsTests
{
    private static CloudSoupOptions From(Dictionary<string, string?> settings) =>
        CloudSoupOptions.FromConfiguration(new ConfigurationBuilder().AddInMemoryCollection(settings).Build());

    [Fact]
    public void A_connection_string_and_worker_settings_are_read_from_configuration()
    {
        var o = From(new()
        {
            ["CloudSoupStorage"] = "UseDevelopmentStorage=true",
            ["CloudSoup:VisibilityTimeout"] = "00:02:00",
            ["CloudSoup:MaxAttempts"] = "5",
            ["CloudSoup:JobsQueue"] = "other-jobs",
        });
        Assert.True(o.UsesConnectionString);
        Assert.Equal(TimeSpan.FromMinutes(2), o.VisibilityTimeout);
        Assert.Equal(5, o.MaxAttempts);
        Assert.Equal("other-jobs", o.JobsQueue);
        Assert.Equal("merge-jobs-poison", o.PoisonQueue);
        o.Validate();
    }

    [Fact]
    public void The_sweep_interval_is_read_from_configuration_and_a_negative_one_is_refused_by_name()
    {
        Assert.Equal(TimeSpan.FromHours(1), From(new() { ["CloudSoupStorage"] = "UseDevelopmentStorage=true" }).SweepInterval);
        var o = From(new() { ["CloudSoupStorage"] = "UseDevelopmentStorage=true", ["CloudSoup:SweepInterval"] = "00:00:00" });
        Assert.Equal(TimeSpan.Zero, o.SweepInterval);
        o.Validate();
        o.SweepInterval = TimeSpan.FromSeconds(-1);
        var e = Assert.Throws<InvalidOperationException>(o.Validate);
        Assert.Contains("CloudSoup:SweepInterval must not be negative", e.Message);
    }

    [Fact]
    public void Identity_based_settings_are_read_and_missing_storage_is_explained()
    {
        var o = From(new()
        {
            ["CloudSoupStorage:blobServiceUri"] = "https://acct.blob.core.windows.net",
            ["CloudSoupStorage:queueServiceUri"] = "https://acct.queue.core.windows.net",
            ["CloudSoupStorage:tableServiceUri"] = "https://acct.table.core.windows.net",
            ["CloudSoupStorage:clientId"] = "00000000-0000-0000-0000-000000000001",
        });
        Assert.False(o.UsesConnectionString);
        Assert.Equal("acct.queue.core.windows.net", o.QueueServiceUri!.Host);
        Assert.Equal("00000000-0000-0000-0000-000000000001", o.ClientId);
        o.Validate();

        var e = Assert.Throws<InvalidOperationException>(() => From(new()).Validate());
        Assert.Contains("CloudSoupStorage", e.Message);
    }

    [Fact]
    public async Task Azurite_missing_from_the_checkout_is_a_clear_error()
    {
        using var empty = new TempDir();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => AzuriteProcess.StartAsync(empty.Path));
        Assert.Contains("./cloudsoup setup", e.Message);
    }
}
