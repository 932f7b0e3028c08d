// The Functions host: the same services the standalone host registers (CloudSoupServices), configured from
// app settings: CloudSoupStorage (connection string) or CloudSoupStorage__blobServiceUri/__queueServiceUri/
// __tableServiceUri/__clientId (managed identity). The queue worker is not here: it runs as a Container Apps
// job (`cloudsoup worker --once`).
using CloudSoup.Service.Configuration;
using CloudSoup.Service.Hosting;
using Microsoft.Azure.Functions.Worker.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

var builder = FunctionsApplication.CreateBuilder(args);
builder.ConfigureFunctionsWebApplication();
builder.Services.AddCloudSoup(CloudSoupOptions.FromConfiguration(builder.Configuration));

var app = builder.Build();
await app.Services.GetRequiredService<StorageClients>().EnsureCreatedAsync(CancellationToken.None);
await app.RunAsync();
