namespace CloudSoup.Core.Jobs;

/// <summary>Where a job is: the phase (planning, merging, evaluating, reporting, committing) and how far along.</summary>
public sealed record JobProgress(string Phase, double Fraction, string? Detail = null);
