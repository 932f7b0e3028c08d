using System.Diagnostics;
using System.Globalization;
using System.Text;
using CloudSoup.Control.Configuration;
using CloudSoup.Tests.Cli;
using CloudSoup.Worker.Diagnostics;

namespace CloudSoup.Tests.Service;

/// <summary>
/// A real `cloudsoup worker` process on the test's storage (its resource names and timings passed as
/// CloudSoup__* environment variables), optionally armed to stop at a point of the commit (TestHold), so a test can
/// kill it there with SIGKILL. Disposing kills it if it still runs.
/// </summary>
public sealed class WorkerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    private readonly TaskCompletionSource<string> _held = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private WorkerProcess(Process process)
    {
        _process = process;
    }

    /// <summary>Everything the worker wrote so far (stdout and stderr), for failure messages.</summary>
    public string Log { get { lock (_log) return _log.ToString(); } }

    public static WorkerProcess Start(CloudSoupOptions o, string? holdAt = null, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(CliBuildFixture.Dll);
        psi.ArgumentList.Add("worker");
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (key, value) in Settings(o)) psi.Environment[key] = value;
        psi.Environment[TestHold.Variable] = holdAt ?? "";
        psi.Environment["NO_COLOR"] = "1";
        var worker = new WorkerProcess(Process.Start(psi)!);
        worker._process.OutputDataReceived += (_, e) => worker.Append(e.Data);
        worker._process.ErrorDataReceived += (_, e) => worker.Append(e.Data);
        worker._process.BeginOutputReadLine();
        worker._process.BeginErrorReadLine();
        return worker;
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log) _log.AppendLine(line);
        if (line.StartsWith(TestHold.Marker, StringComparison.Ordinal)) _held.TrySetResult(line[TestHold.Marker.Length..].Trim());
    }

    /// <summary>Waits until the worker stands at its hold point; fails (with its log) if it exits or never gets there.</summary>
    public async Task<string> WaitUntilHeldAsync(int maxSeconds = 180)
    {
        var exited = _process.WaitForExitAsync();
        var done = await Task.WhenAny(_held.Task, exited, Task.Delay(TimeSpan.FromSeconds(maxSeconds)));
        if (done == _held.Task) return await _held.Task;
        throw new Xunit.Sdk.XunitException($"the worker {(done == exited ? $"exited ({_process.ExitCode})" : "never reached its hold point")}; its log:\n{Log}");
    }

    /// <summary>SIGKILL: no shutdown code runs, exactly like a container killed by the platform.</summary>
    public void Kill()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public void Dispose()
    {
        try { Kill(); } catch (InvalidOperationException) { }
        _process.Dispose();
    }

    /// <summary>The options a test set, as the environment variables the CLI reads (ServiceCommandSupport.Options).</summary>
    private static IEnumerable<(string, string)> Settings(CloudSoupOptions o)
    {
        static string T(TimeSpan t) => t.ToString("c", CultureInfo.InvariantCulture);
        yield return ("CloudSoupStorage", o.ConnectionString!);
        yield return ("CloudSoup__JobsQueue", o.JobsQueue);
        yield return ("CloudSoup__PoisonQueue", o.PoisonQueue);
        yield return ("CloudSoup__CheckpointsContainer", o.CheckpointsContainer);
        yield return ("CloudSoup__RecipesContainer", o.RecipesContainer);
        yield return ("CloudSoup__MergedContainer", o.MergedContainer);
        yield return ("CloudSoup__JobsContainer", o.JobsContainer);
        yield return ("CloudSoup__EvalContainer", o.EvalContainer);
        yield return ("CloudSoup__JobsTable", o.JobsTable);
        yield return ("CloudSoup__VisibilityTimeout", T(o.VisibilityTimeout));
        yield return ("CloudSoup__MaxAttempts", o.MaxAttempts.ToString(CultureInfo.InvariantCulture));
        yield return ("CloudSoup__RetryDelay", T(o.RetryDelay));
        yield return ("CloudSoup__IdlePollInterval", T(o.IdlePollInterval));
        yield return ("CloudSoup__ProgressInterval", T(o.ProgressInterval));
        yield return ("CloudSoup__RequeueAfter", T(o.RequeueAfter));
        yield return ("CloudSoup__Parallelism__PartBytes", o.Parallelism.PartBytes.ToString(CultureInfo.InvariantCulture));
    }
}
