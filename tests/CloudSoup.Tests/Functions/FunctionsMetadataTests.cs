extern alias CloudSoupFunctions;

using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text.Json;
using CloudSoup.Control.Api;
using CloudSoup.Control.Configuration;
using CloudSoup.Tests.Support;
using CloudSoupFunctions::CloudSoup.Functions;

namespace CloudSoup.Tests.Functions;

/// <summary>
/// What the Functions host will be told: functions.metadata, which the Functions SDK writes at build time from the
/// trigger attributes (the host indexes the worker's functions from it). A changed name, route, method, auth level,
/// blob path, Event Grid source or connection setting shows up here, not only in a deployment.
/// </summary>
public class FunctionsMetadataTests
{
    /// <summary>functions/bin/&lt;configuration&gt;/net10.0: the build of the app these tests were compiled against (the test project references it).</summary>
    internal static string BuildDir => Path.Combine(RepoRoot.Path, "functions", "bin",
        typeof(FunctionsMetadataTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()!.Configuration, "net10.0");

    private const string Storage = CloudSoupOptions.StorageSection;

    /// <summary>Every function, its entry point and its bindings (each binding's fields sorted by name, the SDK's "properties" aside).</summary>
    private static readonly Dictionary<string, (string EntryPoint, string[] Bindings)> Expected = new()
    {
        ["CheckpointDropped"] = ("CloudSoup.Functions.IntakeTriggers.CheckpointDropped",
            [$"connection={Storage}; direction=In; name=blob; path=checkpoints/{{name}}; source=EventGrid; type=blobTrigger"]),
        ["RecipeDropped"] = ("CloudSoup.Functions.IntakeTriggers.RecipeDropped",
            [$"connection={Storage}; direction=In; name=blob; path=recipes/{{name}}; source=EventGrid; type=blobTrigger"]),
        ["SubmitMerge"] = ("CloudSoup.Functions.MergeHttpTriggers.Submit",
            ["authLevel=Function; direction=In; methods=post; name=request; route=merges; type=httpTrigger", "direction=Out; name=$return; type=http"]),
        ["ListMerges"] = ("CloudSoup.Functions.MergeHttpTriggers.List",
            ["authLevel=Function; direction=In; methods=get; name=request; route=merges; type=httpTrigger", "direction=Out; name=$return; type=http"]),
        ["GetMerge"] = ("CloudSoup.Functions.MergeHttpTriggers.Get",
            ["authLevel=Function; direction=In; methods=get; name=request; route=merges/{id}; type=httpTrigger", "direction=Out; name=$return; type=http"]),
        ["GetMergeReport"] = ("CloudSoup.Functions.MergeHttpTriggers.Report",
            ["authLevel=Function; direction=In; methods=get; name=request; route=merges/{id}/report; type=httpTrigger", "direction=Out; name=$return; type=http"]),
        ["GetMergeFile"] = ("CloudSoup.Functions.MergeHttpTriggers.File",
            ["authLevel=Function; direction=In; methods=get; name=request; route=merges/{id}/files/{*name}; type=httpTrigger", "direction=Out; name=$return; type=http"]),
        ["ReconcileJobs"] = ("CloudSoup.Functions.ReconcileTimer.Run",
            ["direction=In; name=timer; schedule=0 */5 * * * *; type=timerTrigger"]),
    };

    /// <summary>The functions in the build's functions.metadata, by name.</summary>
    internal static Dictionary<string, JsonElement> ReadMetadata()
    {
        string path = Path.Combine(BuildDir, "functions.metadata");
        Assert.True(File.Exists(path), $"{path} is missing: build the Functions app (the test project's build does)");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.EnumerateArray().ToDictionary(f => f.GetProperty("name").GetString()!, f => f.Clone());
    }

    /// <summary>A binding as "field=value; ..." sorted by field; arrays joined with ','.</summary>
    internal static string Describe(JsonElement binding) => string.Join("; ", binding.EnumerateObject()
        .Where(p => p.Name != "properties")
        .OrderBy(p => p.Name, StringComparer.Ordinal)
        .Select(p => $"{p.Name}={(p.Value.ValueKind == JsonValueKind.Array ? string.Join(",", p.Value.EnumerateArray().Select(v => v.GetString())) : p.Value.ToString())}"));

    [Fact]
    public void The_metadata_read_is_from_the_build_of_the_code_under_test()
    {
        using var pe = new PEReader(File.OpenRead(Path.Combine(BuildDir, "CloudSoup.Functions.dll")));
        var md = pe.GetMetadataReader();
        Assert.Equal(typeof(FunctionsApp).Assembly.ManifestModule.ModuleVersionId, md.GetGuid(md.GetModuleDefinition().Mvid));
    }

    [Fact]
    public void Exactly_the_eight_functions_with_their_bindings_routes_methods_schedule_and_auth_level()
    {
        var functions = ReadMetadata();
        Assert.Equal(Expected.Keys.Order(), functions.Keys.Order());
        foreach (var (name, (entryPoint, bindings)) in Expected)
        {
            var f = functions[name];
            Assert.Equal("CloudSoup.Functions.dll", f.GetProperty("scriptFile").GetString());
            Assert.Equal("dotnet-isolated", f.GetProperty("language").GetString());
            // One line per function, so a failure shows the function and the first differing field.
            Assert.Equal($"{name} = {entryPoint} [{string.Join(" | ", bindings)}]",
                $"{name} = {f.GetProperty("entryPoint").GetString()} [{string.Join(" | ", f.GetProperty("bindings").EnumerateArray().Select(Describe))}]");
        }
    }

    [Fact]
    public void Entry_points_are_public_methods_of_the_trigger_classes()
    {
        foreach (var f in ReadMetadata().Values)
        {
            string entryPoint = f.GetProperty("entryPoint").GetString()!;
            int dot = entryPoint.LastIndexOf('.');
            var type = typeof(FunctionsApp).Assembly.GetType(entryPoint[..dot], throwOnError: true)!;
            Assert.NotNull(type.GetMethod(entryPoint[(dot + 1)..], BindingFlags.Public | BindingFlags.Instance));
        }
    }

    /// <summary>
    /// The blob client binding is an SDK-type (deferred) binding: the trigger receives a BlobClient, not the blob's
    /// content (https://learn.microsoft.com/azure/azure-functions/dotnet-isolated-process-guide#sdk-types).
    /// </summary>
    [Fact]
    public void Blob_triggers_bind_a_BlobClient_over_the_intake_containers_the_service_reads()
    {
        var functions = ReadMetadata();
        var defaults = new CloudSoupOptions();
        foreach (var (name, container) in new[] { ("CheckpointDropped", defaults.CheckpointsContainer), ("RecipeDropped", defaults.RecipesContainer) })
        {
            var binding = Assert.Single(functions[name].GetProperty("bindings").EnumerateArray());
            Assert.Equal("True", binding.GetProperty("properties").GetProperty("supportsDeferredBinding").GetString());
            // BlobIntake tells the two drops apart by container name; the trigger's path must name the container it reads.
            Assert.Equal($"{container}/{{name}}", binding.GetProperty("path").GetString());
        }
    }

    /// <summary>The prefix the Functions host puts before every HTTP route (host.json extensions.http.routePrefix).</summary>
    internal static string RoutePrefix()
    {
        using var hostJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(BuildDir, "host.json")));
        return hostJson.RootElement.GetProperty("extensions").GetProperty("http").GetProperty("routePrefix").GetString()!;
    }

    [Fact]
    public void Http_routes_with_the_host_prefix_are_the_API_paths()
    {
        string prefix = RoutePrefix();
        var paths = ReadMetadata().Values
            .SelectMany(f => f.GetProperty("bindings").EnumerateArray())
            .Where(b => b.GetProperty("type").GetString() == "httpTrigger")
            .Select(b => $"/{prefix}/{b.GetProperty("route").GetString()}")
            .ToHashSet();
        Assert.Equal(new[] { JobView.Route, JobView.LinksFor("{id}").Self, JobView.LinksFor("{id}").Report, JobView.FileRoutePattern }.Order(), paths.Order());
    }
}
