// A fault-injection point for the process-level tests (tests/CloudSoup.Tests/Service/WorkerKillTests.cs). With
// CLOUDSOUP_TEST_HOLD_AT=<point> in its environment the worker stops for good when it reaches that point, after
// saying so on stderr, so a test can look at storage and the API while it stands there and then kill it (SIGKILL)
// at exactly that point of the commit. Points: "commit:N" (N of the job's output files committed, the next not yet)
// and "published" (the job record names the result; the queue message is not deleted yet); for split jobs
// (docs/fanout.md) also "part-committed" (a part's shards are committed and its outcome stored, its row not yet marked
// done) and "parts-all-done" (this part set the last bit of the job's mask; the finishing is not claimed yet).
// Off unless the variable is set: nothing in the images, templates or docs sets it, and the worker logs a
// warning at start when it is set.
namespace CloudSoup.Worker.Diagnostics;

public static class TestHold
{
    public const string Variable = "CLOUDSOUP_TEST_HOLD_AT";
    /// <summary>What the worker writes to stderr (followed by the point) when it stops at the point.</summary>
    public const string Marker = "cloudsoup-test-hold:";

    private static readonly string? Point = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } p ? p.Trim() : null;

    /// <summary>The point set in the environment, or null (always, outside the tests).</summary>
    public static string? Armed => Point;

    public static string CommitPoint(int committed) => $"commit:{committed}";
    public const string PublishedPoint = "published";
    public const string PartCommittedPoint = "part-committed";
    public const string AllPartsDonePoint = "parts-all-done";

    /// <summary>Returns at once unless <paramref name="point"/> is the armed one; then never returns.</summary>
    public static Task AtAsync(string point)
    {
        if (Point is null || !string.Equals(Point, point, StringComparison.Ordinal)) return Task.CompletedTask;
        Console.Error.WriteLine($"{Marker} {point}");
        Console.Error.Flush();
        return Task.Delay(Timeout.Infinite);
    }
}
