namespace CloudSoup.Tests.Support;

/// <summary>The repository root: CLOUDSOUP_ROOT, or the first folder above the test binaries holding tools/package.json.</summary>
public static class RepoRoot
{
    public static string Path { get; } = Find();

    private static string Find()
    {
        if (Environment.GetEnvironmentVariable("CLOUDSOUP_ROOT") is { Length: > 0 } env && File.Exists(System.IO.Path.Combine(env, "tools", "package.json")))
            return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "tools", "package.json"))) return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (no tools/package.json above the test binaries)");
    }
}
