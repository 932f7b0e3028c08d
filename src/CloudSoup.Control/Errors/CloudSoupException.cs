namespace CloudSoup.Control.Errors;

/// <summary>What went wrong, in terms a user can act on. Drives CLI exit codes, HTTP status and job retry.</summary>
public enum ErrorKind
{
    /// <summary>The recipe is malformed or asks for something impossible (HTTP 400, no retry).</summary>
    InvalidRecipe,
    /// <summary>A checkpoint is corrupt, truncated, hostile or in an unsupported format (no retry).</summary>
    InvalidCheckpoint,
    /// <summary>A referenced model, file or blob does not exist (no retry).</summary>
    MissingInput,
    /// <summary>Models disagree on tensor names or shapes (no retry).</summary>
    IncompatibleModels,
    /// <summary>An input changed while the job ran (ETag mismatch); a retry sees the new version.</summary>
    InputChanged,
    /// <summary>
    /// The evaluation model (code that came with the job) crashed, hit its memory or time limit, raised an error, or
    /// could not be run in a sandbox on this worker (no retry: the same model fails the same way).
    /// </summary>
    ModelFailed,
    /// <summary>Storage or network trouble that may pass; the job is retried.</summary>
    Transient,
}

/// <summary>
/// The one error type that crosses CloudSoup's boundaries. <see cref="Exception.Message"/> is a single
/// line meant for people; <see cref="Field"/> names the recipe field at fault when there is one. Both are made
/// printable and bounded (<see cref="ErrorText"/>), whatever input they quote.
/// </summary>
public sealed class CloudSoupException : Exception
{
    public CloudSoupException(ErrorKind kind, string message, string? field = null, Exception? inner = null)
        : base(ErrorText.OneLine(message), inner)
    {
        Kind = kind;
        Field = field is null ? null : ErrorText.OneLine(field, ErrorText.MaxKeyChars * 8);
    }

    public ErrorKind Kind { get; }
    public string? Field { get; }

    /// <summary>True when running the same job again could succeed.</summary>
    public bool IsRetriable => Kind is ErrorKind.Transient or ErrorKind.InputChanged;

    public static CloudSoupException Recipe(string field, string message) =>
        new(ErrorKind.InvalidRecipe, $"{field}: {message}", field);

    public static CloudSoupException Checkpoint(string source, string message) =>
        new(ErrorKind.InvalidCheckpoint, $"{source}: {message}");

    public static CloudSoupException Missing(string what) =>
        new(ErrorKind.MissingInput, $"{what} does not exist");
}
