namespace CloudSoup.Cli.Dev;

/// <summary>The CloudSoup checkout: the folder holding tools/package.json (where Azurite and the MNIST data are installed).</summary>
public static class RepoRoot
{
    public static string Find()
    {
        var fromEnv = Environment.GetEnvironmentVariable("CLOUDSOUP_ROOT");
        if (!string.IsNullOrEmpty(fromEnv) && IsRoot(fromEnv)) return Path.GetFullPath(fromEnv);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (IsRoot(dir.FullName)) return dir.FullName;
        throw new InvalidOperationException("cannot find the CloudSoup checkout (a folder with tools/package.json); set CLOUDSOUP_ROOT to it");
    }

    private static bool IsRoot(string dir) => File.Exists(Path.Combine(dir, "tools", "package.json"));
}
