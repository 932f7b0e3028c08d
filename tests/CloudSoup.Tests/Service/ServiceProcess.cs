using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using CloudSoup.Control.Configuration;
using CloudSoup.Tests.Cli;

namespace CloudSoup.Tests.Service;

/// <summary>
/// The whole service (`cloudsoup dev --storage CS --port 0`: API, blob drop watcher and worker) as a child process,
/// for inputs that could take a process down: a stack overflow cannot be caught in .NET, so a test that sends such
/// input must watch another process survive it. Resource names come from <see cref="CloudSoupOptions"/> through the
/// environment (CloudSoup__*), so each test has its own containers, queue and table on the shared Azurite.
/// </summary>
public sealed partial class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly TaskCompletionSource<Uri> _url = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ServiceProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _process.Exited += (_, _) => _url.TrySetException(new InvalidOperationException($"cloudsoup dev exited ({_process.ExitCode}) before serving:\n{Output}"));
    }

    public Uri Url => _url.Task.Result;
    public bool HasExited => _process.HasExited;
    /// <summary>Everything the process wrote so far (stdout and stderr), one entry per line.</summary>
    public IReadOnlyList<string> Lines => _lines.ToArray();
    public string Output => string.Join('\n', _lines);

    public static async Task<ServiceProcess> StartAsync(CloudSoupOptions options)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { CliBuildFixture.Dll, "dev", "--storage", options.ConnectionString!, "--port", "0" }) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        psi.Environment.Remove("CloudSoupStorage");
        foreach (var (name, value) in Settings(options)) psi.Environment[$"{CloudSoupOptions.Section}__{name}"] = value;
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var service = new ServiceProcess(process);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var started = await Task.WhenAny(service._url.Task, Task.Delay(TimeSpan.FromMinutes(3)));
        if (started != service._url.Task)
        {
            await service.DisposeAsync();
            throw new InvalidOperationException($"cloudsoup dev did not print its API address:\n{service.Output}");
        }
        await service._url.Task;
        return service;
    }

    /// <summary>Polls <paramref name="condition"/> over the output until it holds or the process exits; never asserts on elapsed time.</summary>
    public async Task WaitForOutputAsync(Func<IReadOnlyList<string>, bool> condition, string what, int maxSeconds = 120)
    {
        var deadline = DateTime.UtcNow.AddSeconds(maxSeconds);
        while (!condition(Lines))
        {
            if (HasExited) throw new InvalidOperationException($"cloudsoup dev exited ({_process.ExitCode}) while waiting for {what}:\n{Output}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"no {what} in the output of cloudsoup dev:\n{Output}");
            await Task.Delay(100);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null) return;
        _lines.Enqueue(line);
        if (ApiLine().Match(line) is { Success: true } m) _url.TrySetResult(new Uri(m.Groups[1].Value + "/"));
    }

    private static IEnumerable<(string, string)> Settings(CloudSoupOptions o)
    {
        yield return (nameof(o.CheckpointsContainer), o.CheckpointsContainer);
        yield return (nameof(o.RecipesContainer), o.RecipesContainer);
        yield return (nameof(o.MergedContainer), o.MergedContainer);
        yield return (nameof(o.JobsContainer), o.JobsContainer);
        yield return (nameof(o.EvalContainer), o.EvalContainer);
        yield return (nameof(o.JobsQueue), o.JobsQueue);
        yield return (nameof(o.PoisonQueue), o.PoisonQueue);
        yield return (nameof(o.JobsTable), o.JobsTable);
        yield return (nameof(o.WatchInterval), o.WatchInterval.ToString("c", CultureInfo.InvariantCulture));
        yield return (nameof(o.IdlePollInterval), o.IdlePollInterval.ToString("c", CultureInfo.InvariantCulture));
    }

    // `cloudsoup dev` prints "  API          http://127.0.0.1:PORT/api/merges" once it serves.
    [GeneratedRegex(@"^\s*API\s+(http://[^\s/]+)/api/merges\s*$")]
    private static partial Regex ApiLine();
}
