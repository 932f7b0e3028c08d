// Landlock (Linux 5.13+; https://docs.kernel.org/userspace-api/landlock.html): an unprivileged process restricts its
// own file system access, and from ABI 4 (Linux 6.7) its TCP binds and connects. Once restricted, the process and its
// children can never regain access; it needs no root, no namespaces and no setup outside the process, so it works
// in an ordinary container where the kernel has Landlock enabled and the container's seccomp profile allows the three
// landlock_* system calls.
//
// The sandbox's ruleset handles every file system right the running kernel knows and grants:
//   read and execute  beneath the application folder, the .NET runtime folder, the system library folders, and a few
//                     single files and kernel views the runtime and libtorch read (ld.so.cache, /dev/urandom, the
//                     process's own /proc/<pid>, CPU and memory information);
//   everything        beneath the scratch folder;
//   read and write    /dev/null;
// so every other path can be neither read nor written, listed, created or removed. With ABI >= 4 every TCP bind and
// connect is refused (no rule grants any port). With ABI >= 6 it also cannot reach abstract Unix sockets or signal
// processes outside the sandbox. Landlock also keeps a restricted process from ptrace-ing (or reading /proc/<pid>/mem,
// environ, ...) of any process outside its domain, such as the worker that started it.
using System.Runtime.InteropServices;

namespace CloudSoup.Engine.Evaluation.Sandbox.Confinement;

internal static class Landlock
{
    private const long SysCreateRuleset = 444, SysAddRule = 445, SysRestrictSelf = 446;   // the same on x86_64 and aarch64
    private const int CreateRulesetVersion = 1;
    private const int RulePathBeneath = 1;

    private const ulong Execute = 1UL << 0, WriteFile = 1UL << 1, ReadFile = 1UL << 2, ReadDir = 1UL << 3;
    private const ulong Truncate = 1UL << 14, IoctlDev = 1UL << 15;
    private const ulong NetBindTcp = 1UL << 0, NetConnectTcp = 1UL << 1;
    private const ulong ScopeAbstractUnixSocket = 1UL << 0, ScopeSignal = 1UL << 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct RulesetAttr
    {
        public ulong HandledAccessFs;
        public ulong HandledAccessNet;
        public ulong Scoped;
    }

    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    private struct PathBeneathAttr
    {
        public ulong AllowedAccess;
        public int ParentFd;
    }

    /// <summary>The kernel's Landlock ABI version, or 0 when Landlock is unavailable (not built in, disabled, or filtered).</summary>
    public static int AbiVersion()
    {
        long v = LinuxCalls.syscall(SysCreateRuleset, 0, 0, CreateRulesetVersion, 0);
        return v > 0 ? (int)v : 0;
    }

    /// <summary>All file system rights of an ABI version (each version adds some).</summary>
    private static ulong FsRights(int abi) => abi switch
    {
        1 => (1UL << 13) - 1,
        2 => (1UL << 14) - 1,         // + REFER
        3 or 4 => (1UL << 15) - 1,    // + TRUNCATE
        _ => (1UL << 16) - 1,         // + IOCTL_DEV (ABI 5)
    };

    /// <summary>
    /// Restricts this process for good. Paths that do not exist are skipped. Throws with the reason when the kernel
    /// refuses; the caller decides whether to go on unconfined.
    /// </summary>
    public static unsafe string Restrict(int abi, IEnumerable<string> readOnly, IEnumerable<string> readWriteFiles, string scratch)
    {
        ulong fs = FsRights(abi);
        var attr = new RulesetAttr
        {
            HandledAccessFs = fs,
            HandledAccessNet = abi >= 4 ? NetBindTcp | NetConnectTcp : 0,
            Scoped = abi >= 6 ? ScopeAbstractUnixSocket | ScopeSignal : 0,
        };
        int size = abi >= 6 ? 24 : abi >= 4 ? 16 : 8;
        long ruleset = LinuxCalls.syscall(SysCreateRuleset, (nint)(&attr), size, 0, 0);
        if (ruleset < 0) throw new InvalidOperationException($"landlock_create_ruleset: {LinuxCalls.LastError()}");
        try
        {
            ulong fileRights = Execute | WriteFile | ReadFile | (abi >= 3 ? Truncate : 0) | (abi >= 5 ? IoctlDev : 0);
            foreach (var path in readOnly) Allow((int)ruleset, path, Execute | ReadFile | ReadDir, fileRights);
            foreach (var path in readWriteFiles) Allow((int)ruleset, path, ReadFile | WriteFile, fileRights);
            Allow((int)ruleset, scratch, fs, fileRights);
            if (LinuxCalls.prctl(LinuxCalls.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
                throw new InvalidOperationException($"prctl(PR_SET_NO_NEW_PRIVS): {LinuxCalls.LastError()}");
            if (LinuxCalls.syscall(SysRestrictSelf, (nint)ruleset, 0, 0, 0) != 0)
                throw new InvalidOperationException($"landlock_restrict_self: {LinuxCalls.LastError()}");
        }
        finally
        {
            LinuxCalls.close((int)ruleset);
        }
        return $"landlock ABI {abi}: file system limited to the runtime (read-only) and the scratch folder"
            + (abi >= 4 ? ", TCP bind/connect refused" : "") + (abi >= 6 ? ", abstract Unix sockets and signals scoped" : "");
    }

    private static unsafe void Allow(int ruleset, string path, ulong directoryRights, ulong fileRights)
    {
        int fd = LinuxCalls.open(path, LinuxCalls.O_PATH | LinuxCalls.O_CLOEXEC);
        if (fd < 0) return;   // absent on this system: nothing to allow
        try
        {
            var rights = Directory.Exists(path) ? directoryRights : directoryRights & fileRights;
            var rule = new PathBeneathAttr { AllowedAccess = rights, ParentFd = fd };
            if (LinuxCalls.syscall(SysAddRule, ruleset, RulePathBeneath, (nint)(&rule), 0) != 0)
                throw new InvalidOperationException($"landlock_add_rule({path}): {LinuxCalls.LastError()}");
        }
        finally
        {
            LinuxCalls.close(fd);
        }
    }
}
