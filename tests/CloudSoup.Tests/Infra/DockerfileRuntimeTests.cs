using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace CloudSoup.Tests.Infra;

/// <summary>
/// Every image a Dockerfile in docker/ can produce must provide the shared frameworks the program it runs asks
/// for in its runtimeconfig.json, or `dotnet app.dll` exits at start ("You must install or update .NET to run
/// this application"). The runtime stages are read from the Dockerfile (FROM lines, ARG-selected stages,
/// runtimes installed with apt-get), the published project from its `dotnet publish` line, and the frameworks
/// that project needs from its built runtimeconfig.json or, when it has not been built, from its project files.
/// </summary>
public partial class DockerfileRuntimeTests
{
    public static TheoryData<string, string> Variants()
    {
        var data = new TheoryData<string, string>();
        foreach (var file in Directory.EnumerateFiles(InfraRepo.PathOf("docker"), "*Dockerfile*").Order())
        {
            var dockerfile = Dockerfile.Parse(file);
            foreach (var variant in dockerfile.FinalVariants()) data.Add(Path.GetFileName(file), variant.Name);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Runtime_stage_provides_the_frameworks_the_published_program_asks_for(string file, string variant)
    {
        var dockerfile = Dockerfile.Parse(InfraRepo.PathOf(Path.Combine("docker", file)));
        var chain = dockerfile.FinalVariants().Single(v => v.Name == variant).Chain;
        var provided = dockerfile.ProvidedFrameworks(chain);

        var (buildStage, publishedDir) = dockerfile.CopiedApp(chain);
        var (project, output) = dockerfile.Published(buildStage, publishedDir);
        var required = ProjectFrameworks.Required(project, out var source);

        var missing = required.Where(r => !provided.Any(p => p.Name == r.Name && p.Version.Major == r.Version.Major && p.Version.Minor >= r.Version.Minor)).ToList();
        Assert.True(missing.Count == 0,
            $"{file} ({variant}): the runtime stage provides [{string.Join(", ", provided)}] but {Path.GetRelativePath(InfraRepo.Root, project)} " +
            $"(published to {output}) needs [{string.Join(", ", required)}] ({source}); missing: {string.Join(", ", missing)}");

        // The entry point runs the assembly that project builds.
        var assembly = ProjectFrameworks.AssemblyName(project) + ".dll";
        Assert.True(dockerfile.EntryPointMentions(chain, assembly), $"{file} ({variant}): the ENTRYPOINT/CMD does not run {assembly}");
    }

    [Fact]
    public void Every_docker_file_is_checked_and_arg_defaults_select_existing_stages()
    {
        var variants = Variants();
        Assert.Contains(variants, v => (string)v[0] == "worker.Dockerfile" && ((string)v[1]).Contains("runtime-cuda"));
        Assert.Contains(variants, v => (string)v[0] == "worker.Dockerfile" && ((string)v[1]).Contains("runtime-cpu"));
        Assert.Contains(variants, v => (string)v[0] == "host.Dockerfile");
        foreach (var file in Directory.EnumerateFiles(InfraRepo.PathOf("docker"), "*Dockerfile*"))
            Dockerfile.Parse(file).DefaultVariant();   // throws when a default ARG value names no stage
    }

    [Fact]
    public void A_gpu_stage_without_a_cuda_base_asks_the_nvidia_runtime_for_the_driver()
    {
        var dockerfile = Dockerfile.Parse(InfraRepo.PathOf("docker/worker.Dockerfile"));
        var cuda = dockerfile.FinalVariants().Single(v => v.Name.Contains("runtime-cuda")).Chain;
        if (cuda.Any(s => s.Base.StartsWith("nvidia/cuda", StringComparison.Ordinal))) return;   // the CUDA images set both
        var env = cuda.SelectMany(s => s.Instructions).Where(i => i.Keyword == "ENV").Select(i => i.Arguments).ToList();
        Assert.Contains(env, e => Regex.IsMatch(e, @"NVIDIA_VISIBLE_DEVICES=(all|\S+)"));
        Assert.Contains(env, e => Regex.IsMatch(e, @"NVIDIA_DRIVER_CAPABILITIES=\S*(compute|all)"));
    }

    [Fact]
    public void Framework_derivation_from_project_files_agrees_with_the_built_runtimeconfig()
    {
        // The CLI is built with the tests: its runtimeconfig.json is the truth the derivation must match.
        var cli = Dockerfile.Parse(InfraRepo.PathOf("docker/worker.Dockerfile"));
        var chain = cli.DefaultVariant().Chain;
        var (stage, dir) = cli.CopiedApp(chain);
        var (project, _) = cli.Published(stage, dir);
        var built = ProjectFrameworks.FromRuntimeConfig(project);
        Assert.NotNull(built);
        Assert.Equal(built!.Select(f => f.ToString()).Order(), ProjectFrameworks.FromProjectFiles(project).Select(f => f.ToString()).Order());
    }
}

internal sealed record Framework(string Name, Version Version)
{
    public const string NetCore = "Microsoft.NETCore.App";
    public const string AspNetCore = "Microsoft.AspNetCore.App";
    public override string ToString() => $"{Name} {Version.Major}.{Version.Minor}";
}

/// <summary>The parts of a Dockerfile these checks read. https://docs.docker.com/reference/dockerfile/</summary>
internal sealed partial class Dockerfile
{
    public sealed record Instruction(string Keyword, string Arguments);
    public sealed record Stage(int Index, string? Name, string Base, List<Instruction> Instructions);
    public sealed record Variant(string Name, List<Stage> Chain);

    private readonly Dictionary<string, string> globalArgs = new();
    private readonly List<Stage> stages = new();
    private readonly string path;

    private Dockerfile(string path) => this.path = path;

    [GeneratedRegex(@"\$\{?(?<name>[A-Za-z_][A-Za-z0-9_]*)\}?")]
    private static partial Regex Variable();

    public static Dockerfile Parse(string path)
    {
        var file = new Dockerfile(path);
        var logical = new List<string>();
        var current = "";
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.TrimEnd();
            if (line.TrimStart().StartsWith('#') || (line.Length == 0 && current.Length == 0)) continue;
            if (line.EndsWith('\\')) { current += line[..^1] + " "; continue; }
            logical.Add((current + line).Trim());
            current = "";
        }
        foreach (var line in logical.Where(l => l.Length > 0))
        {
            var split = line.IndexOf(' ');
            var (keyword, args) = split < 0 ? (line.ToUpperInvariant(), "") : (line[..split].ToUpperInvariant(), line[(split + 1)..].Trim());
            if (keyword == "FROM")
            {
                var m = Regex.Match(args, @"^(--platform=\S+\s+)?(?<image>\S+)(\s+AS\s+(?<name>\S+))?$", RegexOptions.IgnoreCase);
                file.stages.Add(new Stage(file.stages.Count, m.Groups["name"].Success ? m.Groups["name"].Value : null, m.Groups["image"].Value, []));
            }
            else if (file.stages.Count == 0 && keyword == "ARG")
            {
                var parts = args.Split('=', 2);
                file.globalArgs[parts[0]] = parts.Length > 1 ? parts[1].Trim('"') : "";
            }
            else if (file.stages.Count > 0) file.stages[^1].Instructions.Add(new Instruction(keyword, args));
        }
        Assert.True(file.stages.Count > 0, $"{path} has no FROM");
        return file;
    }

    private Stage? StageNamed(string name) => stages.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The stage chains the last stage can be, one per value of the ARGs in its FROM (each stage a pattern matches).</summary>
    public List<Variant> FinalVariants() => VariantsOf(stages[^1], "");

    private List<Variant> VariantsOf(Stage stage, string label)
    {
        var variants = new List<Variant>();
        if (Variable().IsMatch(stage.Base))
        {
            var pattern = new System.Text.StringBuilder("^");
            int last = 0;
            foreach (Match v in Variable().Matches(stage.Base))
            {
                pattern.Append(Regex.Escape(stage.Base[last..v.Index])).Append(".+");
                last = v.Index + v.Length;
            }
            pattern.Append(Regex.Escape(stage.Base[last..])).Append('$');
            var matches = stages.Where(s => s.Name is not null && s.Index < stage.Index && Regex.IsMatch(s.Name, pattern.ToString(), RegexOptions.IgnoreCase)).ToList();
            Assert.True(matches.Count > 0, $"{Path.GetFileName(path)}: FROM {stage.Base} matches no stage");
            foreach (var m in matches)
                variants.AddRange(VariantsOf(m, $"{label}{stage.Base} = {m.Name}; ").Select(v => v with { Chain = [stage, .. v.Chain] }));
        }
        else if (StageNamed(stage.Base) is { } parent && parent.Index < stage.Index)
            variants.AddRange(VariantsOf(parent, label).Select(v => v with { Chain = [stage, .. v.Chain] }));
        else
            variants.Add(new Variant($"{label}{stage.Base}".TrimEnd(' ', ';'), [stage]));
        return variants;
    }

    /// <summary>The variant the ARG defaults select.</summary>
    public Variant DefaultVariant()
    {
        var final = stages[^1];
        var resolved = Variable().Replace(final.Base, m => globalArgs.TryGetValue(m.Groups["name"].Value, out var v) ? v : m.Value);
        if (resolved == final.Base) return FinalVariants().Single();
        Assert.True(StageNamed(resolved) is not null, $"{Path.GetFileName(path)}: FROM {final.Base} with the ARG defaults is {resolved}, which is no stage");
        return FinalVariants().Single(v => v.Chain.Any(s => string.Equals(s.Name, resolved, StringComparison.OrdinalIgnoreCase)));
    }

    /// <summary>The shared frameworks of the chain's base image plus those apt-get installs on it.</summary>
    public List<Framework> ProvidedFrameworks(List<Stage> chain)
    {
        var provided = new List<Framework>();
        var image = chain[^1].Base;
        var tag = Regex.Match(image, @":(?<v>\d+\.\d+)");
        var version = tag.Success ? Version.Parse(tag.Groups["v"].Value) : new Version(0, 0);
        if (Regex.IsMatch(image, @"^mcr\.microsoft\.com/dotnet/(runtime|aspnet|sdk):")) provided.Add(new Framework(Framework.NetCore, version));
        if (Regex.IsMatch(image, @"^mcr\.microsoft\.com/dotnet/(aspnet|sdk):")) provided.Add(new Framework(Framework.AspNetCore, version));
        foreach (var run in chain.AsEnumerable().Reverse().SelectMany(s => s.Instructions).Where(i => i.Keyword == "RUN"))
        {
            // An install guarded by "command -v dotnet" only runs on a base without .NET.
            if (Regex.IsMatch(run.Arguments, @"!\s*command\s+-v\s+dotnet") && provided.Count > 0) continue;
            foreach (Match m in Regex.Matches(run.Arguments, @"\b(?<package>dotnet-runtime|aspnetcore-runtime|dotnet-sdk)-(?<v>\d+\.\d+)\b"))
            {
                var v = Version.Parse(m.Groups["v"].Value);
                provided.Add(new Framework(Framework.NetCore, v));
                if (m.Groups["package"].Value != "dotnet-runtime") provided.Add(new Framework(Framework.AspNetCore, v));
            }
        }
        return provided.Distinct().ToList();
    }

    /// <summary>The stage and folder the chain copies the application from (COPY --from=STAGE DIR ...).</summary>
    public (Stage Stage, string Directory) CopiedApp(List<Stage> chain)
    {
        foreach (var copy in chain.SelectMany(s => s.Instructions).Where(i => i.Keyword == "COPY"))
        {
            var m = Regex.Match(copy.Arguments, @"--from=(?<from>\S+)\s+(?<src>\S+)\s+\S+");
            if (m.Success && StageNamed(m.Groups["from"].Value) is { } stage) return (stage, m.Groups["src"].Value.TrimEnd('/'));
        }
        throw new InvalidOperationException($"{Path.GetFileName(path)}: the runtime stage copies no application from a build stage");
    }

    /// <summary>The project the build stage publishes into <paramref name="directory"/>, as a path in this repository.</summary>
    public (string Project, string Output) Published(Stage stage, string directory)
    {
        var workdir = stage.Instructions.Where(i => i.Keyword == "WORKDIR").Select(i => i.Arguments).LastOrDefault() ?? "/";
        foreach (var run in stage.Instructions.Where(i => i.Keyword == "RUN"))
        {
            var m = Regex.Match(run.Arguments, @"dotnet\s+publish\s+(?<args>.*)");
            if (!m.Success) continue;
            var tokens = m.Groups["args"].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var output = tokens.SkipWhile(t => t is not ("-o" or "--output")).Skip(1).FirstOrDefault();
            if (output?.TrimEnd('/') != directory) continue;
            var project = tokens.FirstOrDefault(t => t.EndsWith(".csproj", StringComparison.Ordinal))
                ?? throw new InvalidOperationException($"{Path.GetFileName(path)}: `dotnet publish` names no .csproj: {run.Arguments}");
            // The build context is the repository root (azure.yaml: context: .), copied into WORKDIR.
            if (project.StartsWith('/')) project = Path.GetRelativePath(workdir, project);
            var full = Path.GetFullPath(Path.Combine(InfraRepo.Root, project));
            Assert.True(File.Exists(full), $"{Path.GetFileName(path)} publishes {project}, which is not in the repository");
            return (full, output);
        }
        throw new InvalidOperationException($"{Path.GetFileName(path)}: stage {stage.Name} publishes nothing into {directory}");
    }

    public bool EntryPointMentions(List<Stage> chain, string assembly) =>
        chain.SelectMany(s => s.Instructions).Any(i => i.Keyword is "ENTRYPOINT" or "CMD" && i.Arguments.Contains(assembly, StringComparison.OrdinalIgnoreCase));
}

/// <summary>The shared frameworks a project's program asks for at run time.</summary>
internal static class ProjectFrameworks
{
    /// <summary>From the project's built runtimeconfig.json when there is one (this test run's configuration), else from its project files.</summary>
    public static List<Framework> Required(string project, out string source)
    {
        if (FromRuntimeConfig(project) is { } built)
        {
            source = "its built runtimeconfig.json";
            return built;
        }
        source = "derived from its project files";
        return FromProjectFiles(project);
    }

