// libtorch reports bad requests (a storage of 2^62 elements, an allocation of 16 TiB, a shape that does not fit) as
// native exceptions, which TorchSharp raises as ExternalException. They come from what a job asked for, not from
// anything that passes, so a job fails once with the reason instead of being retried as if the worker had a hiccup
// (Worker/Queue/JobProcessor.cs retries everything that is not a CloudSoupException). The same goes for arithmetic
// overflow on sizes an input declares.
using System.Runtime.InteropServices;
using CloudSoup.Control.Errors;

namespace CloudSoup.Engine.Jobs;

public static class TensorLibraryErrors
{
    public static bool IsInputError(Exception e) => e is ExternalException or OverflowException;

    /// <summary>The error as a non-retriable CloudSoupException, with libtorch's own last line (printable, bounded).</summary>
    public static CloudSoupException AsInputError(Exception e)
    {
        string line = e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .FirstOrDefault(l => !l.StartsWith("Exception raised from", StringComparison.Ordinal)) ?? e.GetType().Name;
        string what = e is OverflowException ? "a size in the input overflows" : "the tensor library refused the job's input";
        return new CloudSoupException(ErrorKind.InvalidCheckpoint, $"{what}: {SafeText.Line(line, 200)}", inner: e);
    }
}
