// When `cloudsoup merge` has written, committed and printed everything, an ordinary exit still spends about 0.1 s in
// libtorch's static destructors (its operator registry: c10::Dispatcher::~Dispatcher and the entries it holds), which
// only free memory the system reclaims anyway (bench/README.md, "Start-up"). The merge command ends the process
// with _exit(2) instead (https://man7.org/linux/man-pages/man2/_exit.2.html), after flushing the console: every file
// it wrote is closed and renamed into place by then, and the CLI registers no exit handlers.
using System.Runtime.InteropServices;

namespace CloudSoup.Cli.Commands;

internal static class FastExit
{
    /// <summary>Flushes the console and ends the process with <paramref name="code"/> at once (Linux); elsewhere returns.</summary>
    public static void Now(int code)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        if (!OperatingSystem.IsLinux()) return;
        try { _exit(code); }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { /* an ordinary exit */ }
    }

    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void _exit(int status);
}