    private static string Configuration =>
        typeof(ProjectFrameworks).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";

    public static List<Framework>? FromRuntimeConfig(string project)
    {
        var file = Path.Combine(Path.GetDirectoryName(project)!, "bin", Configuration, TargetFramework(project), AssemblyName(project) + ".runtimeconfig.json");
        if (!File.Exists(file)) return null;
        using var doc = JsonDocument.Parse(File.ReadAllText(file));
        var options = doc.RootElement.GetProperty("runtimeOptions");
        var frameworks = options.TryGetProperty("frameworks", out var many) ? many.EnumerateArray().ToList()
            : options.TryGetProperty("framework", out var one) ? [one] : [];
        return frameworks.Select(f => new Framework(f.GetProperty("name").GetString()!, Version.Parse(f.GetProperty("version").GetString()!))).ToList();
    }

    /// <summary>
    /// Microsoft.NETCore.App, plus Microsoft.AspNetCore.App when the project or any project it references
    /// (transitively) uses the Web SDK or a FrameworkReference to it, or a package restored for it does.
    /// </summary>
    public static List<Framework> FromProjectFiles(string project)
    {
        var version = Version.Parse(Regex.Match(TargetFramework(project), @"\d+\.\d+").Value);
        var frameworks = new List<Framework> { new(Framework.NetCore, version) };
        if (References(project).Any(UsesAspNetCore)) frameworks.Add(new Framework(Framework.AspNetCore, version));
        return frameworks;
    }

