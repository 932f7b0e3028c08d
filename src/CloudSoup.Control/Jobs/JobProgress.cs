namespace CloudSoup.Control.Jobs;

/// <summary>
/// The fixed set of phases a job goes through, in order; the job record, the API, the CLI's progress display and
/// the report's timings all use these names.
/// </summary>
public static class JobPhase
{
    public const string Queued = "queued";
    /// <summary>A worker claimed the job and is starting it.</summary>
    public const string Starting = "starting";
    /// <summary>An attempt failed transiently; the job waits for its next delivery.</summary>
    public const string Retrying = "retrying";
    public const string Planning = "planning";
    public const string Fisher = "fisher";
    public const string Aligning = "aligning";
    public const string ScopeAlignment = "scope_alignment";
    /// <summary>A method's whole-model read pass before merging (agreement granularity: model, ties topk_scope: model).</summary>
    public const string Prepass = "prepass";
    public const string Soup = "soup_search";
    public const string Merging = "merging";
    public const string ResetBn = "reset_bn";
    public const string Evaluating = "evaluating";
    public const string Reporting = "reporting";
    public const string Committing = "committing";
    public const string Done = "done";

    public static readonly IReadOnlyList<string> All =
        [Queued, Starting, Retrying, Planning, Fisher, Aligning, ScopeAlignment, Soup, Prepass, Merging, ResetBn, Evaluating, Reporting, Committing, Done];
}

/// <summary>Where a job is: one of <see cref="JobPhase"/>'s phases and how far along (0..1).</summary>
public sealed record JobProgress
{
    public JobProgress(string phase, double fraction, string? detail = null)
    {
        if (!JobPhase.All.Contains(phase)) throw new ArgumentException($"'{phase}' is not a job phase (JobPhase.All)", nameof(phase));
        Phase = phase;
        Fraction = Math.Clamp(fraction, 0, 1);
        Detail = detail;
    }

    public string Phase { get; }
    public double Fraction { get; }
    public string? Detail { get; }

    public void Deconstruct(out string phase, out double fraction, out string? detail) => (phase, fraction, detail) = (Phase, Fraction, Detail);
}

/// <summary>Reports synchronously through a function, in order (System.Progress posts to the thread pool, out of order).</summary>
public sealed class ProgressRelay<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
