using CloudSoup.Engine.Jobs;
using CloudSoup.Control.Jobs;
using Microsoft.Extensions.Logging;

namespace CloudSoup.Worker.Queue;

/// <summary>
/// Forwards a running job's (or part's) progress to its record: a phase change right away, otherwise at most once per
/// interval, one write in flight at a time, never blocking the merge that reports.
/// </summary>
internal sealed class JobProgressReporter(Func<JobProgress, Task> write, string jobId, TimeSpan interval, ILogger log) : IProgress<JobProgress>
{
    public JobProgressReporter(JobStore jobs, string jobId, string worker, TimeSpan interval, ILogger log)
        : this(p => jobs.ReportProgressAsync(jobId, worker, p.Phase, p.Fraction, CancellationToken.None), jobId, interval, log)
    {
    }

    private readonly object _lock = new();
    private Task _inflight = Task.CompletedTask;
    private string? _writtenPhase;
    private DateTime _lastWrite = DateTime.MinValue;

    public void Report(JobProgress value)
    {
        lock (_lock)
        {
            if (!_inflight.IsCompleted) return;
            if (value.Phase == _writtenPhase && DateTime.UtcNow - _lastWrite < interval) return;
            _writtenPhase = value.Phase;
            _lastWrite = DateTime.UtcNow;
            _inflight = WriteAsync(value);
        }
    }

    private async Task WriteAsync(JobProgress value)
    {
        try
        {
            await write(value).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            log.LogDebug("progress update for {JobId} failed: {Error}", jobId, e.Message);
        }
    }

    public Task FlushAsync()
    {
        lock (_lock) return _inflight;
    }
}
