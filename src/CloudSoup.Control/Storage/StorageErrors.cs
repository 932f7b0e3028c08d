using Azure;
using CloudSoup.Control.Errors;

namespace CloudSoup.Control.Storage;

/// <summary>Turns Azure Storage failures into CloudSoup's error kinds, which decide whether a job is retried.</summary>
internal static class StorageErrors
{
    public static CloudSoupException Map(RequestFailedException e, string path) => e.Status switch
    {
        404 => new CloudSoupException(ErrorKind.MissingInput, $"blob '{path}' does not exist", inner: e),
        412 => new CloudSoupException(ErrorKind.InputChanged, $"blob '{path}' changed while the job was reading it", inner: e),
        _ => Transient(e, path),
    };

    public static CloudSoupException Transient(Exception e, string path) =>
        new(ErrorKind.Transient, $"storage error on '{path}': {Describe(e)}", inner: e);

    private static string Describe(Exception e) => e switch
    {
        RequestFailedException r => $"{r.Status} {r.ErrorCode ?? r.Message.Split('\n')[0]}",
        _ => e.Message.Split('\n')[0],
    };
}
