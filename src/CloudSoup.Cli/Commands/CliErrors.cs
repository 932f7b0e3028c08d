using CloudSoup.Control.Errors;

namespace CloudSoup.Cli.Commands;

/// <summary>Turns failures into one line on stderr and an exit code: 2 for bad input, 1 for anything else.</summary>
internal static class CliErrors
{
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (CloudSoupException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return e.IsRetriable ? 1 : 2;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("error: cancelled");
            return 130;
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (UnauthorizedAccessException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
