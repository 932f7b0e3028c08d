using CloudSoup.Control.Recipes;
using CloudSoup.Tests.Support;

namespace CloudSoup.Tests.Cli;

/// <summary>
/// Hostile recipes (Support/HostileRecipes, docs/reliability.md) through the real `cloudsoup merge` process: a
/// recursive alias or deep nesting used to end in a stack overflow (exit 134), an alias bomb in gigabytes of memory.
/// Now each is exit 2 with one line naming the field, and --out stays untouched.
/// </summary>
public class HostileRecipeCliTests(CliBuildFixture _) : IClassFixture<CliBuildFixture>
{
    public static TheoryData<string> All => HostileRecipes.Names();

    private static void AssertRefused(int code, string err, string field, string mention, string outDir, string what)
    {
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(code == 2, $"{what}: exit {code}, stderr: {(err.Length > 2000 ? err[..2000] : err)}");
        Assert.True(lines.Length == 1, $"{what}: expected one stderr line, got: {err}");
        Assert.StartsWith($"error: {field}", lines[0]);
        Assert.Contains(mention, lines[0]);
        Assert.DoesNotContain("Exception", err);
        Assert.True(!Directory.Exists(outDir) || !Directory.EnumerateFileSystemEntries(outDir).Any(), $"{what}: --out is not empty");
    }

    [Theory]
    [MemberData(nameof(All))]
    public void Merge_refuses_a_hostile_recipe_with_exit_2_and_one_line_naming_the_field(string name)
    {
        var r = HostileRecipes.Get(name);
        using var dir = new TempDir();
        File.WriteAllText(dir["r.yaml"], r.Text);
        var (code, _, err) = MergeCliTests.Run("dotnet", [CliBuildFixture.Dll, "merge", dir["r.yaml"], "--out", dir["out"]], dir.Path);
        AssertRefused(code, err, r.Field, r.Mention, dir["out"], name);
    }

    [Fact]
    public void An_output_split_into_more_files_than_the_job_record_lists_is_refused_before_writing()
    {
        using var dir = new TempDir();
        var rng = new Random(5);
        var tensors = Enumerable.Range(0, RecipeLimits.MaxOutputShards + 1).Select(i => ($"t{i:D3}.weight", RawSafetensors.Random(rng, "F32", 2))).ToList();
        RawSafetensors.Write(dir["a.safetensors"], tensors);
        RawSafetensors.Write(dir["b.safetensors"], tensors);
        File.WriteAllText(dir["r.yaml"], "merge_method: linear\nmodels: [a.safetensors, b.safetensors]\noutput: {shard_size: 8}\n");
        var (code, _, err) = MergeCliTests.Run("dotnet", [CliBuildFixture.Dll, "merge", dir["r.yaml"], "--out", dir["out"]], dir.Path);
        AssertRefused(code, err, "output.shard_size", $"at most {RecipeLimits.MaxOutputShards}", dir["out"], "shards");

        File.WriteAllText(dir["ok.yaml"], "merge_method: linear\nmodels: [a.safetensors, b.safetensors]\noutput: {shard_size: 16}\n");
        var (ok, _, okErr) = MergeCliTests.Run("dotnet", [CliBuildFixture.Dll, "merge", dir["ok.yaml"], "--out", dir["ok"]], dir.Path);
        Assert.True(ok == 0, okErr);
        Assert.Equal((RecipeLimits.MaxOutputShards + 1) / 2 + 1, Directory.GetFiles(dir["ok"], "model-*.safetensors").Length);
    }
}
