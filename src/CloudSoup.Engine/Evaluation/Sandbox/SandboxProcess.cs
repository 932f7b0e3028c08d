// One sandbox process as the worker sees it (docs/sandbox.md): started with a fresh scratch folder as its working
// directory and a minimal environment (no storage connection string, no identity endpoint, no secrets of the worker),
// its stderr drained into a bounded tail, killed on a deadline, and its end described in words.
using System.Diagnostics;

namespace CloudSoup.Engine.Evaluation.Sandbox;

internal sealed class SandboxProcess : IDisposable
{
    private const int StderrTailBytes = 8 << 10;
    private readonly Process _process;
    private readonly Task _stderrPump;
    private readonly byte[] _tail = new byte[StderrTailBytes];
    private int _tailLength;
    private volatile bool _killedForTime;

    private SandboxProcess(Process process, string scratch)
    {
        _process = process;
        Scratch = scratch;
        Input = process.StandardInput.BaseStream;
        Output = new BufferedStream(process.StandardOutput.BaseStream, 1 << 16);
        _stderrPump = Task.Run(PumpStderrAsync);
    }

    public string Scratch { get; }
    public Stream Input { get; }
    public Stream Output { get; }
    public bool KilledForTime => _killedForTime;
    public int Id => _process.Id;

    /// <param name="selfCheck">Arguments that turn the process into its self-check (SandboxSelfCheck) instead of a server.</param>
    public static SandboxProcess Start(SandboxSettings settings, SandboxLimits limits, IEnumerable<string>? selfCheck = null)
    {
        if (!File.Exists(settings.ProgramPath))
            throw new InvalidOperationException($"the evaluation sandbox program is missing ({settings.ProgramPath}); it ships with the worker (src/CloudSoup.Sandbox)");
        string scratch = Directory.CreateTempSubdirectory("cloudsoup-sandbox-").FullName;
        var start = new ProcessStartInfo(SandboxSettings.DotnetHost())
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = scratch,
        };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(settings.ProgramPath);
        foreach (var a in selfCheck ?? []) start.ArgumentList.Add(a);
        foreach (var a in new[] { "--memory", limits.MemoryBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--confine", SandboxSettings.Name(settings.Confinement) })
            start.ArgumentList.Add(a);
        if (selfCheck is null) { start.ArgumentList.Add("--threads"); start.ArgumentList.Add(settings.Threads.ToString(System.Globalization.CultureInfo.InvariantCulture)); }
        // Nothing of the worker's environment but what the runtime needs: the child must not see CloudSoupStorage,
        // AZURE_*, IDENTITY_ENDPOINT/IDENTITY_HEADER or anything else the worker was given.
        start.Environment.Clear();
        start.Environment["PATH"] = "/usr/local/bin:/usr/bin:/bin";
        start.Environment["HOME"] = scratch;
        start.Environment["TMPDIR"] = scratch;
        start.Environment["DOTNET_SYSTEM_GLOBALIZATION_INVARIANT"] = "1";   // no ICU to load once the file system closes
        start.Environment["DOTNET_EnableDiagnostics"] = "0";                // no diagnostics IPC socket
        start.Environment["DOTNET_gcServer"] = "0";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var name in new[] { "DOTNET_ROOT", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LD_LIBRARY_PATH" })
            if (Environment.GetEnvironmentVariable(name) is { Length: > 0 } v) start.Environment[name] = v;
        try
        {
            var process = Process.Start(start) ?? throw new InvalidOperationException("the evaluation sandbox process did not start");
            return new SandboxProcess(process, scratch);
        }
        catch
        {
            TryDelete(scratch);
            throw;
        }
    }

    /// <summary>Kills the process (and so unblocks every read and write on its pipes).</summary>
    public void Kill(bool forTime)
    {
        if (forTime) _killedForTime = true;
        try { _process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }   // already gone
    }

    /// <summary>How the process ended, waiting up to <paramref name="wait"/> for it; killed (and said so) when it will not end.</summary>
    public string Ending(TimeSpan wait)
    {
        if (!_process.WaitForExit(wait))
        {
            Kill(forTime: false);
            _process.WaitForExit(TimeSpan.FromSeconds(10));
            return "stopped answering and was killed";
        }
        int code = _process.ExitCode;
        // .NET reports a process ended by signal N as exit code 128 + N.
        if (code > 128 && code < 128 + 65) return $"crashed (signal {code - 128}{SignalName(code - 128)})";
        return code == SandboxServer.SetupFailed ? "could not set itself up" : $"exited with code {code}";
    }

    /// <summary>The last few KB the process wrote to stderr, made printable: for the worker's log, never for a job's error.</summary>
    public string StderrTail()
    {
        lock (_tail) return Control.Errors.SafeText.Line(System.Text.Encoding.UTF8.GetString(_tail, 0, _tailLength).Replace('\n', '|'), StderrTailBytes);
    }

    private static string SignalName(int signal) => signal switch
    {
        4 => ", SIGILL", 6 => ", SIGABRT", 7 => ", SIGBUS", 8 => ", SIGFPE", 9 => ", SIGKILL", 11 => ", SIGSEGV", 24 => ", SIGXCPU", 25 => ", SIGXFSZ", 31 => ", SIGSYS",
        _ => "",
    };

    private async Task PumpStderrAsync()
    {
        var buffer = new byte[4096];
        try
        {
            var stream = _process.StandardError.BaseStream;
            int n;
            while ((n = await stream.ReadAsync(buffer).ConfigureAwait(false)) > 0)
                lock (_tail)
                {
                    // Keep only the newest bytes: a model that prints without end costs nothing here.
                    if (n >= _tail.Length) { Array.Copy(buffer, n - _tail.Length, _tail, 0, _tail.Length); _tailLength = _tail.Length; continue; }
                    int keep = Math.Min(_tailLength, _tail.Length - n);
                    Array.Copy(_tail, _tailLength - keep, _tail, 0, keep);
                    Array.Copy(buffer, 0, _tail, keep, n);
                    _tailLength = keep + n;
                }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException) { }
    }

    public void Dispose()
    {
        try { Input.Close(); } catch (IOException) { }   // end of input: the server's loop ends and it exits
        if (!_process.WaitForExit(TimeSpan.FromSeconds(5))) Kill(forTime: false);
        _process.WaitForExit(TimeSpan.FromSeconds(10));
        _stderrPump.Wait(TimeSpan.FromSeconds(5));
        _process.Dispose();
        TryDelete(Scratch);
    }

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
