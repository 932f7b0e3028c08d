// Azurite (the Azure Storage emulator, npm package in tools/node_modules) as a child process on dynamic
// loopback ports, for `cloudsoup dev`, the demo and the tests. Ports come from Azurite's own
// "... service is successfully listening at http://127.0.0.1:NNNN" lines; the connection string is the
// explicit devstoreaccount1 form (UseDevelopmentStorage=true only works on the default ports).
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace CloudSoup.Cli.Dev;

public sealed partial class AzuriteProcess : IAsyncDisposable
{
    public const string AccountName = "devstoreaccount1";
    /// <summary>Azurite's well-known development key (public, documented; not a secret).</summary>
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly Process _process;
    private readonly string _workDir;

    private AzuriteProcess(Process process, string workDir, Uri blob, Uri queue, Uri table)
    {
        _process = process;
        _workDir = workDir;
        BlobEndpoint = blob;
        QueueEndpoint = queue;
        TableEndpoint = table;
    }

    public Uri BlobEndpoint { get; }
    public Uri QueueEndpoint { get; }
    public Uri TableEndpoint { get; }
    public int ProcessId => _process.Id;

    public string ConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};" +
        $"BlobEndpoint={BlobEndpoint}{AccountName};QueueEndpoint={QueueEndpoint}{AccountName};TableEndpoint={TableEndpoint}{AccountName};";

    [GeneratedRegex(@"Azurite (Blob|Queue|Table) service is successfully listening at (http://[^\s]+)")]
    private static partial Regex ListeningLine();

    public static async Task<AzuriteProcess> StartAsync(string? repoRoot = null, CancellationToken ct = default)
    {
        string root = repoRoot ?? RepoRoot.Find();
        string script = Path.Combine(root, "tools", "node_modules", "azurite", "dist", "src", "azurite.js");
        if (!File.Exists(script))
            throw new InvalidOperationException($"Azurite is not installed ({script} is missing): run ./cloudsoup setup");
        string node = FindOnPath("node") ?? throw new InvalidOperationException("node is not on PATH: install Node.js 20 or newer, then run ./cloudsoup setup");

        string workDir = Directory.CreateTempSubdirectory("cloudsoup-azurite-").FullName;
        // Azurite must not outlive us, even when this process is killed: a preloaded snippet exits node when
        // its stdin (a pipe held by this process) closes, which the OS does when we die.
        string exitWithParent = Path.Combine(workDir, "exit-with-parent.js");
        await File.WriteAllTextAsync(exitWithParent,
            "process.stdin.on('end', () => process.exit(0)); process.stdin.on('error', () => process.exit(0)); process.stdin.resume();\n", ct).ConfigureAwait(false);
        var psi = new ProcessStartInfo(node)
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
                 {
                     "--require", exitWithParent, script, "--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent",
                     "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost", "127.0.0.1",
                     "--blobPort", "0", "--queuePort", "0", "--tablePort", "0",
                 })
            psi.ArgumentList.Add(a);

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var endpoints = new Dictionary<string, Uri>();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var recent = new Queue<string>();
        void Remember(string line) { lock (recent) { recent.Enqueue(line); while (recent.Count > 20) recent.Dequeue(); } }
        string Recent() { lock (recent) return string.Join(" | ", recent); }

        // Keep draining both pipes for the life of the process, so Azurite never blocks on a full pipe.
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            Remember(e.Data);
            var m = ListeningLine().Match(e.Data);
            if (!m.Success) return;
            lock (endpoints)
            {
                endpoints[m.Groups[1].Value] = new Uri(m.Groups[2].Value.TrimEnd('/') + "/");
                if (endpoints.Count == 3) ready.TrySetResult();
            }
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) Remember(e.Data); };
        process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException($"Azurite exited with code {process.ExitCode} before it was ready: {Recent()}"));

        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            Kill(process);
            TryDelete(workDir);
            if (e is TimeoutException) throw new InvalidOperationException($"Azurite did not report its ports within 60 s: {Recent()}");
            throw;
        }
        lock (endpoints) return new AzuriteProcess(process, workDir, endpoints["Blob"], endpoints["Queue"], endpoints["Table"]);
    }

    private static string? FindOnPath(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
            if (OperatingSystem.IsWindows() && File.Exists(candidate + ".exe")) return candidate + ".exe";
        }
        return null;
    }

    private static void Kill(Process p)
    {
        try { if (!p.HasExited) p.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
    }

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    public async ValueTask DisposeAsync()
    {
        Kill(_process);
        try { await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false); }
        catch (TimeoutException) { }
        _process.Dispose();
        TryDelete(_workDir);
    }
}
