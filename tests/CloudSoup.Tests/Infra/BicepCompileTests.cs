using System.Text.Json;
using System.Text.RegularExpressions;

namespace CloudSoup.Tests.Infra;

/// <summary>
/// The templates compile and lint with no error, warning or info (any diagnostic fails), and the parameters file
/// azd reads sets every parameter azd must set.
/// </summary>
public partial class BicepCompileTests
{
    [Fact]
    public void Main_template_builds_with_no_diagnostics()
    {
        var build = Bicep.MainBuild;
        Assert.True(build.ExitCode == 0 && build.Diagnostics.Count == 0,
            $"bicep build infra/main.bicep: exit {build.ExitCode}\n{string.Join("\n", build.Diagnostics)}");
        Assert.Contains("subscriptionDeploymentTemplate", Bicep.Main.Root.GetProperty("$schema").GetString());
    }

    [Fact]
    public void Every_bicep_file_lints_with_no_diagnostics()
    {
        // The pattern covers modules main.bicep does not (or no longer) reference too.
        var lint = Bicep.Run("lint", "--pattern", "infra/**/*.bicep", "--no-restore");
        Assert.True(lint.ExitCode == 0 && lint.Diagnostics.Count == 0,
            $"bicep lint infra/**/*.bicep: exit {lint.ExitCode}\n{string.Join("\n", lint.Diagnostics)}");
        Assert.True(Directory.EnumerateFiles(InfraRepo.PathOf("infra"), "*.bicep", SearchOption.AllDirectories).Count() >= 7);
    }

    [Fact]
    public void Every_module_file_is_deployed_by_main()
    {
        var modules = Bicep.Main.Modules.Select(m => m.Module).ToHashSet();
        var files = Directory.EnumerateFiles(InfraRepo.PathOf("infra/app"), "*.bicep").Select(Path.GetFileNameWithoutExtension).ToList();
        Assert.All(files, f => Assert.Contains(f!, modules));
    }

    private static Dictionary<string, string> ParameterFileValues()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(InfraRepo.PathOf("infra/main.parameters.json")));
        return doc.RootElement.GetProperty("parameters").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.GetProperty("value").ToString());
    }

    [Fact]
    public void Parameters_file_sets_every_parameter_without_a_default_and_no_other()
    {
        var declared = Bicep.Main.Parameters.ToDictionary(p => p.Name, p => p.Value);
        var mapped = ParameterFileValues();
        var missing = declared.Where(p => !p.Value.TryGetProperty("defaultValue", out _) && !mapped.ContainsKey(p.Key)).Select(p => p.Key).ToList();
        Assert.True(missing.Count == 0, "main.bicep parameters without a default that main.parameters.json does not set: " + string.Join(", ", missing));
        var stale = mapped.Keys.Where(k => !declared.ContainsKey(k)).ToList();
        Assert.True(stale.Count == 0, "main.parameters.json sets parameters main.bicep does not declare: " + string.Join(", ", stale));
    }

    [GeneratedRegex(@"\$\{(?<name>[A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex EnvReference();

    [Fact]
    public void Parameters_azd_knows_come_from_azd()
    {
        var mapped = ParameterFileValues();
        string? ParameterFed(string variable) => mapped.SingleOrDefault(p => EnvReference().Matches(p.Value).Any(m => m.Groups["name"].Value == variable)).Key;
        Assert.Equal("environmentName", ParameterFed("AZURE_ENV_NAME"));
        Assert.Equal("location", ParameterFed("AZURE_LOCATION"));
        Assert.Equal("principalId", ParameterFed("AZURE_PRINCIPAL_ID"));
        // azd resolves AZURE_PRINCIPAL_TYPE to User or ServicePrincipal; both must be accepted.
        var principalType = ParameterFed("AZURE_PRINCIPAL_TYPE");
        Assert.NotNull(principalType);
        var allowed = Bicep.Main.Parameters.Single(p => p.Name == principalType).Value.GetProperty("allowedValues").EnumerateArray().Select(v => v.GetString()).ToList();
        Assert.Contains("User", allowed);
        Assert.Contains("ServicePrincipal", allowed);
        // azd records SERVICE_<NAME>_IMAGE_NAME after deploying a container service; the next provision must keep that image.
        foreach (var service in ContainerServices())
        {
            var variable = $"SERVICE_{service.ToUpperInvariant().Replace('-', '_')}_IMAGE_NAME";
            Assert.True(ParameterFed(variable) is not null, $"azure.yaml deploys {service} as a container, but no parameter takes {variable}: provisioning would reset its image");
        }
    }

    /// <summary>Names of the azure.yaml services with host: containerapp (the file's two-space layout).</summary>
    private static List<string> ContainerServices()
    {
        var services = new List<string>();
        string? current = null;
        bool inServices = false;
        foreach (var raw in File.ReadAllLines(InfraRepo.PathOf("azure.yaml")))
        {
            var line = raw.Split('#')[0].TrimEnd();
            if (line.Length == 0) continue;
            if (!char.IsWhiteSpace(line[0])) { inServices = line == "services:"; current = null; continue; }
            if (!inServices) continue;
            if (line.StartsWith("  ", StringComparison.Ordinal) && !line.StartsWith("   ", StringComparison.Ordinal)) current = line.Trim().TrimEnd(':');
            else if (current is not null && line.Trim() == "host: containerapp") services.Add(current);
        }
        Assert.NotEmpty(services);
        return services;
    }
}
