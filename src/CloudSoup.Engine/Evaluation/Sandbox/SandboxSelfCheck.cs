// `cloudsoup-sandbox --self-check`: confines itself exactly as for a model, then tries what a hostile model would, and
// prints one line per attempt ("blocked: ..." or "ALLOWED: ..."); exit code 0 only when every attempt was blocked.
// The tests run it (tests/CloudSoup.Tests/Evaluation/SandboxTests.cs), and it is the manual check for a deployed worker
// (docs/sandbox.md): `dotnet cloudsoup-sandbox.dll --self-check` inside the worker container.
using System.Net;
using System.Net.Sockets;
using CloudSoup.Engine.Evaluation.Sandbox.Confinement;
using TorchSharp;

namespace CloudSoup.Engine.Evaluation.Sandbox;

internal static class SandboxSelfCheck
{
    public static int Run(SandboxConfinement mode, ulong memory, string? probeFile, int probePort)
    {
        torch.InitializeDeviceType(DeviceType.CPU);
        IReadOnlyList<string> applied;
        try { applied = ChildConfinement.Apply(mode, memory, Directory.GetCurrentDirectory()); }
        catch (InvalidOperationException e)
        {
            Console.WriteLine($"setup failed: {e.Message}");
            return SandboxServer.SetupFailed;
        }
        foreach (var line in applied) Console.WriteLine($"applied: {line}");
        Console.WriteLine($"environment: {string.Join(" ", Environment.GetEnvironmentVariables().Keys.Cast<string>().Order(StringComparer.Ordinal))}");
        string scratch = Directory.GetCurrentDirectory();
        int allowed = 0;
        void Try(string what, Action attempt)
        {
            try
            {
                attempt();
                Console.WriteLine($"ALLOWED: {what}");
                allowed++;
            }
            catch (Exception e)
            {
                Console.WriteLine($"blocked: {what} ({e.GetType().Name})");
            }
        }
        try
        {
            File.WriteAllText(Path.Combine(scratch, "probe.txt"), "ok");
            Console.WriteLine("ok: the scratch folder is writable");
        }
        catch (Exception e)
        {
            Console.WriteLine($"FAILED: the scratch folder is not writable ({e.GetType().Name})");
            allowed++;
        }
        Try("writing a file next to the scratch folder", () => File.WriteAllText(Path.Combine(Path.GetDirectoryName(scratch)!, $"cloudsoup-probe-{Environment.ProcessId}"), "x"));
        if (probeFile != null)
        {
            Try($"reading {probeFile}", () => File.ReadAllBytes(probeFile));
            Try($"writing {probeFile}", () => File.AppendAllText(probeFile, "x"));
        }
        Try("reading /etc/hostname", () => File.ReadAllBytes("/etc/hostname"));
        Try("listing /", () => Directory.GetFileSystemEntries("/"));
        Try("reading the parent's environment", () => File.ReadAllBytes($"/proc/{ParentId()}/environ"));
        Try("opening a TCP socket", () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp).Dispose());
        Try("opening a UDP socket", () => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp).Dispose());
        Try("opening a Unix socket", () => new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified).Dispose());
        if (probePort > 0)
            Try($"connecting to 127.0.0.1:{probePort}", () =>
            {
                using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                s.Connect(new IPEndPoint(IPAddress.Loopback, probePort));
            });
        Try("starting another program", () => System.Diagnostics.Process.Start("/bin/true")!.WaitForExit());
        Console.WriteLine(allowed == 0 ? "all blocked" : $"{allowed} attempts were allowed");
        return allowed == 0 ? 0 : 1;
    }

    private static int ParentId()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("PPid:", StringComparison.Ordinal)) return int.Parse(line[5..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        return 1;
    }
}
