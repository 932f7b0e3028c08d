// A seccomp filter (seccomp(2), https://docs.kernel.org/userspace-api/seccomp_filter.html) that the sandbox installs
// on itself after Landlock: a short classic-BPF program that answers EPERM to the system calls a model has no business
// making, and lets everything else through. What it closes that Landlock does not:
//   socket, socketpair        no network of any kind (UDP, raw, netlink, Unix sockets), not only TCP
//   io_uring_*                io_uring can open sockets and files on the kernel's side, past this filter
//   execve, execveat          no other program (which would start without the .NET-side checks)
//   ptrace, process_vm_*      no reading or writing other processes' memory
//   bpf, perf_event_open, userfaultfd, keyctl/add_key/request_key, mount/umount2/pivot_root/chroot, unshare/setns,
//   kexec_load, init_module/finit_module, open_by_handle_at: kernel surfaces a model never needs
// A system call made through another architecture's entry (32-bit int 0x80 on x86_64, the x32 ABI) kills the process,
// since its numbers would mean other calls. Needs no privileges once PR_SET_NO_NEW_PRIVS is set.
using System.Runtime.InteropServices;

namespace CloudSoup.Engine.Evaluation.Sandbox.Confinement;

internal static class Seccomp
{
    private const uint AuditArchX8664 = 0xC000003E, AuditArchAarch64 = 0xC00000B7;
    private const ushort LdWAbs = 0x20, JeqK = 0x15, JgeK = 0x35, Ret = 0x06;
    private const uint RetKillProcess = 0x80000000, RetAllow = 0x7FFF0000, RetErrnoEperm = 0x00050000 | 1;
    private const uint X32SyscallBit = 0x40000000;

    private static readonly (string Name, int X64, int Arm64)[] Denied =
    [
        ("socket", 41, 198), ("socketpair", 53, 199), ("io_uring_setup", 425, 425), ("io_uring_enter", 426, 426),
        ("io_uring_register", 427, 427), ("execve", 59, 221), ("execveat", 322, 281), ("ptrace", 101, 117),
        ("process_vm_readv", 310, 270), ("process_vm_writev", 311, 271), ("bpf", 321, 280), ("perf_event_open", 298, 241),
        ("userfaultfd", 323, 282), ("keyctl", 250, 219), ("add_key", 248, 217), ("request_key", 249, 218),
        ("mount", 165, 40), ("umount2", 166, 39), ("pivot_root", 155, 41), ("chroot", 161, 51), ("unshare", 272, 97),
        ("setns", 308, 268), ("kexec_load", 246, 104), ("init_module", 175, 105), ("finit_module", 313, 273),
        ("open_by_handle_at", 304, 265),
    ];

    public static IReadOnlyList<string> DeniedNames => Denied.Select(d => d.Name).ToList();

    [StructLayout(LayoutKind.Sequential)]
    private struct SockFilter
    {
        public ushort Code;
        public byte Jt;
        public byte Jf;
        public uint K;
    }

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct SockFprog
    {
        public ushort Len;
        public SockFilter* Filter;
    }

    public static bool Supported => RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;

    /// <summary>Installs the filter for good (PR_SET_NO_NEW_PRIVS must be set, which Landlock.Restrict does; set here too).</summary>
    public static unsafe string Install()
    {
        bool x64 = RuntimeInformation.ProcessArchitecture == Architecture.X64;
        if (!Supported) throw new InvalidOperationException($"no seccomp filter for {RuntimeInformation.ProcessArchitecture}");
        var numbers = Denied.Select(d => (uint)(x64 ? d.X64 : d.Arm64)).ToList();
        var program = new List<SockFilter>
        {
            Stmt(LdWAbs, 4),                                                     // seccomp_data.arch
            Jump(JeqK, x64 ? AuditArchX8664 : AuditArchAarch64, 1, 0),
            Stmt(Ret, RetKillProcess),
            Stmt(LdWAbs, 0),                                                     // seccomp_data.nr
        };
        int denyAt = 4 + (x64 ? 1 : 0) + numbers.Count + 1;                      // index of the EPERM return
        if (x64) program.Add(Jump(JgeK, X32SyscallBit, (byte)(denyAt - program.Count - 1), 0));
        foreach (var nr in numbers) program.Add(Jump(JeqK, nr, (byte)(denyAt - program.Count - 1), 0));
        program.Add(Stmt(Ret, RetAllow));
        program.Add(Stmt(Ret, RetErrnoEperm));

        if (LinuxCalls.prctl(LinuxCalls.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
            throw new InvalidOperationException($"prctl(PR_SET_NO_NEW_PRIVS): {LinuxCalls.LastError()}");
        var filters = program.ToArray();
        fixed (SockFilter* p = filters)
        {
            var prog = new SockFprog { Len = (ushort)filters.Length, Filter = p };
            if (LinuxCalls.prctl(LinuxCalls.PR_SET_SECCOMP, LinuxCalls.SECCOMP_MODE_FILTER, (ulong)(nint)(&prog), 0, 0) != 0)
                throw new InvalidOperationException($"prctl(PR_SET_SECCOMP): {LinuxCalls.LastError()}");
        }
        return $"seccomp: {numbers.Count} system calls refused (sockets, io_uring, exec, ptrace, ...)";
    }

    private static SockFilter Stmt(ushort code, uint k) => new() { Code = code, K = k };

    private static SockFilter Jump(ushort code, uint k, byte jt, byte jf) => new() { Code = code, K = k, Jt = jt, Jf = jf };
}
