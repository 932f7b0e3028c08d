// The standalone host: the merge API on Kestrel (minimal APIs), the blob drop watcher and the job reconciler
// (every CloudSoup:ReconcileInterval; Jobs/JobReconciler.cs), in one process, with
// nothing of the data plane: a team that does not want Functions runs it as a container. `cloudsoup dev` adds
// the queue worker through ExtraServices (the CLI references the data plane; this project does not).
// Binds to loopback by default. With CloudSoup__ApiKey or CloudSoup__EntraAuthority set every request needs that
// credential (Api/ApiAuthentication.cs); without one the host refuses any address but loopback, so it is never open to
// a network by accident (docs/security.md).
using System.Net;
using CloudSoup.Control.Api;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Intake;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Control.Hosting;

public sealed class CloudSoupHostOptions
{
    /// <summary>Address to listen on; loopback unless you mean to expose the API.</summary>
    public IPAddress Address { get; set; } = IPAddress.Loopback;
    /// <summary>0 picks a free port; see <see cref="CloudSoupHost.Url"/>.</summary>
    public int Port { get; set; }
    public bool RunWatcher { get; set; } = true;
    /// <summary>More services and hosted services for the same process (the dev command's queue worker).</summary>
    public Action<IServiceCollection>? ExtraServices { get; set; }
    public LogLevel MinimumLogLevel { get; set; } = LogLevel.Information;
}

public sealed class CloudSoupHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private CloudSoupHost(WebApplication app, Uri url)
    {
        _app = app;
        Url = url;
    }

    /// <summary>The bound base address, e.g. http://127.0.0.1:7071/.</summary>
    public Uri Url { get; }
    public IServiceProvider Services => _app.Services;

    public static async Task<CloudSoupHost> StartAsync(CloudSoupOptions options, CloudSoupHostOptions host, CancellationToken ct)
    {
        bool authenticated = ApiAuthentication.IsConfigured(options);
        if (!authenticated && !IPAddress.IsLoopback(host.Address))
            throw new InvalidOperationException(
                $"refusing to listen on {host.Address} without an API key: anyone who can reach it could submit jobs and read reports. " +
                "Set CloudSoup__ApiKey (clients send it as x-api-key or Authorization: Bearer), or CloudSoup__EntraAuthority and " +
                "CloudSoup__EntraAudience (clients send an Entra ID token), or listen on 127.0.0.1");
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseKestrel(k => k.Listen(host.Address, host.Port));
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
        builder.Logging.SetMinimumLevel(host.MinimumLogLevel);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.Logging.AddFilter("System.Net.Http", LogLevel.Warning);
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Services.AddCloudSoupControlPlane(options);
        builder.Services.AddApiAuthentication(options);
        host.ExtraServices?.Invoke(builder.Services);
        if (host.RunWatcher) builder.Services.AddHostedService(sp => sp.GetRequiredService<BlobDropWatcher>());
        if (options.ReconcileInterval > TimeSpan.Zero) builder.Services.AddHostedService(sp => sp.GetRequiredService<ReconcilerService>());

        var app = builder.Build();
        if (authenticated) app.UseApiAuthentication(options);
        app.MapMergeApi();
        await app.Services.GetRequiredService<StorageClients>().EnsureCreatedAsync(ct).ConfigureAwait(false);
        await app.StartAsync(ct).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new CloudSoupHost(app, new Uri(address.TrimEnd('/') + "/"));
    }

    public Task WaitForShutdownAsync(CancellationToken ct) => _app.WaitForShutdownAsync(ct);

    public async ValueTask DisposeAsync()
    {
        try { await _app.StopAsync(CancellationToken.None).ConfigureAwait(false); }
        finally { await _app.DisposeAsync().ConfigureAwait(false); }
    }
}
