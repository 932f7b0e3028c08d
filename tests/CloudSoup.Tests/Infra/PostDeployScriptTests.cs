using System.Diagnostics;
using System.Text.RegularExpressions;

namespace CloudSoup.Tests.Infra;

/// <summary>
/// scripts/post-deploy.sh (azd's postdeploy hook) run against a stand-in `az` on PATH: it waits a bounded
/// number of times for the blobs_extension key, fails clearly when the key never comes, and subscribes the
/// webhook on the host name the deployment reports, with only variables main.bicep outputs.
/// </summary>
public partial class PostDeployScriptTests
{
    private static string Script => InfraRepo.PathOf("scripts/post-deploy.sh");

    [Fact]
    public void Script_parses()
    {
        var result = Run("sh", ["-n", Script], new Dictionary<string, string>());
        Assert.True(result.ExitCode == 0, "sh -n: " + result.StdErr);
    }

    [GeneratedRegex(@"\$\{(?<name>[A-Za-z_][A-Za-z0-9_]*):\?")]
    private static partial Regex RequiredVariable();

    [Fact]
    public void Script_requires_only_variables_azd_provides()
    {
        var required = RequiredVariable().Matches(File.ReadAllText(Script)).Select(m => m.Groups["name"].Value).ToList();
        Assert.Contains("AZURE_FUNCTION_APP_HOST_NAME", required);
        var outputs = Bicep.Main.Outputs.Select(o => o.Name).Concat(["AZURE_ENV_NAME", "AZURE_SUBSCRIPTION_ID"]).ToHashSet();
        Assert.All(required, v => Assert.True(outputs.Contains(v), $"post-deploy.sh requires {v}, which main.bicep does not output"));
        Assert.DoesNotContain("azurewebsites.net", File.ReadAllText(Script));    // the host name comes from the deployment
    }

    [Fact]
    public void Subscribed_functions_are_event_grid_blob_triggers_of_the_function_app()
    {
        var subscribed = Regex.Matches(File.ReadAllText(Script), @"\b(?<container>[a-z-]+):(?<function>[A-Z]\w+)\b")
            .Select(m => (m.Groups["container"].Value, m.Groups["function"].Value)).ToList();
        Assert.Equal(2, subscribed.Count);
        var sources = Directory.EnumerateFiles(InfraRepo.Root, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/bin/") && !f.Contains("/obj/") && !f.Contains("/tests/"))
            .Select(File.ReadAllText).Where(t => t.Contains("BlobTriggerSource.EventGrid")).ToList();
        foreach (var (container, function) in subscribed)
            Assert.True(sources.Any(t => Regex.IsMatch(t, $@"\[Function\(""{function}""\)\][\s\S]{{0,300}}BlobTrigger\(""{container}/")),
                $"post-deploy.sh subscribes {function} to {container}/, but no Event Grid blob trigger function {function} watches {container}/");
    }

    [Fact]
    public void Script_fails_clearly_when_the_key_never_appears()
    {
        var fake = FakeAz(keyFromCall: int.MaxValue);
        var result = Run("sh", [Script], fake.Environment);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("blobs_extension", result.StdErr);
        Assert.Contains("after 3 attempts", result.StdErr);
        var calls = fake.Calls();
        Assert.Equal(3, calls.Count(c => c.StartsWith("functionapp keys list", StringComparison.Ordinal)));
        Assert.DoesNotContain(calls, c => c.StartsWith("eventgrid", StringComparison.Ordinal));
    }

    [Fact]
    public void Script_waits_for_the_key_then_subscribes_both_containers_on_the_default_host_name()
    {
        var fake = FakeAz(keyFromCall: 3);   // call 1 fails, call 2 answers without the key, call 3 has it
        var result = Run("sh", [Script], fake.Environment);
        Assert.True(result.ExitCode == 0, result.StdOut + result.StdErr);
        var subscriptions = fake.Calls().Where(c => c.StartsWith("eventgrid system-topic event-subscription create", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, subscriptions.Count);
        foreach (var (container, function) in new[] { ("checkpoints", "CheckpointDropped"), ("recipes", "RecipeDropped") })
            Assert.Contains(subscriptions, s =>
                s.Contains($"--endpoint https://func-abc-x1y2.westus-01.azurewebsites.example/runtime/webhooks/blobs?functionName=Host.Functions.{function}&code=KEY123 ", StringComparison.Ordinal)
                && s.Contains($"--subject-begins-with /blobServices/default/containers/{container}/", StringComparison.Ordinal)
                && s.Contains("--system-topic-name evgt-test", StringComparison.Ordinal));
    }

    private sealed record Fake(Dictionary<string, string> Environment, string Log)
    {
        public List<string> Calls() => File.Exists(Log) ? File.ReadAllLines(Log).ToList() : [];
    }

    /// <summary>An `az` that logs its arguments; `functionapp keys list` fails on call 1 and prints KEY123 from call <paramref name="keyFromCall"/> on.</summary>
    private static Fake FakeAz(int keyFromCall)
    {
        var dir = Directory.CreateTempSubdirectory("cloudsoup-fake-az-").FullName;
        var log = Path.Combine(dir, "calls.log");
        var az = Path.Combine(dir, "az");
        File.WriteAllText(az, $$"""
            #!/bin/sh
            echo "$*" >> "{{log}}"
            if [ "$1 $2 $3" = "functionapp keys list" ]; then
              n=$(cat "{{dir}}/count" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "{{dir}}/count"
              if [ "$n" -eq 1 ]; then echo "ERROR: host not started" >&2; exit 1; fi
              if [ "$n" -ge {{keyFromCall}} ]; then echo KEY123; fi
            fi
            exit 0
            """.Replace("\r\n", "\n"));
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(az, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return new Fake(new Dictionary<string, string>
        {
            ["PATH"] = dir + ":" + Environment.GetEnvironmentVariable("PATH"),
            ["RESOURCE_GROUP"] = "rg-test",
            ["AZURE_FUNCTION_APP_NAME"] = "func-abc",
            ["AZURE_FUNCTION_APP_HOST_NAME"] = "func-abc-x1y2.westus-01.azurewebsites.example",
            ["EVENTGRID_SYSTEM_TOPIC_NAME"] = "evgt-test",
            ["KEY_ATTEMPTS"] = "3",
            ["KEY_DELAY_SECONDS"] = "0",
        }, log);
    }

    private sealed record Result(int ExitCode, string StdOut, string StdErr);

    private static Result Run(string file, string[] args, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = InfraRepo.Root };
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (k, v) in environment) start.Environment[k] = v;
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(30))) { p.Kill(true); throw new TimeoutException($"{file} {string.Join(' ', args)}"); }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
