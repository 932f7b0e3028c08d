namespace CloudSoup.Control.Jobs;

/// <summary>The files every job writes beside its weights under merged/&lt;job-id&gt;/&lt;attempt&gt;/, and how they are served.</summary>
public static class JobOutputs
{
    public const string ReportJson = "report.json";
    public const string ReportHtml = "report.html";
    public const string ResolvedRecipe = "recipe.resolved.json";

    /// <summary>
    /// The "container/path" of <paramref name="fileName"/> among a job record's outputs, or null. Readers find outputs
    /// this way, through the record, never by listing merged/ (where an unfinished attempt's files may lie).
    /// </summary>
    public static string? Find(IReadOnlyList<string> outputs, string fileName) =>
        outputs.FirstOrDefault(o => o.EndsWith("/" + fileName, StringComparison.Ordinal));

    public static string ContentType(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".json" => "application/json",
        ".html" => "text/html; charset=utf-8",
        ".png" => "image/png",
        ".svg" => "image/svg+xml",
        ".yaml" or ".yml" => "application/yaml",
        ".md" => "text/markdown; charset=utf-8",
        ".txt" or ".jinja" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
}
