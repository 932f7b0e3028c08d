namespace CloudSoup.Engine.Storage;

/// <summary>
/// Writes into a hidden staging folder inside the target directory and moves the files into place on
/// commit, so a crash never leaves a half-written model where a finished one is expected.
/// </summary>
public sealed class LocalDirectorySink : IOutputSink
{
    private readonly string _target;
    private readonly string _staging;
    private readonly List<string> _files = [];
    private bool _done;

    public LocalDirectorySink(string targetDirectory)
    {
        _target = Path.GetFullPath(targetDirectory);
        Directory.CreateDirectory(_target);
        _staging = Path.Combine(_target, $".cloudsoup-staging-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_staging);
    }

    public Task<Stream> CreateAsync(string relativePath, CancellationToken ct)
    {
        var full = StagedPath(relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        _files.Add(relativePath);
        return Task.FromResult<Stream>(new FileStream(full, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, useAsync: true));
    }

    private string StagedPath(string relativePath)
    {
        var full = Path.GetFullPath(Path.Combine(_staging, relativePath));
        if (!full.StartsWith(_staging + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            throw new ArgumentException($"output path '{relativePath}' escapes the output directory");
        return full;
    }

    public Task CommitAsync(CancellationToken ct)
    {
        foreach (var rel in _files)
        {
            var dest = Path.Combine(_target, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(dest)!);
            File.Move(StagedPath(rel), dest, overwrite: true);
        }
        Directory.Delete(_staging, recursive: true);
        _done = true;
        return Task.CompletedTask;
    }

    public Task AbortAsync(CancellationToken ct)
    {
        if (!_done && Directory.Exists(_staging)) Directory.Delete(_staging, recursive: true);
        _done = true;
        return Task.CompletedTask;
    }

    public string Locate(string relativePath) => Path.Combine(_target, relativePath);

    public async ValueTask DisposeAsync() => await AbortAsync(CancellationToken.None).ConfigureAwait(false);
}
