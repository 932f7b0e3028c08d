using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CloudSoup.Control.Api;
using CloudSoup.Control.Intake;
using CloudSoup.Tests.Cli;
using CloudSoup.Tests.Support;

namespace CloudSoup.Tests.Service;

/// <summary>
/// Hostile recipes (Support/HostileRecipes, docs/reliability.md) against the whole service running as a separate
/// process (`cloudsoup dev`), through HTTP and through blob drops: each ends as a 400 or a failed job naming the field,
/// and the process is still alive and serving afterwards, also after a restart over the same storage.
/// </summary>
[Collection(AzuriteCollection.Name)]
public class HostileInputServiceTests(AzuriteFixture azurite, CliBuildFixture _) : IClassFixture<CliBuildFixture>
{
    private static async Task AssertServingAsync(ServiceProcess service, HttpClient http, string after)
    {
        Assert.False(service.HasExited, $"cloudsoup dev exited after {after}:\n{service.Output}");
        var list = await http.GetAsync("/api/merges");
        Assert.True(list.StatusCode == HttpStatusCode.OK, $"GET /api/merges answered {(int)list.StatusCode} after {after}");
    }

    [Fact]
    public async Task Hostile_posts_get_400_naming_the_field_and_the_service_keeps_serving()
    {
        var options = azurite.NewOptions();
        await using var service = await ServiceProcess.StartAsync(options);
        using var http = new HttpClient { BaseAddress = service.Url };

        foreach (var r in HostileRecipes.All)
        {
            var response = await http.PostAsync("/api/merges", new StringContent(r.Text, Encoding.UTF8, "application/yaml"));
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{r.Name}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
            var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            string field = problem.GetProperty("field").GetString()!, detail = problem.GetProperty("detail").GetString()!;
            Assert.True(field.StartsWith(r.Field, StringComparison.Ordinal), $"{r.Name}: field {field}");
            Assert.True(detail.StartsWith(field + ":", StringComparison.Ordinal) && detail.Contains(r.Mention), $"{r.Name}: detail {detail}");
            Assert.DoesNotContain(detail, c => char.IsControl(c));
            await AssertServingAsync(service, http, r.Name);
        }
        Assert.Empty((await http.GetFromJsonAsync<JobListView>("/api/merges", JobView.Json))!.Jobs);

        // `cloudsoup submit --api` relays the service's answer: exit 2, one line naming the field.
        using var dir = new TempDir();
        File.WriteAllText(dir["r.yaml"], HostileRecipes.RecursiveAlias.Text);
        var (code, _, err) = MergeCliTests.Run("dotnet", [CliBuildFixture.Dll, "submit", dir["r.yaml"], "--api", service.Url.ToString()], dir.Path);
        Assert.True(code == 2, $"exit {code}: {err}");
        Assert.StartsWith($"error: {HostileRecipes.RecursiveAlias.Field}: ", Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        await AssertServingAsync(service, http, "cloudsoup submit");
    }

    [Fact]
    public async Task Hostile_blob_drops_fail_their_jobs_with_the_reason_and_a_restart_over_them_stays_up()
    {
        var storage = await azurite.NewStorageAsync();
        var o = storage.Options;
        var expected = new Dictionary<string, HostileRecipe>();
        foreach (var r in HostileRecipes.All)
        {
            await storage.Container(o.RecipesContainer).UploadTextAsync($"{r.Name}.yaml", r.Text);
            expected[$"blob:{o.RecipesContainer}/{r.Name}.yaml"] = r;
        }
        // soup.yaml files: 10,000 ingredients (blocked intake for 30 s before the limits) and a recursive alias.
        var soups = new Dictionary<string, HostileRecipe>
        {
            ["many"] = HostileRecipes.TenThousandModels with { Text = "merge_method: linear\nmodels:\n" + string.Concat(Enumerable.Range(0, 10_000).Select(i => $"  - m{i:D5}.safetensors\n")) },
            ["recursive"] = HostileRecipes.RecursiveAlias,
        };
        foreach (var (experiment, r) in soups)
        {
            await storage.Container(o.CheckpointsContainer).UploadTextAsync($"{experiment}/{BlobIntake.SoupFileName}", r.Text);
            expected[$"blob:{o.CheckpointsContainer}/{experiment}/{BlobIntake.SoupFileName}"] = r;
        }

        await using (var first = await ServiceProcess.StartAsync(o))
        {
            using var http = new HttpClient { BaseAddress = first.Url };
            var jobs = await TestBlobs.EventuallyAsync(async () =>
            {
                Assert.False(first.HasExited, $"cloudsoup dev exited:\n{first.Output}");
                var list = (await http.GetFromJsonAsync<JobListView>("/api/merges", JobView.Json))!.Jobs;
                return list.Count >= expected.Count ? list : null;
            }, $"{expected.Count} refused drops", maxSeconds: 180);
            Assert.Equal(expected.Count, jobs.Count);
            foreach (var job in jobs)
            {
                var r = expected[job.Source!];
                Assert.Equal(JobStatus.Failed, job.Status);
                Assert.True(job.Error!.StartsWith($"invalid recipe: {r.Field}", StringComparison.Ordinal) && job.Error.Contains(r.Mention), $"{job.Source}: {job.Error}");
            }
            await AssertServingAsync(first, http, "the drops");
        }

        // The drops are still there: a restarted service sees them all again and stays up.
        await using var second = await ServiceProcess.StartAsync(o);
        using var again = new HttpClient { BaseAddress = second.Url };
        await second.WaitForOutputAsync(lines => expected.Keys.All(source => lines.Any(l => l.Contains("intake rejected", StringComparison.Ordinal) && l.Contains(source + ":", StringComparison.Ordinal))),
            "a rejection of every drop after the restart", maxSeconds: 180);
        await AssertServingAsync(second, again, "the restart");
        var after = (await again.GetFromJsonAsync<JobListView>("/api/merges", JobView.Json))!.Jobs;
        Assert.Equal(expected.Count, after.Count);                       // the same failed jobs, none added
        Assert.All(after, j => Assert.Equal(JobStatus.Failed, j.Status));
    }
}
