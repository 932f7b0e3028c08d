namespace CloudSoup.Tests.Infra;

/// <summary>
/// Who gets which role, as ARM will create the role assignments: every parameter of a module is bound to a
/// marker naming it ("&lt;functionPrincipalId&gt;"), the copy loops are evaluated, and each assignment's
/// (principal, role, principal type) is compared with the least-privilege set the service needs.
/// </summary>
public class RoleAssignmentTests
{
    // Azure built-in role ids: https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
    private static readonly Dictionary<string, string> BuiltInRoles = new()
    {
        ["b7e6dc6d-f1e8-4753-8033-0f276bb0955b"] = "Storage Blob Data Owner",
        ["ba92f5b4-2d11-453d-a403-e96b0029c9fe"] = "Storage Blob Data Contributor",
        ["2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"] = "Storage Blob Data Reader",
        ["974c5e8b-45b9-4653-ba55-5f855dd0fb88"] = "Storage Queue Data Contributor",
        ["0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"] = "Storage Table Data Contributor",
        ["3913510d-42f4-4e42-8a64-420c390055eb"] = "Monitoring Metrics Publisher",
        ["7f951dda-4ed3-4680-a7ca-43fe172d538d"] = "AcrPull",
    };

    private sealed record Assignment(string Module, string Principal, string Role, string Scope, string PrincipalType);

    private static List<Assignment> Assignments()
    {
        var found = new List<Assignment>();
        foreach (var module in Bicep.Main.AllTemplates.Skip(1))
        {
            var bound = module.WithParameters(name => $"<{name}>");
            foreach (var r in bound.Resources.Where(r => r.Type == "Microsoft.Authorization/roleAssignments"))
                foreach (var i in r.Copies())
                {
                    var roleId = (string)r.Get("properties.roleDefinitionId", i)!;
                    Assert.Contains("/providers/Microsoft.Authorization/roleDefinitions/", roleId, StringComparison.Ordinal);
                    var guid = roleId[(roleId.LastIndexOf('/') + 1)..];
                    Assert.True(BuiltInRoles.TryGetValue(guid, out var role), $"{module.Module}: role definition {guid} is not one of the built-in roles the service uses");
                    var scope = (string)r.Get("scope", i)!;
                    var scopeType = ScopedTo(scope, "/blobServices/default/containers/") is { } container ? $"container {container}"
                        : ScopedTo(scope, "/queueServices/default/queues/") is { } queue ? $"queue {queue}"
                        : ScopedTo(scope, "/tableServices/default/tables/") is { } table ? $"table {table}"
                        : scope.Contains("Microsoft.Storage/storageAccounts", StringComparison.Ordinal) ? "storage"
                        : scope.Contains("Microsoft.Insights/components", StringComparison.Ordinal) ? "appinsights"
                        : scope.Contains("Microsoft.ContainerRegistry/registries", StringComparison.Ordinal) ? "registry"
                        : scope;
                    found.Add(new Assignment(module.Module, Text(r.Get("properties.principalId", i)), role!, scopeType, Text(r.Get("properties.principalType", i))));
                }
        }
        return found;
    }

    private static string Text(object? value) => value?.ToString() ?? "(none)";

    /// <summary>The container, queue or table a scope names after <paramref name="marker"/>, or null.</summary>
    private static string? ScopedTo(string scope, string marker)
    {
        int at = scope.IndexOf(marker, StringComparison.Ordinal);
        return at < 0 ? null : scope[(at + marker.Length)..].TrimEnd('/');
    }

    [Fact]
    public void Each_identity_gets_exactly_the_roles_it_needs()
    {
        var actual = Assignments().Select(a => $"{a.Module} {a.Principal} -> {a.Role} on {a.Scope} as {a.PrincipalType}").Order().ToList();
        string[] expected =
        [
            "rbac <functionPrincipalId> -> Storage Blob Data Owner on storage as ServicePrincipal",   // blob trigger receipts
            "rbac <functionPrincipalId> -> Storage Queue Data Contributor on storage as ServicePrincipal",
            "rbac <functionPrincipalId> -> Storage Table Data Contributor on storage as ServicePrincipal",
            "rbac <functionPrincipalId> -> Monitoring Metrics Publisher on appinsights as ServicePrincipal",
            // The worker runs jobs' evaluation models (sandboxed, docs/sandbox.md): roles on what it uses, not the account.
            "rbac <workerPrincipalId> -> Storage Blob Data Reader on container checkpoints as ServicePrincipal",
            "rbac <workerPrincipalId> -> Storage Blob Data Reader on container eval as ServicePrincipal",
            "rbac <workerPrincipalId> -> Storage Blob Data Reader on container jobs as ServicePrincipal",
            "rbac <workerPrincipalId> -> Storage Blob Data Contributor on container merged as ServicePrincipal",
            "rbac <workerPrincipalId> -> Storage Queue Data Contributor on queue merge-jobs as ServicePrincipal",
            "rbac <workerPrincipalId> -> Storage Queue Data Contributor on queue merge-jobs-poison as ServicePrincipal",
            "rbac <workerPrincipalId> -> Storage Table Data Contributor on table jobs as ServicePrincipal",
            "rbac <userPrincipalId> -> Storage Blob Data Contributor on storage as <userPrincipalType>",
            "rbac <userPrincipalId> -> Storage Queue Data Contributor on storage as <userPrincipalType>",
            "rbac <userPrincipalId> -> Storage Table Data Contributor on storage as <userPrincipalType>",
            "worker <identityPrincipalId> -> AcrPull on registry as ServicePrincipal",
        ];
        Assert.Equal(expected.Order().ToList(), actual);
    }

    [Fact]
    public void The_worker_has_no_role_on_the_whole_storage_account()
    {
        var worker = Assignments().Where(a => a.Principal == "<workerPrincipalId>").ToList();
        Assert.NotEmpty(worker);
        Assert.DoesNotContain(worker, a => a.Scope == "storage");
        Assert.DoesNotContain(worker, a => a.Scope == "container recipes");
    }

    [Fact]
    public void The_deploying_principals_type_comes_from_azd()
    {
        // main.bicep passes its principalType parameter (AZURE_PRINCIPAL_TYPE) to rbac's userPrincipalType.
        var rbac = Bicep.Main.Resources.Single(r => r.Type == "Microsoft.Resources/deployments" && r.Body.GetProperty("name").GetString() == "rbac");
        Assert.True(rbac.Body.GetProperty("properties").GetProperty("parameters").TryGetProperty("userPrincipalType", out var passed),
            "main.bicep does not pass the deploying principal's type to the rbac module");
        Assert.Equal("[parameters('principalType')]", passed.GetProperty("value").GetString());
        Assert.DoesNotContain(Assignments(), a => a.PrincipalType == "User");
        // Without a deploying principal (CI without AZURE_PRINCIPAL_ID), no assignment is made for it.
        var rbacModule = Bicep.Main.ModuleNamed("rbac").WithParameters(name => name == "userPrincipalId" ? "" : $"<{name}>");
        var count = rbacModule.Resources.Where(r => r.Type == "Microsoft.Authorization/roleAssignments").Sum(r => r.Copies().Count());
        Assert.Equal(11, count);
    }
}
