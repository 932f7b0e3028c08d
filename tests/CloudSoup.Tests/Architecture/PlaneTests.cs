using System.Diagnostics;
using System.Reflection;
using CloudSoup.Control.Recipes;
using CloudSoup.Tests.Support;

namespace CloudSoup.Tests.Architecture;

/// <summary>
/// The two planes: the control plane (and so the Functions app and the API host) carries no TorchSharp, so its
/// deployment carries no libtorch; the data plane's engine carries no Azure types.
/// </summary>
public class PlaneTests
{
    private static readonly string[] TorchNames = ["TorchSharp", "libtorch", "LibTorchSharp", "libc10", "libtorch_cpu"];

    [Fact]
    public void The_control_plane_references_neither_TorchSharp_nor_the_data_plane()
    {
        var control = typeof(RecipeParser).Assembly;
        var refs = control.GetReferencedAssemblies().Select(a => a.Name!).ToList();
        Assert.DoesNotContain(refs, n => n.StartsWith("TorchSharp", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(refs, n => n is "CloudSoup.Engine" or "CloudSoup.Worker" or "cloudsoup");
    }

    /// <summary>The projects that deploy without a data plane reach, through every project reference, no TorchSharp package.</summary>
    [Theory]
    [InlineData("functions/CloudSoup.Functions.csproj")]
    [InlineData("src/CloudSoup.ApiHost/CloudSoup.ApiHost.csproj")]
    [InlineData("src/CloudSoup.Control/CloudSoup.Control.csproj")]
    public void Control_plane_projects_reach_no_TorchSharp_through_their_references(string project)
    {
        var seen = new HashSet<string>();
        var pending = new Stack<string>([Path.GetFullPath(Path.Combine(RepoRoot.Path, project))]);
        while (pending.Count > 0)
        {
            var path = pending.Pop();
            if (!seen.Add(path)) continue;
            var xml = System.Xml.Linq.XDocument.Load(path);
            foreach (var p in xml.Descendants("PackageReference"))
                Assert.False(((string?)p.Attribute("Include") ?? "").StartsWith("TorchSharp", StringComparison.OrdinalIgnoreCase),
                    $"{project} reaches {Path.GetRelativePath(RepoRoot.Path, path)}, which references {p.Attribute("Include")}");
            foreach (var r in xml.Descendants("ProjectReference"))
                pending.Push(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(path)!, ((string)r.Attribute("Include")!).Replace('\\', '/'))));
        }
        Assert.DoesNotContain(seen, p => p.EndsWith("CloudSoup.Engine.csproj", StringComparison.Ordinal) || p.EndsWith("CloudSoup.Worker.csproj", StringComparison.Ordinal));
    }

    [Fact]
    public void The_engine_has_no_Azure_types()
    {
        var engine = typeof(CloudSoup.Engine.Jobs.MergeJobRunner).Assembly;
        Assert.DoesNotContain(engine.GetReferencedAssemblies(), a => a.Name!.StartsWith("Azure.", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_declared_method_has_an_implementation_and_every_implementation_a_declaration()
    {
        var declared = CloudSoup.Control.Methods.MethodCatalog.All.Select(m => m.Name).ToHashSet();
        var merges = CloudSoup.Engine.Merging.MergeMethods.All.Select(m => m.Signature.Name).ToHashSet();
        var soups = CloudSoup.Engine.Soups.Soups.All.Select(s => s.Signature.Name).ToHashSet();
        Assert.Empty(merges.Intersect(soups));
        Assert.True(declared.SetEquals(merges.Union(soups)), $"declared but not implemented: {string.Join(", ", declared.Except(merges).Except(soups))}; implemented but not declared: {string.Join(", ", merges.Union(soups).Except(declared))}");
        foreach (var m in CloudSoup.Control.Methods.MethodCatalog.All)
            Assert.Equal(m.NeedsEvaluation, soups.Contains(m.Name));
    }

    /// <summary>The Functions app as it is deployed (dotnet publish -r linux-x64): no TorchSharp assembly, no libtorch library.</summary>
    [Fact]
    public async Task The_Functions_publish_output_holds_no_TorchSharp_and_no_libtorch()
    {
        using var dir = new TempDir();
        var psi = new ProcessStartInfo("dotnet", ["publish", Path.Combine(RepoRoot.Path, "functions", "CloudSoup.Functions.csproj"),
            "-c", "Release", "-r", "linux-x64", "-o", dir.Path, "--nologo", "-v", "q"])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        await p.WaitForExitAsync(limit.Token);
        Assert.True(p.ExitCode == 0, $"dotnet publish failed:\n{await stdout}\n{await stderr}");
        var files = Directory.GetFiles(dir.Path, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir.Path, f)).ToList();
        Assert.Contains("CloudSoup.Control.dll", files);
        Assert.Contains("functions.metadata", files);
        var torch = files.Where(f => TorchNames.Any(t => Path.GetFileName(f).Contains(t, StringComparison.OrdinalIgnoreCase))).ToList();
        Assert.True(torch.Count == 0, $"the Functions publish output carries TorchSharp/libtorch: {string.Join(", ", torch)}");
        Assert.DoesNotContain(files, f => Path.GetFileName(f) is "CloudSoup.Engine.dll" or "CloudSoup.Worker.dll");
        long bytes = files.Sum(f => new FileInfo(Path.Combine(dir.Path, f)).Length);
        Assert.True(bytes < 100L << 20, $"the Functions publish output is {bytes:N0} bytes; it should be tens of MB without libtorch");
    }
}
