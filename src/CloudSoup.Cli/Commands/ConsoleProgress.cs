using CloudSoup.Engine.Jobs;

namespace CloudSoup.Cli.Commands;

/// <summary>Progress on stderr: a rewritten line on a terminal, occasional plain lines otherwise (CI logs).</summary>
internal sealed class ConsoleProgress : IProgress<JobProgress>
{
    private readonly bool _interactive = !Console.IsErrorRedirected;
    private string _lastPhase = "";
    private DateTime _lastPrint = DateTime.MinValue;

    public void Report(JobProgress value)
    {
        bool phaseChanged = value.Phase != _lastPhase;
        if (!phaseChanged && (DateTime.UtcNow - _lastPrint).TotalMilliseconds < (_interactive ? 100 : 2000) && value.Fraction < 1) return;
        _lastPrint = DateTime.UtcNow;
        string line = $"{value.Phase,-10} {value.Fraction * 100,5:0.0}%  {value.Detail}";
        if (_interactive)
        {
            if (phaseChanged && _lastPhase != "") Console.Error.WriteLine();
            Console.Error.Write("\r" + line.PadRight(70));
        }
        else Console.Out.WriteLine(line);   // logs go with the output; stderr stays for warnings and the one error line
        _lastPhase = value.Phase;
    }

    public void Finish()
    {
        if (_interactive && _lastPhase != "") Console.Error.WriteLine();
    }
}
