// cloudsoup-api: the standalone host (API + blob drop watcher) configured from the environment like the worker:
// CloudSoupStorage (or the identity-based CloudSoupStorage__* settings), and CLOUDSOUP_BIND / CLOUDSOUP_PORT
// (default 127.0.0.1:8080; the container sets 0.0.0.0), and a credential, which any address but loopback requires:
// CloudSoup__ApiKey and/or CloudSoup__EntraAuthority with CloudSoup__EntraAudience (docs/security.md).
using System.Net;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using Microsoft.Extensions.Configuration;

var configuration = new ConfigurationBuilder().AddEnvironmentVariables().AddCommandLine(args).Build();
var options = CloudSoupOptions.FromConfiguration(configuration);
try { options.Validate(); }
catch (InvalidOperationException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
string bind = configuration["CLOUDSOUP_BIND"] ?? "127.0.0.1";
if (!IPAddress.TryParse(bind, out var address))
{
    Console.Error.WriteLine($"error: CLOUDSOUP_BIND '{bind}' is not an IP address");
    return 2;
}
if (!int.TryParse(configuration["CLOUDSOUP_PORT"] ?? "8080", out int port) || port is < 0 or > 65535)
{
    Console.Error.WriteLine($"error: CLOUDSOUP_PORT '{configuration["CLOUDSOUP_PORT"]}' is not a port number");
    return 2;
}
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
CloudSoupHost host;
try
{
    host = await CloudSoupHost.StartAsync(options, new CloudSoupHostOptions { Address = address, Port = port }, stop.Token);
}
catch (InvalidOperationException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
await using var _ = host;
Console.WriteLine($"cloudsoup-api listening at {host.Url}");
await host.WaitForShutdownAsync(stop.Token);
return 0;
