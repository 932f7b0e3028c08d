// The operator's side of the evaluation sandbox (CloudSoup__EvalSandbox, __EvalMemoryLimit, __EvalMaxMemoryLimit,
// __EvalTimeLimit, __EvalMaxTimeLimit; docs/sandbox.md): how hard to confine, the limits a recipe gets when it names
// none, and the most a recipe may ask for.
using System.Runtime.InteropServices;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Recipes;

namespace CloudSoup.Engine.Evaluation.Sandbox;

/// <summary>The limits one sandboxed model runs under: its process's writable memory, and wall-clock time per call.</summary>
public sealed record SandboxLimits(long MemoryBytes, TimeSpan TimePerCall);

public sealed record SandboxSettings(
    SandboxConfinement Confinement,
    long DefaultMemoryBytes,
    long MaxMemoryBytes,
    TimeSpan DefaultTimePerCall,
    TimeSpan MaxTimePerCall)
{
    public static SandboxSettings Default { get; } = FromOptions(new CloudSoupOptions());

    /// <summary>The sandbox program (src/CloudSoup.Sandbox), deployed next to whatever runs jobs.</summary>
    public string ProgramPath { get; init; } = Path.Combine(AppContext.BaseDirectory, "cloudsoup-sandbox.dll");

    /// <summary>libtorch threads in the sandbox (0: libtorch's default, one per core).</summary>
    public int Threads { get; init; }

    public static SandboxSettings FromOptions(CloudSoupOptions o) => new(
        TryParseConfinement(o.EvalSandbox, out var mode) ? mode
            : throw new InvalidOperationException($"CloudSoup:EvalSandbox must be strict or limits-only (got '{o.EvalSandbox}')"),
        Bytes(o.EvalMemoryLimit, "EvalMemoryLimit"), Bytes(o.EvalMaxMemoryLimit, "EvalMaxMemoryLimit"),
        o.EvalTimeLimit, o.EvalMaxTimeLimit);

    public static bool TryParseConfinement(string? text, out SandboxConfinement mode)
    {
        (bool ok, mode) = text?.Trim().ToLowerInvariant() switch
        {
            "strict" => (true, SandboxConfinement.Strict),
            "limits-only" => (true, SandboxConfinement.LimitsOnly),
            _ => (false, SandboxConfinement.Strict),
        };
        return ok;
    }

    public static string Name(SandboxConfinement mode) => mode == SandboxConfinement.Strict ? "strict" : "limits-only";

    /// <summary>The limits for one model: the recipe's, else the defaults; a recipe over the ceiling is refused naming the field.</summary>
    public SandboxLimits Resolve(EvaluationLimits? recipe, string section)
    {
        new EvalLimitCeilings(MaxMemoryBytes, MaxTimePerCall).Check(recipe, section);
        long memory = recipe?.MemoryBytes ?? Math.Min(DefaultMemoryBytes, MaxMemoryBytes);
        var time = recipe?.Seconds is int s ? TimeSpan.FromSeconds(s) : (DefaultTimePerCall < MaxTimePerCall ? DefaultTimePerCall : MaxTimePerCall);
        return new SandboxLimits(memory, time);
    }

    /// <summary>"4 GB", "512 MB": how limits appear in messages.</summary>
    public static string Size(long bytes) =>
        bytes >= 1_000_000_000 && bytes % 1_000_000_000 == 0 ? $"{bytes / 1_000_000_000} GB"
        : bytes >= 1L << 30 && bytes % (1L << 30) == 0 ? $"{bytes >> 30} GiB"
        : bytes >= 1L << 20 && bytes % (1L << 20) == 0 ? $"{bytes >> 20} MiB"
        : bytes >= 1_000_000 ? $"{bytes / 1e6:0.#} MB" : $"{bytes} bytes";

    /// <summary>The dotnet host that runs the sandbox program (the one running this process).</summary>
    internal static string DotnetHost()
    {
        if (Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet") return p;
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h)) return h;
        var fromRuntime = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", "..", OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet"));
        return File.Exists(fromRuntime) ? fromRuntime : "dotnet";
    }

    private static long Bytes(string text, string setting) =>
        ByteSize.TryParse(text, out long b) ? b : throw new InvalidOperationException($"CloudSoup:{setting} '{text}' is not a size (e.g. 4GB, 512MB)");
}