    private static bool UsesAspNetCore(string project)
    {
        var xml = XDocument.Load(project);
        if ((xml.Root?.Attribute("Sdk")?.Value ?? "").Contains("Microsoft.NET.Sdk.Web", StringComparison.OrdinalIgnoreCase)) return true;
        if (xml.Descendants("FrameworkReference").Any(f => f.Attribute("Include")?.Value == Framework.AspNetCore)) return true;
        var assets = Path.Combine(Path.GetDirectoryName(project)!, "obj", "project.assets.json");
        if (!File.Exists(assets)) return false;
        using var doc = JsonDocument.Parse(File.ReadAllText(assets));
        return doc.RootElement.GetProperty("targets").EnumerateObject().SelectMany(t => t.Value.EnumerateObject())
            .Any(p => p.Value.TryGetProperty("frameworkReferences", out var refs) && refs.EnumerateArray().Any(r => r.GetString() == Framework.AspNetCore));
    }

    private static IEnumerable<string> References(string project)
    {
        var seen = new HashSet<string>();
        var pending = new Stack<string>([Path.GetFullPath(project)]);
        while (pending.Count > 0)
        {
            var current = pending.Pop();
            if (!seen.Add(current)) continue;
            yield return current;
            foreach (var reference in XDocument.Load(current).Descendants("ProjectReference"))
                pending.Push(Path.GetFullPath(Path.Combine(Path.GetDirectoryName(current)!, reference.Attribute("Include")!.Value.Replace('\\', '/'))));
        }
    }

    public static string AssemblyName(string project) =>
        Property(project, "AssemblyName") ?? Path.GetFileNameWithoutExtension(project);

    private static string TargetFramework(string project) =>
        Property(project, "TargetFramework") ?? throw new InvalidOperationException($"no TargetFramework for {project}");

    /// <summary>A property from the project file, else from the Directory.Build.props files above it.</summary>
    private static string? Property(string project, string name)
    {
        var files = new List<string> { project };
        for (var dir = Directory.GetParent(project); dir is not null && dir.FullName.StartsWith(InfraRepo.Root, StringComparison.Ordinal); dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Directory.Build.props"))) files.Add(Path.Combine(dir.FullName, "Directory.Build.props"));
        return files.Select(f => XDocument.Load(f).Descendants(name).FirstOrDefault(e => e.Attribute("Condition") is null)?.Value.Trim())
            .FirstOrDefault(v => !string.IsNullOrEmpty(v));
    }
}
