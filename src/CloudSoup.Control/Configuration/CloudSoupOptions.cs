// Every setting of the service in one place. Read from configuration (environment variables, command
// line, appsettings): the storage connection under "CloudSoupStorage" (the name Functions bindings use as
// their Connection), everything else under "CloudSoup".
//
//   CloudSoupStorage                    a connection string ("UseDevelopmentStorage=true", Azurite's explicit
//                                       string, or an account key / SAS string), or, identity-based:
//   CloudSoupStorage__blobServiceUri    https://<account>.blob.core.windows.net
//   CloudSoupStorage__queueServiceUri   https://<account>.queue.core.windows.net
//   CloudSoupStorage__tableServiceUri   https://<account>.table.core.windows.net
//   CloudSoupStorage__clientId          client id of a user-assigned managed identity (optional; without it
//                                       DefaultAzureCredential picks the environment's identity)
//   CloudSoup__JobsQueue, __PoisonQueue, __CheckpointsContainer, __RecipesContainer, __MergedContainer,
//   __JobsContainer, __EvalContainer, __JobsTable       resource names (defaults below)
//   CloudSoup__VisibilityTimeout (00:05:00), __MaxAttempts (3), __RetryDelay (00:00:30),
//   __IdlePollInterval (00:00:02), __WatchInterval (00:00:01), __ProgressInterval (00:00:02), __Device (cpu),
//   __RequeueAfter (00:30:00), __ReconcileInterval (00:01:00), __SweepInterval (01:00:00)
//   CloudSoup__InputSources (checkpoints,eval), __EvalModelSources (eval)   where recipes may read from (docs/security.md)
//   CloudSoup__EvalSandbox (strict), __EvalMemoryLimit (4GB), __EvalMaxMemoryLimit (16GB), __EvalTimeLimit (00:10:00),
//   __EvalMaxTimeLimit (01:00:00)        the TorchScript evaluation sandbox (docs/sandbox.md)
//   CloudSoup__ApiKey                    the key the standalone API host requires (docs/security.md)
//   CloudSoup__EntraAuthority, __EntraAudience, __EntraRequiredRole   Entra ID tokens it accepts (docs/security.md)
using Microsoft.Extensions.Configuration;

namespace CloudSoup.Control.Configuration;

public sealed class CloudSoupOptions
{
    public const string StorageSection = "CloudSoupStorage";
    public const string Section = "CloudSoup";

    /// <summary>A storage connection string; when null the service URIs below are used with an Azure identity.</summary>
    public string? ConnectionString { get; set; }
    public Uri? BlobServiceUri { get; set; }
    public Uri? QueueServiceUri { get; set; }
    public Uri? TableServiceUri { get; set; }
    public string? ClientId { get; set; }

    public string JobsQueue { get; set; } = "merge-jobs";
    public string PoisonQueue { get; set; } = "merge-jobs-poison";
    public string CheckpointsContainer { get; set; } = "checkpoints";
    public string RecipesContainer { get; set; } = "recipes";
    public string MergedContainer { get; set; } = "merged";
    public string JobsContainer { get; set; } = "jobs";
    public string EvalContainer { get; set; } = "eval";
    public string JobsTable { get; set; } = "jobs";

