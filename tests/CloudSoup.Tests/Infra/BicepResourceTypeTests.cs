using System.Text.RegularExpressions;
using CloudSoup.Tests.Support;

namespace CloudSoup.Tests.Infra;

/// <summary>
/// There is no Bicep compiler or Azure here, so the templates are checked against Azure's published
/// resource type index (the Azure.Bicep.Types.Az package): every resource type and API version they use
/// must exist, and every module they reference must be there.
/// </summary>
public partial class BicepResourceTypeTests
{
    [GeneratedRegex(@"^\s*resource\s+\w+\s+'(?<type>[^'@]+)@(?<version>[^']+)'", RegexOptions.Multiline)]
    private static partial Regex ResourceDeclaration();

    [GeneratedRegex(@"^\s*module\s+\w+\s+'(?<path>[^']+)'", RegexOptions.Multiline)]
    private static partial Regex ModuleDeclaration();

    private static IEnumerable<string> BicepFiles() => Directory.EnumerateFiles(Path.Combine(RepoRoot.Path, "infra"), "*.bicep", SearchOption.AllDirectories);

    [Fact]
    public void Every_resource_type_and_api_version_exists_in_azures_type_index()
    {
        var index = new Azure.Bicep.Types.Az.AzTypeLoader().LoadTypeIndex();
        var known = new HashSet<string>(index.Resources.Keys, StringComparer.OrdinalIgnoreCase);
        var used = BicepFiles().SelectMany(f => ResourceDeclaration().Matches(File.ReadAllText(f))
            .Select(m => (File: Path.GetFileName(f), Key: $"{m.Groups["type"].Value}@{m.Groups["version"].Value}"))).ToList();
        Assert.True(used.Count >= 15, $"expected the templates to declare their resources, found {used.Count}");
        var unknown = used.Where(u => !known.Contains(u.Key)).Select(u => $"{u.File}: {u.Key}").ToList();
        Assert.True(unknown.Count == 0, "unknown resource types or API versions:\n" + string.Join("\n", unknown));
    }

    [Fact]
    public void Every_module_reference_points_at_a_file()
    {
        foreach (var file in BicepFiles())
            foreach (Match m in ModuleDeclaration().Matches(File.ReadAllText(file)))
                Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(file)!, m.Groups["path"].Value)), $"{Path.GetFileName(file)} references missing module {m.Groups["path"].Value}");
    }

    [Fact]
    public void Templates_hold_no_keys_or_connection_strings()
    {
        foreach (var file in BicepFiles())
        {
            var text = File.ReadAllText(file);
            Assert.DoesNotContain("AccountKey=", text);
            Assert.DoesNotContain("listKeys().keys", text);
            Assert.DoesNotContain("DefaultEndpointsProtocol", text);
        }
    }
}
