namespace CloudSoup.Engine.Storage;

/// <summary>
/// The sink of a run that only plans and checks (MergeJobRunner.PlanPartsAsync): what the checks would write (the model
/// files step's side files) is discarded.
/// </summary>
public sealed class NoOutputSink : IOutputSink
{
    public Task<Stream> CreateAsync(string relativePath, CancellationToken ct) => Task.FromResult(Stream.Null);

    public Task CommitAsync(CancellationToken ct) => Task.CompletedTask;

    public Task AbortAsync(CancellationToken ct) => Task.CompletedTask;

    public string Locate(string relativePath) => relativePath;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
