using System.CommandLine;
using CloudSoup.Control.Configuration;
using CloudSoup.Control.Intake;
using CloudSoup.Control.Jobs;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSoup.Cli.Commands;

/// <summary><c>cloudsoup submit RECIPE [--api URL | --storage CS]</c>: queue a merge job; prints its id on stdout.</summary>
internal static class SubmitCommand
{
    public static Command Create()
    {
        var recipe = new Argument<FileInfo>("recipe") { Description = "Recipe file (YAML or JSON). Model references are blob paths: container/path, e.g. checkpoints/my-exp/a.safetensors" };
        var api = ServiceCommandSupport.ApiOption();
        var storage = ServiceCommandSupport.StorageOption();
        var apiKey = ServiceCommandSupport.ApiKeyOption();
        var cmd = new Command("submit", "Submit a merge job to a running CloudSoup API (or straight to storage with --storage).") { recipe, api, storage, apiKey };
        cmd.SetAction((parse, ct) => ServiceCommandSupport.RunAsync(() => RunAsync(parse.GetValue(recipe)!, parse.GetValue(api), parse.GetValue(storage), parse.GetValue(apiKey), ct)));
        return cmd;
    }

    private static async Task<int> RunAsync(FileInfo recipeFile, string? api, string? storage, string? apiKey, CancellationToken ct)
    {
        if (!recipeFile.Exists) throw CloudSoup.Control.Errors.CloudSoupException.Missing($"recipe file '{recipeFile.FullName}'");
        string text = await CloudSoup.Control.Recipes.RecipeText.ReadFileAsync(recipeFile.FullName, ct);
        string id, status;
        bool created;
        if (storage != null)
        {
            var clients = new StorageClients(ServiceCommandSupport.Options(storage));
            await clients.EnsureCreatedAsync(ct);
            var jobs = new JobStore(clients.JobsTable);
            var result = await new MergeSubmitter(clients, jobs, NullLogger<MergeSubmitter>.Instance).SubmitAsync(text, "cli", ct);
            (id, status, created) = (result.Job.Id, result.Job.Status, result.Enqueued);
        }
        else
        {
            using var client = new ApiClient(ServiceCommandSupport.Api(api), ServiceCommandSupport.ApiKey(apiKey));
            var (job, isNew) = await client.SubmitAsync(text, ct);
            (id, status, created) = (job.Id, job.Status, isNew);
        }
        Console.Error.WriteLine(created ? $"queued job {id}" : $"job {id} already exists ({status}); nothing new queued");
        Console.Error.WriteLine($"follow it with: cloudsoup status {id} --wait{(api != null ? $" --api {api}" : "")}");
        Console.WriteLine(id);
        return 0;
    }
}
