using System.Reflection;
using System.Runtime.Loader;
using Microsoft.Extensions.Configuration;

namespace CloudSoup.Tests.Infra;

/// <summary>
/// The names the code reads (settings, containers, queues, table) must be the names the deployed resources
/// get. Checked on the ARM JSON `bicep build` produces (expressions evaluated), so a setting the compiler drops
/// (a misspelt property, a wrong nesting) fails here instead of in a deployment.
/// </summary>
public class ConfigurationDriftTests
{
    private static ArmTemplate Storage => Bicep.Main.ModuleNamed("storage");

    /// <summary>The last segment of each evaluated name of the resources of one type.</summary>
    private static List<string> NamesOf(ArmTemplate template, string type) =>
        template.Resources.Where(r => r.Type.Equals(type, StringComparison.OrdinalIgnoreCase))
            .SelectMany(r => r.Copies().Select(i => r.Get("name", i)))
            .Select(n => n is string s ? s.Split('/')[^1] : throw new InvalidOperationException($"{type}: name {n} is not a string"))
            .ToList();

    [Fact]
    public void Containers_queues_and_table_match_the_service_defaults()
    {
        var options = ServiceOptions.Defaults();
        var deploymentContainer = (string)Storage.Evaluate(Storage.Outputs.Single(o => o.Name == "deploymentContainerName").Value.GetProperty("value"))!;
        Assert.Equal(
            new[] { options["CheckpointsContainer"], options["RecipesContainer"], options["MergedContainer"], options["EvalContainer"], options["JobsContainer"], deploymentContainer }.Order(),
            NamesOf(Storage, "Microsoft.Storage/storageAccounts/blobServices/containers").Order());
        Assert.Equal(new[] { options["JobsQueue"], options["PoisonQueue"] }.Order(), NamesOf(Storage, "Microsoft.Storage/storageAccounts/queueServices/queues").Order());
        Assert.Equal([options["JobsTable"]], NamesOf(Storage, "Microsoft.Storage/storageAccounts/tableServices/tables"));
    }

    [Fact]
    public void The_worker_job_scales_from_zero_on_the_jobs_queue_one_message_per_execution()
    {
        var job = Bicep.Main.AllResources.Single(r => r.Type == "Microsoft.App/jobs");
        Assert.Equal("Event", job.Get("properties.configuration.triggerType"));
        Assert.Equal(1L, job.Get("properties.configuration.eventTriggerConfig.parallelism"));
        Assert.Equal(1L, job.Get("properties.configuration.eventTriggerConfig.replicaCompletionCount"));
        Assert.Equal(0L, job.Get("properties.configuration.eventTriggerConfig.scale.minExecutions"));
        var rules = Assert.IsAssignableFrom<IList<object?>>(job.Get("properties.configuration.eventTriggerConfig.scale.rules"));
        var rule = Assert.IsAssignableFrom<IDictionary<string, object?>>(Assert.Single(rules));
        Assert.Equal("azure-queue", rule["type"]);
        var metadata = Assert.IsAssignableFrom<IDictionary<string, object?>>(rule["metadata"]);
        Assert.Equal(ServiceOptions.Defaults()["JobsQueue"], metadata["queueName"]);
        Assert.Equal("1", metadata["queueLength"]);                          // KEDA: one execution per message
        Assert.True(metadata.ContainsKey("accountName"), "the scale rule names no storage account");
        Assert.True(rule.TryGetValue("identity", out var identity) && identity is not null, "the scale rule has no identity (KEDA would need a secret)");
        Assert.False(rule.ContainsKey("auth"), "the scale rule authenticates with a secret");
        var containers = Assert.IsAssignableFrom<IList<object?>>(job.Get("properties.template.containers"));
        var worker = Assert.IsAssignableFrom<IDictionary<string, object?>>(Assert.Single(containers));
        Assert.Equal(new object?[] { "worker", "--once" }, Assert.IsAssignableFrom<IList<object?>>(worker["args"]));   // one message, then exit
    }

