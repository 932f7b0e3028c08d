namespace CloudSoup.Engine.Reports;

/// <summary>
/// How the job was split (report.json <c>parallelism</c>): the parts it ran as, why fewer than asked when so, and each
/// part's worker, shards, bytes and time.
/// </summary>
public sealed record ParallelismReport(int Parts, string? Note, IReadOnlyList<PartReport> PartDetails);

/// <summary>One part of a split job in the report: who ran it, what it moved, its time in all and per phase (planning is its header reads).</summary>
/// <param name="Work">What the part did: "merges shards 3-4", or for a soup "evaluates ingredients 1-3 alone on the held-out data".</param>
public sealed record PartReport(int Part, string? Worker, IReadOnlyList<string> Files, long BytesRead, long BytesWritten, double Seconds, int Attempts,
    IReadOnlyDictionary<string, double> PhaseSeconds, string? Work = null);
