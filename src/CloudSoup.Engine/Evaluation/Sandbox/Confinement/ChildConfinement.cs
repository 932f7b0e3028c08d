// What the sandbox process does to itself before it reads the model (docs/sandbox.md): resource limits, then Landlock,
// then the seccomp filter. In "strict" mode (the default) a missing layer is an error and no model is loaded; in
// "limits-only" mode (for hosts without Landlock) the process still isolates crashes and enforces the memory and time
// limits, and says which layers it lacks.
using System.Runtime.InteropServices;

namespace CloudSoup.Engine.Evaluation.Sandbox.Confinement;

internal static class ChildConfinement
{
    /// <summary>Applies every layer it can; returns one line per layer applied. Throws when strict and a layer is missing.</summary>
    public static IReadOnlyList<string> Apply(SandboxConfinement mode, ulong memoryBytes, string scratch)
    {
        if (!OperatingSystem.IsLinux())
        {
            if (mode == SandboxConfinement.Strict)
                throw new InvalidOperationException($"the strict sandbox needs Linux (Landlock and seccomp); this is {RuntimeInformation.OSDescription}");
            return ["no confinement on this operating system: separate process and time limit only"];
        }
        var applied = new List<string>();
        var missing = new List<string>();
        var failedLimits = ResourceLimits.Apply(memoryBytes);
        if (failedLimits.Count == 0) applied.Add($"rlimits: data {memoryBytes >> 20} MiB, files {ResourceLimits.MaxFileBytes >> 20} MiB, {ResourceLimits.MaxOpenFiles} open files, no core dumps");
        else missing.Add("resource limits " + string.Join(", ", failedLimits));
        LinuxCalls.prctl(LinuxCalls.PR_SET_DUMPABLE, 0, 0, 0, 0);

        int abi = Landlock.AbiVersion();
        if (abi == 0) missing.Add("Landlock (the kernel lacks it, it is not enabled at boot, or the container's seccomp profile blocks landlock_create_ruleset)");
        else
        {
            try { applied.Add(Landlock.Restrict(abi, ReadOnlyPaths(), ["/dev/null"], scratch)); }
            catch (InvalidOperationException e) { missing.Add($"Landlock ({e.Message})"); }
        }
        if (!Seccomp.Supported) missing.Add($"seccomp (no filter for {RuntimeInformation.ProcessArchitecture})");
        else
        {
            try { applied.Add(Seccomp.Install()); }
            catch (InvalidOperationException e) { missing.Add($"seccomp ({e.Message})"); }
        }
        if (missing.Count > 0)
        {
            if (mode == SandboxConfinement.Strict)
                throw new InvalidOperationException($"the sandbox could not confine itself: no {string.Join("; no ", missing)}. Fix the host, or set CloudSoup__EvalSandbox=limits-only to accept a weaker sandbox (docs/sandbox.md)");
            applied.Add($"missing: {string.Join("; ", missing)}");
        }
        return applied;
    }

    /// <summary>What the runtime, TorchSharp and libtorch read after start-up; all read-only.</summary>
    private static IEnumerable<string> ReadOnlyPaths()
    {
        yield return AppContext.BaseDirectory;
        yield return RuntimeEnvironment.GetRuntimeDirectory();
        foreach (var p in new[] { "/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share/zoneinfo", "/etc/ld.so.cache", "/etc/localtime" }) yield return p;
        foreach (var p in new[] { "/dev/urandom", "/dev/random", "/dev/zero" }) yield return p;
        yield return $"/proc/{Environment.ProcessId}";
        foreach (var p in new[] { "/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/sys/devices/system/cpu", "/sys/fs/cgroup" }) yield return p;
    }
}