    [Fact]
    public void The_worker_job_runs_a_split_job_s_parts_as_executions_of_their_own_up_to_the_parameter()
    {
        // A split job is one message per part (docs/fanout.md); one execution per message, so the parts of one job run
        // side by side up to maxExecutions, which may go as high as the most parts a recipe can ask for.
        var workerModule = Bicep.Main.ModuleNamed("worker");
        var job = workerModule.Resources.Single(r => r.Type == "Microsoft.App/jobs");
        Assert.Equal("[parameters('maxExecutions')]", job.Body.GetProperty("properties").GetProperty("configuration").GetProperty("eventTriggerConfig")
            .GetProperty("scale").GetProperty("maxExecutions").GetString());
        var deployment = Bicep.Main.Resources.Single(r => r.Type == "Microsoft.Resources/deployments" && r.Body.GetProperty("name").GetString() == "worker");
        var passed = deployment.Body.GetProperty("properties").GetProperty("parameters");
        Assert.Equal("[parameters('maxWorkerExecutions')]", passed.GetProperty("maxExecutions").GetProperty("value").GetString());
        Assert.Equal("[parameters('parallelismPartBytes')]", passed.GetProperty("partBytes").GetProperty("value").GetString());
        var main = Bicep.Main.Parameters.ToDictionary(p => p.Name, p => p.Value);
        Assert.Equal(64, main["maxWorkerExecutions"].GetProperty("maxValue").GetInt32());          // RecipeLimits.MaxParts
        Assert.True(main["maxWorkerExecutions"].GetProperty("defaultValue").GetInt32() > 1, "by default a split job's parts would run one after another");
        Assert.True(Settings("worker job").ContainsKey("CloudSoup__Parallelism__PartBytes"), "the worker job does not set CloudSoup__Parallelism__PartBytes");
        // The default the template passes is one the service reads.
        var values = new Dictionary<string, string?> { ["CloudSoup:Parallelism:PartBytes"] = main["parallelismPartBytes"].GetProperty("defaultValue").GetString() };
        var parallelism = ServiceOptions.FromConfiguration(new ConfigurationBuilder().AddInMemoryCollection(values).Build()).Get("Parallelism")!;
        Assert.Equal(20_000_000_000L, parallelism.GetType().GetProperty("PartBytes")!.GetValue(parallelism));
    }

    public static TheoryData<string> SettingSources => new() { "function app", "worker job" };

    [Theory]
    [MemberData(nameof(SettingSources))]
    public void Every_setting_the_templates_set_is_one_the_code_or_the_platform_reads(string source)
    {
        var settings = Settings(source);
        Assert.True(settings.Count > 0, $"the {source} sets no settings: is properties (or siteConfig / template.containers) spelt right in the Bicep?");
        var optionProperties = ServiceOptions.SettableProperties();
        // Identity-based connection keys: the service reads the URIs and clientId; credential is read by the Functions host.
        var storageKeys = new HashSet<string> { "blobServiceUri", "queueServiceUri", "tableServiceUri", "clientId", "credential" };
        var platform = new HashSet<string>
        {
            "AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__queueServiceUri", "AzureWebJobsStorage__tableServiceUri",
            "AzureWebJobsStorage__credential", "AzureWebJobsStorage__clientId",             // Functions host storage
            "APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING", // Functions host telemetry
            "AZURE_CLIENT_ID",                                                               // DefaultAzureCredential
        };
        var unread = new List<string>();
        foreach (var name in settings.Keys)
        {
            var split = name.IndexOf("__", StringComparison.Ordinal);
            var (section, key) = split < 0 ? (name, "") : (name[..split], name[(split + 2)..]);
            var read = section == ServiceOptions.StorageSection ? storageKeys.Contains(key)
                : section == ServiceOptions.Section ? optionProperties.Contains(key.Split("__")[0])   // CloudSoup__Parallelism__PartBytes: a nested section
                : platform.Contains(name);
            if (!read) unread.Add(name);
        }
        Assert.True(unread.Count == 0, $"the {source} sets settings nothing reads: {string.Join(", ", unread)}");
        foreach (var key in new[] { "blobServiceUri", "queueServiceUri", "tableServiceUri", "clientId", "credential" })
            Assert.True(settings.ContainsKey($"{ServiceOptions.StorageSection}__{key}"), $"the {source} does not set {ServiceOptions.StorageSection}__{key}");
        Assert.Equal("managedidentity", settings[$"{ServiceOptions.StorageSection}__credential"]);
    }

    [Theory]
    [MemberData(nameof(SettingSources))]
    public void The_deployed_settings_configure_the_service_with_an_identity(string source)
    {
        // The values the settings get at deployment time are unknown here; give each a value of the right shape
        // and let the service's own configuration code read them (as environment variables: __ separates sections).
        var values = Settings(source).ToDictionary(
            s => s.Key.Replace("__", ":", StringComparison.Ordinal),
            string? (s) => s.Value is string v && !v.Contains(Unknown.Marker, StringComparison.Ordinal) ? v
                : s.Key.EndsWith("ServiceUri", StringComparison.Ordinal) ? "https://account.example.net/"
                : s.Key.EndsWith("PartBytes", StringComparison.Ordinal) ? "20000000000"
                : "00000000-0000-0000-0000-000000000001");
        var options = ServiceOptions.FromConfiguration(new ConfigurationBuilder().AddInMemoryCollection(values).Build());
        Assert.False((bool)options.Get("UsesConnectionString")!);
        Assert.NotNull(options.Get("BlobServiceUri"));
        Assert.NotNull(options.Get("QueueServiceUri"));
        Assert.NotNull(options.Get("TableServiceUri"));
        Assert.NotNull(options.Get("ClientId"));
        options.Validate();
        if (source == "worker job") Assert.Equal("cuda", options.Get("Device"));
    }

