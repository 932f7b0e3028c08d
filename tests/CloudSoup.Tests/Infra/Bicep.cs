using System.Diagnostics;
using System.Text.Json;

namespace CloudSoup.Tests.Infra;

/// <summary>
/// The Bicep CLI from the Azure.Bicep.CommandLine.linux-x64 package the test project references, run on the
/// templates in infra/. Every call passes --no-restore: the templates use no registry modules, and without it
/// the CLI also starts a download of the public module index (Bicep.Core OciArtifactRegistry.OnRestoreArtifacts),
/// which is the only network access it attempts; with it, build and lint run offline.
/// </summary>
internal static class Bicep
{
    private const string PackageId = "Azure.Bicep.CommandLine.linux-x64";

    public sealed record Result(int ExitCode, string StdOut, string StdErr)
    {
        /// <summary>Diagnostic lines (errors, warnings, infos) and anything else the CLI printed to stderr.</summary>
        public IReadOnlyList<string> Diagnostics =>
            StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    private static readonly Lazy<string> executable = new(Locate);
    private static readonly Lazy<Result> mainBuild = new(() => Run("build", "infra/main.bicep", "--stdout", "--no-restore"));
    private static readonly Lazy<ArmTemplate> mainTemplate = new(() =>
    {
        var build = mainBuild.Value;
        if (build.ExitCode != 0 || build.StdOut.Length == 0)
            throw new InvalidOperationException($"bicep build infra/main.bicep failed (exit {build.ExitCode}):\n{build.StdErr}");
        return new ArmTemplate("main", JsonDocument.Parse(build.StdOut).RootElement.Clone());
    });

    public static string Executable => executable.Value;

    /// <summary>`bicep build infra/main.bicep --stdout`, run once per test run.</summary>
    public static Result MainBuild => mainBuild.Value;

    /// <summary>The ARM JSON compiled from infra/main.bicep (modules inlined as nested deployments).</summary>
    public static ArmTemplate Main => mainTemplate.Value;

    public static Result Run(params string[] args)
    {
        var start = new ProcessStartInfo(Executable)
        {
            WorkingDirectory = InfraRepo.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + Executable);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"bicep {string.Join(' ', args)} did not finish in 2 minutes");
        }
        return new Result(process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>
    /// BICEP_PATH when set; otherwise the package folder NuGet restored the test project's reference into
    /// (obj/project.assets.json), falling back to NUGET_PACKAGES or ~/.nuget/packages.
    /// </summary>
    private static string Locate()
    {
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable("BICEP_PATH") is { Length: > 0 } explicitPath) candidates.Add(explicitPath);
        candidates.AddRange(FromAssetsFile());
        var folders = new[]
        {
            Environment.GetEnvironmentVariable("NUGET_PACKAGES"),
            Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
        };
        foreach (var folder in folders.Where(f => !string.IsNullOrEmpty(f)))
        {
            var package = Path.Combine(folder!, PackageId.ToLowerInvariant());
            if (!Directory.Exists(package)) continue;
            candidates.AddRange(Directory.GetDirectories(package)
                .OrderByDescending(d => Version.TryParse(Path.GetFileName(d), out var v) ? v : new Version())
                .Select(d => Path.Combine(d, "tools", "bicep")));
        }
        foreach (var path in candidates.Where(File.Exists))
        {
            if (!OperatingSystem.IsWindows())
            {
                var mode = File.GetUnixFileMode(path);
                if ((mode & UnixFileMode.UserExecute) == 0)
                    File.SetUnixFileMode(path, mode | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
            }
            return path;
        }
        throw new FileNotFoundException(
            $"no bicep executable: restore tests/CloudSoup.Tests (it references {PackageId}) or set BICEP_PATH. Looked at:\n" +
            string.Join("\n", candidates));
    }

    private static IEnumerable<string> FromAssetsFile()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var assets = Path.Combine(dir.FullName, "obj", "project.assets.json");
            if (!File.Exists(assets) || dir.GetFiles("*.csproj").Length == 0) continue;
            using var doc = JsonDocument.Parse(File.ReadAllText(assets));
            var library = doc.RootElement.GetProperty("libraries").EnumerateObject()
                .FirstOrDefault(l => l.Name.StartsWith(PackageId + "/", StringComparison.OrdinalIgnoreCase));
            if (library.Value.ValueKind != JsonValueKind.Object) yield break;
            var relative = library.Value.GetProperty("path").GetString()!;
            foreach (var folder in doc.RootElement.GetProperty("packageFolders").EnumerateObject())
                yield return Path.Combine(folder.Name, relative, "tools", "bicep");
            yield break;
        }
    }
}

/// <summary>The repository root: the folder holding azure.yaml and infra/main.bicep above the test binaries.</summary>
internal static class InfraRepo
{
    public static string Root { get; } = Find();

    public static string PathOf(string relative) => Path.Combine(Root, relative);

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "azure.yaml")) && File.Exists(Path.Combine(dir.FullName, "infra", "main.bicep")))
                return dir.FullName;
        throw new DirectoryNotFoundException("no folder holding azure.yaml and infra/main.bicep above " + AppContext.BaseDirectory);
    }
}
