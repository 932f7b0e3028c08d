using Microsoft.Extensions.Configuration;
using System.Text.RegularExpressions;
using CloudSoup.Service.Configuration;
using CloudSoup.Tests.Support;

namespace CloudSoup.Tests.Infra;

/// <summary>
/// The names the code reads (settings, containers, queues, table) must be the names the Bicep templates
/// define; drift between the two fails here instead of in a deployment.
/// </summary>
public partial class ConfigurationDriftTests
{
    private static string Infra(string file) => File.ReadAllText(Path.Combine(RepoRoot.Path, "infra", "app", file));

    [GeneratedRegex(@"var\s+(?<name>\w+)\s*=\s*\[(?<items>[^\]]*)\]")]
    private static partial Regex ArrayVar();

    [GeneratedRegex(@"var\s+(?<name>\w+)\s*=\s*'(?<value>[^']*)'")]
    private static partial Regex StringVar();

    [GeneratedRegex(@"name:\s*'(?<name>(CloudSoupStorage|CloudSoup)__[A-Za-z0-9_]+)'")]
    private static partial Regex SettingName();

    private static string[] ArrayOf(string text, string name) =>
        ArrayVar().Matches(text).Single(m => m.Groups["name"].Value == name).Groups["items"].Value
            .Split(',').Select(s => s.Trim().Trim('\'')).Where(s => s.Length > 0).ToArray();

    [Fact]
    public void Containers_queues_and_table_match_the_service_defaults()
    {
        var options = new CloudSoupOptions();
        var storage = Infra("storage.bicep");
        Assert.Equal(
            new[] { options.CheckpointsContainer, options.RecipesContainer, options.MergedContainer, options.EvalContainer, options.JobsContainer }.Order(),
            ArrayOf(storage, "containerNames").Order());
        Assert.Equal(new[] { options.JobsQueue, options.PoisonQueue }.Order(), ArrayOf(storage, "queueNames").Order());
        Assert.Equal(options.JobsTable, StringVar().Matches(storage).Single(m => m.Groups["name"].Value == "tableName").Groups["value"].Value);
        Assert.Contains($"queueName: '{options.JobsQueue}'", Infra("worker.bicep"));
    }

    [Theory]
    [InlineData("functions.bicep")]
    [InlineData("worker.bicep")]
    public void Every_setting_the_templates_set_is_one_the_code_reads(string file)
    {
        var names = SettingName().Matches(Infra(file)).Select(m => m.Groups["name"].Value).Distinct().ToList();
        Assert.NotEmpty(names);
        var optionProperties = typeof(CloudSoupOptions).GetProperties().Where(p => p.CanWrite).Select(p => p.Name).ToHashSet();
        // Identity-based connection keys the service reads (credential is read by the Functions host itself).
        var storageKeys = new HashSet<string> { "blobServiceUri", "queueServiceUri", "tableServiceUri", "clientId", "credential" };
        foreach (var name in names)
        {
            var (section, key) = (name[..name.IndexOf("__", StringComparison.Ordinal)], name[(name.IndexOf("__", StringComparison.Ordinal) + 2)..]);
            if (section == CloudSoupOptions.StorageSection) Assert.True(storageKeys.Contains(key), $"{file} sets {name}, which nothing reads");
            else Assert.True(optionProperties.Contains(key), $"{file} sets {name}, but CloudSoupOptions has no settable property {key}");
        }
        // And the identity-based connection is complete: every service URI the worker needs is set.
        foreach (var key in new[] { "blobServiceUri", "queueServiceUri", "tableServiceUri", "clientId" })
            Assert.Contains($"{CloudSoupOptions.StorageSection}__{key}", names);
    }

    [Fact]
    public void Identity_based_settings_bind_to_the_options()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["CloudSoupStorage:blobServiceUri"] = "https://acct.blob.core.windows.net/",
            ["CloudSoupStorage:queueServiceUri"] = "https://acct.queue.core.windows.net/",
            ["CloudSoupStorage:tableServiceUri"] = "https://acct.table.core.windows.net/",
            ["CloudSoupStorage:clientId"] = "00000000-0000-0000-0000-000000000001",
        }).Build();
        var options = CloudSoupOptions.FromConfiguration(config);
        Assert.False(options.UsesConnectionString);
        Assert.Equal("https://acct.queue.core.windows.net/", options.QueueServiceUri!.ToString());
        Assert.Equal("00000000-0000-0000-0000-000000000001", options.ClientId);
        options.Validate();
    }
}
