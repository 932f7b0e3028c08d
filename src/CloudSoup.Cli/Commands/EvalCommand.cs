using System.CommandLine;
using System.Globalization;
using CloudSoup.Engine.Evaluation;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Storage;

namespace CloudSoup.Cli.Commands;

/// <summary><c>cloudsoup eval --model M --weights CKPT --data D</c>: accuracy and cross-entropy of one checkpoint.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Architecture: builtin:mlp, builtin:cnn or a TorchScript file", Required = true };
        var weights = new Option<string>("--weights", "-w") { Description = "Checkpoint to evaluate: safetensors (file or sharded folder) or PyTorch .pt/.bin (zip format, read without running its pickle)", Required = true };
        var data = new Option<string>("--data", "-d") { Description = "Safetensors file with 'inputs' and 'labels'", Required = true };
        var batch = new Option<int>("--batch-size") { Description = "Examples per forward pass", DefaultValueFactory = _ => 256 };
        var cmd = new Command("eval", "Evaluate one checkpoint on a labelled data set (accuracy, mean cross-entropy).") { model, weights, data, batch };
        cmd.SetAction((parse, ct) => CliErrors.RunAsync(() => RunAsync(parse.GetValue(model)!, parse.GetValue(weights)!, parse.GetValue(data)!, parse.GetValue(batch), ct)));
        return cmd;
    }

    private static async Task<int> RunAsync(string modelRef, string weightsRef, string dataRef, int batchSize, CancellationToken ct)
    {
        if (batchSize <= 0) throw new CloudSoup.Control.Errors.CloudSoupException(CloudSoup.Control.Errors.ErrorKind.InvalidRecipe, "--batch-size must be a positive integer");
        var store = new LocalCheckpointStore(Directory.GetCurrentDirectory());
        using var model = await LocalServices.Models().LoadAsync(store, modelRef, null, null, ct);
        using var data = await EvalData.LoadAsync(store, dataRef, ct);
        await using var checkpoint = await Checkpoint.OpenAsync(store, weightsRef, ct);
        var tensors = await JobEvaluator.ReadAllAsync(checkpoint, ct);
        try
        {
            model.LoadWeights(tensors, weightsRef);
            var m = Evaluator.Evaluate(model, data, batchSize);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"accuracy {100 * m.Accuracy:0.00}%  cross-entropy {m.Loss:0.0000}  examples {m.Examples}"));
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
        return 0;
    }
}
