namespace CloudSoup.Cli.Download;

/// <summary>An open read of a file: its content from <see cref="Offset"/> to the end; disposing it ends the request.</summary>
internal sealed class RemoteRead(Stream content, long offset, IDisposable? owner = null) : IDisposable
{
    public Stream Content { get; } = content;
    public long Offset { get; } = offset;

    public void Dispose()
    {
        Content.Dispose();
        owner?.Dispose();
    }
}
