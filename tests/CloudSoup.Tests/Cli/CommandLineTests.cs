using CloudSoup.Tests.Support;

namespace CloudSoup.Tests.Cli;

/// <summary>A command line that does not parse: one error line per problem, a close suggestion, where the usage is; exit 2, no help wall.</summary>
public class CommandLineTests(CliBuildFixture _) : IClassFixture<CliBuildFixture>
{
    private static (int Code, string Out, string Err) Cli(params string[] args) =>
        MergeCliTests.Run("dotnet", [CliBuildFixture.Dll, .. args], Path.GetTempPath());

    [Fact]
    public void A_missing_required_option_is_one_line_and_the_usage_pointer()
    {
        var (code, stdout, err) = Cli("merge", "recipe.yaml");
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        var lines = err.Trim().Split('\n').Select(l => l.Trim()).ToList();
        Assert.Equal(["error: Option '--out' is required", "usage: cloudsoup merge --help"], lines);
    }

    [Fact]
    public void Download_without_out_is_one_line_and_its_help_runs_nothing()
    {
        var (code, stdout, err) = Cli("download", "0123456789abcdef0123");
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Equal(["error: Option '--out' is required", "usage: cloudsoup download --help"], err.Trim().Split('\n').Select(l => l.Trim()).ToList());

        // --help answers without reaching for an API or storage (none is running on the default address here).
        (code, stdout, err) = Cli("download", "--help");
        Assert.True(code == 0, err);
        Assert.Contains("--out", stdout);
        Assert.Contains("--storage", stdout);
        Assert.Equal("", err);
    }

    [Theory]
    [InlineData(new[] { "merge", "r.yaml", "--out", "o", "--cuda" }, "did you mean --device cuda?")]
    [InlineData(new[] { "merge", "r.yaml", "--outt", "o" }, "did you mean --out?")]
    [InlineData(new[] { "statsu" }, "did you mean status?")]
    public void A_misspelt_option_or_command_gets_the_closest_suggestion(string[] args, string suggestion)
    {
        var (code, stdout, err) = Cli(args);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Contains(suggestion, err);
        Assert.DoesNotContain("Usage:", err);
    }

    [Fact]
    public void Setup_help_explains_and_runs_nothing()
    {
        var (code, stdout, err) = MergeCliTests.Run(Path.Combine(RepoRoot.Path, "cloudsoup"), ["setup", "--help"], Path.GetTempPath());
        Assert.True(code == 0, err);
        Assert.StartsWith("Usage: ./cloudsoup setup", stdout);
        Assert.DoesNotContain("installing", err);
        Assert.DoesNotContain("building", err);
    }
}
