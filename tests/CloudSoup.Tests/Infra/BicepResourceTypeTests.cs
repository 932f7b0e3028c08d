namespace CloudSoup.Tests.Infra;

/// <summary>
/// The compiled templates against Azure's published resource type index (the Azure.Bicep.Types.Az package):
/// every resource type and API version they deploy or read must exist. And no keys: nothing in the ARM JSON
/// lists keys, carries a connection string or turns key-based access on.
/// </summary>
public class BicepResourceTypeTests
{
    /// <summary>Type@apiVersion of every deployed resource, and of every existing resource read through reference()/list*().</summary>
    private static List<(string Module, string Key)> UsedTypes()
    {
        var used = Bicep.Main.AllResources.Select(r => (r.Template.Module, $"{r.Type}@{r.ApiVersion}")).ToList();
        foreach (var template in Bicep.Main.AllTemplates)
            foreach (var (_, node) in template.Expressions())
                foreach (var call in ArmExpression.Calls(node))
                {
                    if (!(call.Name.Equals("reference", StringComparison.OrdinalIgnoreCase) || call.Name.StartsWith("list", StringComparison.OrdinalIgnoreCase))
                        || call.Args.Count < 2 || call.Args[0] is not ArmExpression.Call id || call.Args[1] is not ArmExpression.Literal { Value: string version })
                        continue;
                    var typeArg = id.Name.Equals("extensionResourceId", StringComparison.OrdinalIgnoreCase) ? id.Args.Skip(1) : id.Args;
                    if (typeArg.FirstOrDefault(a => a is ArmExpression.Literal { Value: string s } && s.Contains('/')) is ArmExpression.Literal { Value: string type })
                        used.Add((template.Module, $"{type}@{version}"));
                }
        return used;
    }

    [Fact]
    public void Every_resource_type_and_api_version_exists_in_azures_type_index()
    {
        var index = new Azure.Bicep.Types.Az.AzTypeLoader().LoadTypeIndex();
        var known = new HashSet<string>(index.Resources.Keys, StringComparer.OrdinalIgnoreCase);
        var used = UsedTypes();
        Assert.True(used.Select(u => u.Key).Distinct().Count() >= 15, $"expected the compiled template to hold its resources, found {string.Join(", ", used)}");
        Assert.Contains(used, u => u.Key.StartsWith("Microsoft.Storage/storageAccounts@", StringComparison.Ordinal) && u.Module != "storage"); // existing references are seen
        var unknown = used.Where(u => !known.Contains(u.Key)).Select(u => $"{u.Module}: {u.Key}").Distinct().ToList();
        Assert.True(unknown.Count == 0, "unknown resource types or API versions:\n" + string.Join("\n", unknown));
    }

    [Fact]
    public void Templates_hold_no_keys_or_connection_strings()
    {
        foreach (var template in Bicep.Main.AllTemplates)
            foreach (var (text, node) in template.Expressions())
            {
                var listCall = ArmExpression.Calls(node).FirstOrDefault(c => c.Name.StartsWith("list", StringComparison.OrdinalIgnoreCase));
                Assert.True(listCall is null, $"{template.Module} reads keys: {text}");
            }
        var json = Bicep.MainBuild.StdOut;
        foreach (var secretShape in new[] { "AccountKey=", "DefaultEndpointsProtocol", "SharedAccessSignature=", "\"sharedKey\"", "InstrumentationKey=" })
            Assert.DoesNotContain(secretShape, json, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Every_service_refuses_key_based_access_where_the_platform_allows_it()
    {
        var resources = Bicep.Main.AllResources.ToList();
        ArmResource Single(string type) => resources.Single(r => r.Type == type && !r.Existing);
        Assert.Equal(false, Single("Microsoft.Storage/storageAccounts").Get("properties.allowSharedKeyAccess"));
        Assert.Equal(false, Single("Microsoft.ContainerRegistry/registries").Get("properties.adminUserEnabled"));
        Assert.Equal(true, Single("Microsoft.Insights/components").Get("properties.DisableLocalAuth"));
        Assert.Equal(true, Single("Microsoft.OperationalInsights/workspaces").Get("properties.features.disableLocalAuth"));
        // Container Apps logs: through Azure Monitor diagnostic settings, not the workspace's shared key.
        Assert.Equal("azure-monitor", Single("Microsoft.App/managedEnvironments").Get("properties.appLogsConfiguration.destination"));
        var diagnostics = Single("Microsoft.Insights/diagnosticSettings");
        Assert.Contains("Microsoft.App/managedEnvironments", (string)diagnostics.Get("scope")!, StringComparison.Ordinal);
        Assert.NotNull(diagnostics.Get("properties.workspaceId"));
    }
}
