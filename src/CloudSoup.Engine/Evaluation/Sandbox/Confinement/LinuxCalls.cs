// The few Linux system calls the sandbox's confinement needs, called directly (P/Invoke into libc): prctl, setrlimit,
// dup/dup2, open/close and the generic syscall(2) entry for Landlock, which glibc does not wrap.
// Man pages: prctl(2), setrlimit(2), landlock(7), seccomp(2).
using System.Runtime.InteropServices;

namespace CloudSoup.Engine.Evaluation.Sandbox.Confinement;

internal static partial class LinuxCalls
{
    public const int PR_SET_DUMPABLE = 4;
    public const int PR_SET_SECCOMP = 22;
    public const int PR_SET_NO_NEW_PRIVS = 38;
    public const int SECCOMP_MODE_FILTER = 2;

    public const int RLIMIT_FSIZE = 1;
    public const int RLIMIT_DATA = 2;
    public const int RLIMIT_CORE = 4;
    public const int RLIMIT_NOFILE = 7;
    public const int RLIMIT_AS = 9;

    public const int O_RDONLY = 0;
    public const int O_PATH = 0x200000;   // the same value on x86_64 and aarch64
    public const int O_CLOEXEC = 0x80000;

    [StructLayout(LayoutKind.Sequential)]
    public struct RLimit
    {
        public ulong Current;
        public ulong Max;
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial int prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setrlimit(int resource, in RLimit limit);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getrlimit(int resource, out RLimit limit);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int dup(int fd);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int dup2(int oldFd, int newFd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    public static partial long syscall(long number, nint arg1, nint arg2, nint arg3, nint arg4);

    public static string LastError() => Marshal.GetLastPInvokeErrorMessage();
}
