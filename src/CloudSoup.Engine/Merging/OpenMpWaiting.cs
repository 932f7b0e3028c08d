// libtorch's CPU kernels run their parallel loops on OpenMP (libgomp) threads, which by default spin for a while
// after each loop waiting for the next one. A merge calls libtorch from whichever thread-pool thread an await
// resumed on, and each calling thread gets its own team of OpenMP threads, so on a small machine (or one shared
// with other work) the spinning teams take the cores the merge needs: the della benchmark on 2 cores spent 40 % of
// its CPU time in libgomp's spin loop and took twice as long (bench/README.md, "The engine at the speed of its
// inputs"). Passive waiting (OMP_WAIT_POLICY, https://gcc.gnu.org/onlinedocs/libgomp/OMP_005fWAIT_005fPOLICY.html)
// makes idle OpenMP threads sleep instead. libgomp reads the variable once, when libtorch loads, so this must run
// before the first tensor operation; a value the user set is kept.
using System.Runtime.InteropServices;

namespace CloudSoup.Engine.Merging;

public static partial class OpenMpWaiting
{
    /// <summary>Sets OMP_WAIT_POLICY=PASSIVE for libtorch unless the environment already sets it (Linux only).</summary>
    public static void PreferPassive()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") != null) return;
        try
        {
            // The process environment libgomp reads; .NET's Environment.SetEnvironmentVariable does not change it on Unix.
            setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            // no libc setenv: keep libgomp's default
        }
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int setenv(string name, string value, int overwrite);
}