    /// <summary>Where merges run: cpu (default), cuda, cuda:N, or auto (CUDA when available).</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>How long a received message stays invisible; the worker renews it every third of this while it works.</summary>
    public TimeSpan VisibilityTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Deliveries of one message before it goes to the poison queue and its job is marked failed.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>How long a message that failed with a retriable error stays hidden before the next attempt.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the queue worker sleeps when the queue is empty.</summary>
    public TimeSpan IdlePollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often the drop watcher (the local stand-in for Event Grid) lists the intake containers.</summary>
    public TimeSpan WatchInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The least time between two progress writes to a job's record.</summary>
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long a job may stay queued (or keep an expired claim) before the reconciler decides its queue message was
    /// lost and sends it a new one (Jobs/JobReconciler.cs). Longer than VisibilityTimeout + RetryDelay, the longest a
    /// live message stays hidden between two workers.
    /// </summary>
    public TimeSpan RequeueAfter { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>How often the standalone and dev hosts run the reconciler; zero turns it off in that process (the Functions app runs it on a timer).</summary>
    public TimeSpan ReconcileInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The least time between two of one reconciler's sweeps of the merged container for attempt folders nobody will
    /// use (Jobs/AttemptSweeper.cs). A worker sweeps its own job after every attempt; this sweep only picks up what a
    /// killed worker left, so it need not list the container every pass. Zero: every pass.
    /// </summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Comma-separated containers or container/prefix locations every input a recipe names must lie in (models, base
    /// model, Fishers, evaluation data, alignment specs). Unset: the checkpoints and eval containers.
    /// </summary>
    public string? InputSources { get; set; }

    /// <summary>Comma-separated locations a TorchScript evaluation model (code) may come from. Unset: the eval container.</summary>
    public string? EvalModelSources { get; set; }

    /// <summary>strict (resource limits, Landlock and seccomp, or refuse) or limits-only (docs/sandbox.md).</summary>
    public string EvalSandbox { get; set; } = "strict";

    /// <summary>Writable memory of a sandboxed evaluation model's process when the recipe sets no evaluation.limits.memory.</summary>
    public string EvalMemoryLimit { get; set; } = "4GB";

    /// <summary>The most evaluation.limits.memory may ask for.</summary>
    public string EvalMaxMemoryLimit { get; set; } = "16GB";

    /// <summary>Wall-clock time one call into a sandboxed model (load, a batch, a BatchNorm reset, a Fisher) may take.</summary>
    public TimeSpan EvalTimeLimit { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>The most evaluation.limits.seconds may ask for.</summary>
    public TimeSpan EvalMaxTimeLimit { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The API key the standalone host requires; without one it serves loopback only (docs/security.md).</summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// The Entra ID authority whose access tokens the standalone host accepts, e.g.
    /// https://login.microsoftonline.com/TENANT-ID/v2.0 (its OpenID Connect metadata gives the issuer and signing keys).
    /// </summary>
    public string? EntraAuthority { get; set; }

    /// <summary>The audiences a token must be for: the API's application ID URI and/or client id, comma-separated.</summary>
    public string? EntraAudience { get; set; }

    /// <summary>An app role the token's roles claim must hold (e.g. CloudSoup.Merge); none: any token for the audience.</summary>
    public string? EntraRequiredRole { get; set; }
    /// <summary>How jobs are split over workers (the recipe's parallelism section; docs/fanout.md).</summary>
    public ParallelismOptions Parallelism { get; set; } = new();

    public bool UsesConnectionString => !string.IsNullOrWhiteSpace(ConnectionString);

    /// <summary>Reads "CloudSoupStorage" (string or section) and the "CloudSoup" section.</summary>
    public static CloudSoupOptions FromConfiguration(IConfiguration configuration)
    {
        var options = new CloudSoupOptions();
        configuration.GetSection(Section).Bind(options);
        var storage = configuration.GetSection(StorageSection);
        if (!string.IsNullOrWhiteSpace(storage.Value)) options.ConnectionString = storage.Value;
        options.BlobServiceUri ??= UriOrNull(storage["blobServiceUri"]);
        options.QueueServiceUri ??= UriOrNull(storage["queueServiceUri"]);
        options.TableServiceUri ??= UriOrNull(storage["tableServiceUri"]);
        options.ClientId ??= storage["clientId"];
        return options;
    }

    /// <summary>Throws a one-line explanation when no storage is configured.</summary>
    public void Validate()
    {
        if (!UsesConnectionString && (BlobServiceUri is null || QueueServiceUri is null || TableServiceUri is null))
            throw new InvalidOperationException(
                "no storage configured: set CloudSoupStorage to a connection string (or pass --storage), or set " +
                "CloudSoupStorage__blobServiceUri, CloudSoupStorage__queueServiceUri and CloudSoupStorage__tableServiceUri for identity-based access");
        if (MaxAttempts < 1) throw new InvalidOperationException("CloudSoup:MaxAttempts must be at least 1");
        if (VisibilityTimeout < TimeSpan.FromSeconds(1)) throw new InvalidOperationException("CloudSoup:VisibilityTimeout must be at least one second");
        if (RequeueAfter <= VisibilityTimeout + RetryDelay)
            throw new InvalidOperationException(
                $"CloudSoup:RequeueAfter ({RequeueAfter}) must be longer than CloudSoup:VisibilityTimeout + CloudSoup:RetryDelay ({VisibilityTimeout + RetryDelay}), " +
                "or jobs whose message is only hidden for a while would be sent again");
        if (Parallelism.PartBytes < 1) throw new InvalidOperationException("CloudSoup:Parallelism:PartBytes must be at least 1 byte");
        if (ReconcileInterval < TimeSpan.Zero) throw new InvalidOperationException("CloudSoup:ReconcileInterval must not be negative (zero turns the reconciler off)");
        if (SweepInterval < TimeSpan.Zero) throw new InvalidOperationException("CloudSoup:SweepInterval must not be negative (zero sweeps on every reconciler pass)");
    }

    private static Uri? UriOrNull(string? s) => string.IsNullOrWhiteSpace(s) ? null : new Uri(s);
}
