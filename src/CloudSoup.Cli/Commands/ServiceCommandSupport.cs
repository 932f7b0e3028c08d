using System.CommandLine;
using Azure;
using CloudSoup.Control.Configuration;
using Microsoft.Extensions.Configuration;

namespace CloudSoup.Cli.Commands;

/// <summary>What the service commands (dev, worker, submit, status) share: storage and API settings, error lines.</summary>
internal static class ServiceCommandSupport
{
    public const string DefaultApi = "http://127.0.0.1:7071";

    public static Option<string?> StorageOption() => new("--storage")
    {
        Description = "Azure Storage connection string (default: the CloudSoupStorage environment variable, or CloudSoupStorage__blobServiceUri/__queueServiceUri/__tableServiceUri for an Azure identity)",
    };

    public static Option<string?> ApiOption() => new("--api")
    {
        Description = $"Base URL of a running CloudSoup API (default: $CLOUDSOUP_API or {DefaultApi}, where `cloudsoup dev` listens)",
    };

    /// <summary>One option, two names: an API key (--api-key) or an Entra ID access token (--api-token); ApiClient sends each its way.</summary>
    public static Option<string?> ApiKeyOption() => new("--api-key", "--api-token")
    {
        Description = "Credential of a CloudSoup API that requires one: its API key, or an Entra ID access token for it " +
                      "(e.g. $(az account get-access-token --scope api://APP/.default --query accessToken -o tsv)); " +
                      "default: $CLOUDSOUP_API_KEY, else $CLOUDSOUP_API_TOKEN. A key also goes out as x-functions-key, so a function key of the Functions app works too",
    };

    public static string? ApiKey(string? key) =>
        !string.IsNullOrWhiteSpace(key) ? key.Trim()
        : Environment.GetEnvironmentVariable("CLOUDSOUP_API_KEY") is { Length: > 0 } k ? k.Trim()
        : Environment.GetEnvironmentVariable("CLOUDSOUP_API_TOKEN") is { Length: > 0 } t ? t.Trim() : null;

    /// <summary>Options from the environment (CloudSoupStorage, CloudSoup__*) with --storage taking precedence.</summary>
    public static CloudSoupOptions Options(string? storage)
    {
        var config = new ConfigurationBuilder().AddEnvironmentVariables().Build();
        var options = CloudSoupOptions.FromConfiguration(config);
        if (!string.IsNullOrWhiteSpace(storage)) options.ConnectionString = storage;
        return options;
    }

    public static bool HasStorage(CloudSoupOptions o) => o.UsesConnectionString || o.BlobServiceUri != null;

    public static Uri Api(string? api) =>
        new((api ?? Environment.GetEnvironmentVariable("CLOUDSOUP_API") ?? DefaultApi).TrimEnd('/') + "/");

    /// <summary>CliErrors plus the failures specific to talking to storage and hosts: one line, exit 1.</summary>
    public static Task<int> RunAsync(Func<Task<int>> body) => CliErrors.RunAsync(async () =>
    {
        try
        {
            return await body();
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (RequestFailedException e)
        {
            Console.Error.WriteLine($"error: storage request failed: {e.Status} {e.ErrorCode ?? e.Message.Split('\n')[0]}");
            return 1;
        }
        catch (AggregateException e) when (e.InnerException is RequestFailedException or HttpRequestException)
        {
            Console.Error.WriteLine($"error: storage is unreachable: {e.InnerException!.Message.Split('\n')[0]}");
            return 1;
        }
    });
}
