namespace CloudSoup.Core.Jobs;

/// <summary>Where a job is: the phase (planning, merging, evaluating, reporting, committing) and how far along.</summary>
public sealed record JobProgress(string Phase, double Fraction, string? Detail = null);

/// <summary>Reports synchronously through a function (System.Progress posts to the thread pool, out of order).</summary>
public sealed class ProgressRelay(Action<JobProgress> report) : IProgress<JobProgress>
{
    public void Report(JobProgress value) => report(value);
}

/// <summary>What evaluation.reset_bn did: how the statistics were estimated, which tensors, on how many examples.</summary>
public sealed record BatchNormResetReport(string Method, IReadOnlyList<string> Tensors, int Examples, double Seconds);
