// Resource limits the sandbox sets on itself before it loads a model (setrlimit(2)); a process can lower its limits
// but never raise a hard limit again, so the model's code cannot undo them:
//   RLIMIT_DATA   its writable private memory (heap, anonymous mappings, thread stacks; since Linux 4.7 mmap too), so
//                 an allocation past the memory limit fails instead of growing until the machine's OOM killer acts.
//                 Unlike RLIMIT_AS it does not count the .NET GC's reserved-but-uncommitted address space.
//   RLIMIT_FSIZE  the largest file it may write (it needs none; writes are confined to its scratch folder anyway)
//   RLIMIT_NOFILE open files
//   RLIMIT_CORE   0: no core dump of a crashed model (it could hold the data the model saw)
namespace CloudSoup.Engine.Evaluation.Sandbox.Confinement;

internal static class ResourceLimits
{
    public const ulong MaxFileBytes = 64UL << 20;
    public const ulong MaxOpenFiles = 256;

    /// <summary>Sets both the soft and the hard limit; returns what could not be set.</summary>
    public static List<string> Apply(ulong memoryBytes)
    {
        var failed = new List<string>();
        Set(LinuxCalls.RLIMIT_DATA, memoryBytes, "RLIMIT_DATA", failed);
        Set(LinuxCalls.RLIMIT_FSIZE, MaxFileBytes, "RLIMIT_FSIZE", failed);
        Set(LinuxCalls.RLIMIT_NOFILE, MaxOpenFiles, "RLIMIT_NOFILE", failed);
        Set(LinuxCalls.RLIMIT_CORE, 0, "RLIMIT_CORE", failed);
        return failed;
    }

    private static void Set(int resource, ulong value, string name, List<string> failed)
    {
        if (LinuxCalls.getrlimit(resource, out var current) == 0 && current.Max < value) value = current.Max;
        var limit = new LinuxCalls.RLimit { Current = value, Max = value };
        if (LinuxCalls.setrlimit(resource, in limit) != 0) failed.Add($"{name} ({LinuxCalls.LastError()})");
    }
}
