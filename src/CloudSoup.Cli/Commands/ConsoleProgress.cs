using Spectre.Console;

namespace CloudSoup.Cli.Commands;

/// <summary>
/// The CLI's one progress path for jobs. On a terminal: Spectre.Console's live progress display on stderr, one bar
/// per phase as the job reaches it. Otherwise (CI logs, pipes): plain lines on stdout when a phase starts or ends and
/// at most every two seconds between, so logs stay short and in order. Reports are synchronous (no thread-pool
/// hop), so lines never reorder. Dispose (or <see cref="Finish"/>) ends the display.
/// </summary>
internal sealed class ConsoleProgress : IProgress<JobProgress>, IDisposable
{
    private static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(2);
    private readonly object _gate = new();
    private readonly TaskCompletionSource<ProgressContext>? _context;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task? _display;
    private readonly Dictionary<string, ProgressTask> _bars = [];
    private string _phase = "";
    private DateTime _lastLine = DateTime.MinValue;
    private bool _finished;

    public ConsoleProgress()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        if (Console.IsErrorRedirected || !console.Profile.Capabilities.Interactive) return;
        _context = new TaskCompletionSource<ProgressContext>(TaskCreationOptions.RunContinuationsAsynchronously);
        _display = console.Progress().AutoClear(false).HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async ctx => { _context.SetResult(ctx); await _done.Task.ConfigureAwait(false); });
    }

    public void Report(JobProgress value) => Report(value.Phase, value.Fraction, value.Detail);

    /// <summary>
    /// Progress of any named step (a job's phase, a file being downloaded): one bar per name, the previous name's bar
    /// completed when a new name starts.
    /// </summary>
    public void Report(string name, double fraction, string? detail = null)
    {
        fraction = Math.Clamp(fraction, 0, 1);
        lock (_gate)
        {
            if (_finished) return;
            if (_context != null) Live(_context.Task.GetAwaiter().GetResult(), name, fraction, detail);
            else Plain(name, fraction, detail);
            _phase = name;
        }
    }

    private void Live(ProgressContext ctx, string name, double fraction, string? detail)
    {
        if (name != _phase && _bars.TryGetValue(_phase, out var previous)) previous.Value = previous.MaxValue;
        if (!_bars.TryGetValue(name, out var bar))
            _bars[name] = bar = ctx.AddTask(Markup.Escape(name), maxValue: 1);
        bar.Value = fraction;
        bar.Description = Markup.Escape(detail is null ? name : $"{name}: {detail}");
    }

    private void Plain(string name, double fraction, string? detail)
    {
        bool phaseChanged = name != _phase;
        if (!phaseChanged && fraction < 1 && DateTime.UtcNow - _lastLine < PlainInterval) return;
        _lastLine = DateTime.UtcNow;
        string amount = fraction > 0 ? $" {fraction * 100:0}%" : "";
        Console.Out.WriteLine($"{name}{amount}{(detail is null ? "" : "  " + detail)}");
    }

    /// <summary>Ends the display, so what is printed next (the report, or one error line) starts on a line of its own.</summary>
    public void Finish()
    {
        lock (_gate)
        {
            if (_finished) return;
            _finished = true;
        }
        _done.TrySetResult();
        _display?.GetAwaiter().GetResult();
    }

    public void Dispose() => Finish();
}