    [Fact]
    public void Telemetry_goes_through_the_function_identity_because_local_auth_is_off()
    {
        var appi = Bicep.Main.AllResources.Single(r => r.Type == "Microsoft.Insights/components");
        Assert.Equal(true, appi.Get("properties.DisableLocalAuth"));
        var settings = Settings("function app");
        Assert.True(settings.TryGetValue("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", out var auth),
            "Application Insights refuses key-based ingestion, but the function app has no APPLICATIONINSIGHTS_AUTHENTICATION_STRING");
        // Same identity the host uses for storage: ClientId=<client id>;Authorization=AAD
        Assert.Equal($"ClientId={settings["AzureWebJobsStorage__clientId"]};Authorization=AAD", auth);
    }

    /// <summary>The app settings of the function app, or the environment of the worker job's container.</summary>
    private static Dictionary<string, object?> Settings(string source)
    {
        IList<object?>? list = source switch
        {
            "function app" => Bicep.Main.AllResources
                .Single(r => r.Type == "Microsoft.Web/sites" && (r.Body.GetProperty("kind").GetString() ?? "").Contains("functionapp"))
                .Get("properties.siteConfig.appSettings") as IList<object?>,
            "worker job" => (Bicep.Main.AllResources.Single(r => r.Type == "Microsoft.App/jobs").Get("properties.template.containers") as IList<object?>)
                ?.OfType<IDictionary<string, object?>>().SelectMany(c => c.TryGetValue("env", out var env) && env is IList<object?> e ? e : []).ToList(),
            _ => throw new ArgumentOutOfRangeException(nameof(source)),
        };
        return (list ?? []).Cast<IDictionary<string, object?>>().ToDictionary(s => (string)s["name"]!, s => s["value"]);
    }
}

/// <summary>
/// The service's options type (CloudSoupOptions), found by name in the CloudSoup assemblies next to the tests,
/// so these tests follow the type wherever the source tree moves it.
/// </summary>
internal static class ServiceOptions
{
    private static readonly Lazy<Type> type = new(Find);

    public static Type Type => type.Value;
    public static string StorageSection => (string)Type.GetField("StorageSection")!.GetValue(null)!;
    public static string Section => (string)Type.GetField("Section")!.GetValue(null)!;

    public static HashSet<string> SettableProperties() =>
        Type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).Select(p => p.Name).ToHashSet();

    /// <summary>The default value of every readable property of a new options object.</summary>
    public static Dictionary<string, object?> Defaults()
    {
        var instance = Activator.CreateInstance(Type)!;
        return Type.GetProperties(BindingFlags.Public | BindingFlags.Instance).ToDictionary(p => p.Name, p => p.GetValue(instance));
    }

    public static Instance FromConfiguration(IConfiguration configuration) =>
        new(Type.GetMethod("FromConfiguration", BindingFlags.Public | BindingFlags.Static, [typeof(IConfiguration)])!.Invoke(null, [configuration])!);

    public sealed record Instance(object Value)
    {
        public object? Get(string property) => Value.GetType().GetProperty(property)!.GetValue(Value);

        public void Validate()
        {
            try { Value.GetType().GetMethod("Validate", Type.EmptyTypes)!.Invoke(Value, null); }
            catch (TargetInvocationException e) when (e.InnerException is not null) { throw e.InnerException; }
        }
    }

    private static Type Find()
    {
        var searched = new List<string>();
        foreach (var file in Directory.EnumerateFiles(AppContext.BaseDirectory, "*.dll").Order())
        {
            var name = Path.GetFileNameWithoutExtension(file);
            if (!name.StartsWith("CloudSoup", StringComparison.OrdinalIgnoreCase) || name == typeof(ServiceOptions).Assembly.GetName().Name) continue;
            searched.Add(name);
            Type?[] types;
            try { types = AssemblyLoadContext.Default.LoadFromAssemblyName(AssemblyName.GetAssemblyName(file)).GetTypes(); }
            catch (ReflectionTypeLoadException e) { types = e.Types; }
            catch (BadImageFormatException) { continue; }
            if (types.FirstOrDefault(t => t?.Name == "CloudSoupOptions" && t.GetMethod("FromConfiguration") is not null) is { } found) return found;
        }
        throw new InvalidOperationException("no CloudSoupOptions type with FromConfiguration in " + string.Join(", ", searched));
    }
}
