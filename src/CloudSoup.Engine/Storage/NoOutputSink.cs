namespace CloudSoup.Engine.Storage;

/// <summary>The sink of a run that only plans (MergeJobRunner.PlanPartsAsync): it writes nothing, and refuses if asked to.</summary>
public sealed class NoOutputSink : IOutputSink
{
    public Task<Stream> CreateAsync(string relativePath, CancellationToken ct) => throw new InvalidOperationException("a planning run writes no output");

    public Task CommitAsync(CancellationToken ct) => Task.CompletedTask;

    public Task AbortAsync(CancellationToken ct) => Task.CompletedTask;

    public string Locate(string relativePath) => relativePath;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
