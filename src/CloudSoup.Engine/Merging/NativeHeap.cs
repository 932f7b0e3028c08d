// Gives freed tensor memory back to the OS during long merges. libtorch allocates through glibc malloc, which
// serves multi-megabyte blocks from per-thread arenas once its dynamic mmap threshold has risen; with reads
// finishing on many thread-pool threads the freed blocks stay mapped in many arenas, and a worker's resident
// memory crept up to twice what the merge holds at once. malloc_trim(0) returns the free pages of every arena.
using System.Runtime.InteropServices;

namespace CloudSoup.Engine.Merging;

internal static partial class NativeHeap
{
    /// <summary>Trim after roughly this many bytes of tensors were freed.</summary>
    internal const long TrimEveryBytes = 128L << 20;

    private static bool _unavailable = !OperatingSystem.IsLinux();
    private static long _freedSinceTrim;

    /// <summary>Records <paramref name="bytes"/> of freed tensor memory and trims the C heap once enough has been freed.</summary>
    public static void Freed(long bytes)
    {
        if (_unavailable || Interlocked.Add(ref _freedSinceTrim, bytes) < TrimEveryBytes) return;
        Interlocked.Exchange(ref _freedSinceTrim, 0);
        try
        {
            malloc_trim(0);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            _unavailable = true;   // not glibc (e.g. musl): nothing to do
        }
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int malloc_trim(nuint pad);
}
