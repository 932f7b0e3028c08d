// The Functions worker's entry point: the host FunctionsApp builds (tested), storage created, then run.
using CloudSoup.Control.Configuration;
using CloudSoup.Functions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

var app = FunctionsApp.Build(args);
await app.Services.GetRequiredService<StorageClients>().EnsureCreatedAsync(CancellationToken.None);
await app.RunAsync();
