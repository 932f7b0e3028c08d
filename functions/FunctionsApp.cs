// The Functions host's composition, in one method that Program.cs and the tests both call, so the tests exercise
// the real DI graph and configuration: the control plane's services (CloudSoupServices), configured from app
// settings: CloudSoupStorage (connection string) or CloudSoupStorage__blobServiceUri/__queueServiceUri/
// __tableServiceUri/__clientId (managed identity). The queue worker is not here: it runs as a Container Apps job
// (`cloudsoup worker --once`).
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Hosting;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace CloudSoup.Functions;

public static class FunctionsApp
{
    /// <summary>Builds the Functions worker host; <paramref name="settings"/> adds configuration (the tests' app settings).</summary>
    public static IHost Build(string[] args, IEnumerable<KeyValuePair<string, string?>>? settings = null)
    {
        var builder = FunctionsApplication.CreateBuilder(args);
        if (settings != null) builder.Configuration.AddInMemoryCollection(settings);
        builder.ConfigureFunctionsWebApplication();
        builder.Services.AddCloudSoupControlPlane(CloudSoupOptions.FromConfiguration(builder.Configuration));
        return builder.Build();
    }
}
