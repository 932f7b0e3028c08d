namespace CloudSoup.Tests.Support;

/// <summary>The repository root, found the way the product finds it (CLOUDSOUP_ROOT or the folder holding tools/package.json).</summary>
public static class RepoRoot
{
    public static string Path { get; } = CloudSoup.Cli.Dev.RepoRoot.Find();
}
