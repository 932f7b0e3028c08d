using System.CommandLine;
using CloudSoup.Control.Errors;
using CloudSoup.Control.Recipes;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Storage;

namespace CloudSoup.Cli.Commands;

/// <summary>
/// <c>cloudsoup fisher --model M --weights CKPT --data D --out FILE</c>: a checkpoint's diagonal Fisher as safetensors with
/// the checkpoint's keys, ready for <c>parameters: {fisher: FILE}</c> in a fisher or gradient_matching recipe.
/// </summary>
internal static class FisherCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Architecture: builtin:mlp, builtin:cnn or a TorchScript file", Required = true };
        var weights = new Option<string>("--weights", "-w") { Description = "Checkpoint whose Fisher to compute (safetensors file or sharded directory)", Required = true };
        var data = new Option<string>("--data", "-d") { Description = "Safetensors file with 'inputs' and 'labels' (the labels are used by --labels empirical)", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "Safetensors file to write (written to FILE.partial, then renamed)", Required = true };
        var labels = new Option<string>("--labels") { Description = "Label source: sampled (ŷ ~ p(·|x), the Monte Carlo Fisher), exact (all classes weighted by p; C× the cost), empirical (data labels), argmax", DefaultValueFactory = _ => "sampled" };
        var samples = new Option<int>("--samples") { Description = "Examples to use (the first N of --data)", DefaultValueFactory = _ => 1000 };
        var seed = new Option<long>("--seed") { Description = "Seed for --labels sampled", DefaultValueFactory = _ => 0 };
        var cmd = new Command("fisher", "Compute a checkpoint's diagonal Fisher with per-example gradients (for merge_method fisher / gradient_matching).")
            { model, weights, data, output, labels, samples, seed };
        cmd.SetAction((parse, ct) => CliErrors.RunAsync(() => RunAsync(parse.GetValue(model)!, parse.GetValue(weights)!, parse.GetValue(data)!, parse.GetValue(output)!,
            parse.GetValue(labels)!, parse.GetValue(samples), parse.GetValue(seed), ct)));
        return cmd;
    }

    private static async Task<int> RunAsync(string modelRef, string weightsRef, string dataRef, string outFile, string labels, int samples, long seed, CancellationToken ct)
    {
        if (samples <= 0) throw CloudSoupException.Recipe("--samples", "must be a positive integer");
        var options = new FisherOptions(RecipeParser.ParseFisherLabels(labels, "--labels"), samples, seed);
        var store = new LocalCheckpointStore(Directory.GetCurrentDirectory());
        using var model = await LocalServices.Models().LoadAsync(store, modelRef, null, null, ct);
        using var evalData = await EvalData.LoadAsync(store, dataRef, ct);
        await using var checkpoint = await Checkpoint.OpenAsync(store, weightsRef, ct);
        var tensors = await JobEvaluator.ReadAllAsync(checkpoint, ct);
        var progress = new ConsoleProgress();
        Dictionary<string, TorchSharp.torch.Tensor> fisher;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            model.LoadWeights(tensors, weightsRef);
            fisher = FisherEstimator.Estimate(model, tensors, evalData, options, progress, ct);
        }
        finally
        {
            progress.Finish();
            foreach (var t in tensors.Values) t.Dispose();
        }
        SafetensorsWriter.WriteFile(Path.GetFullPath(outFile), fisher, new Dictionary<string, string>
        {
            ["fisher_of"] = weightsRef, ["labels"] = labels.ToLowerInvariant(), ["samples"] = Math.Min(samples, evalData.Count).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        Console.WriteLine($"wrote the diagonal Fisher of {weightsRef} ({fisher.Count} tensors, {options.Labels.ToString().ToLowerInvariant()} labels, {Math.Min(samples, evalData.Count)} examples, {sw.Elapsed.TotalSeconds:0.0} s) to {outFile}");
        foreach (var t in fisher.Values) t.Dispose();
        return 0;
    }
}
