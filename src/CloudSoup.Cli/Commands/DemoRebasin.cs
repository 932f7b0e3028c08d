// The Git Re-Basin part of `cloudsoup demo` (Ainsworth et al. 2022, Fig. 2's MNIST MLP experiment): two MLPs
// trained from different seeds sit in different basins, so their naive midpoint is poor; after weight matching
// the midpoint is about as good as the endpoints. The merge runs as an ordinary job with an alignment section,
// so the barrier numbers come from the job's report.
using System.Globalization;
using CloudSoup.Cli.Demo;
using CloudSoup.Engine.Formats;
using CloudSoup.Engine.Reports;

namespace CloudSoup.Cli.Commands;

internal static class DemoRebasin
{
    public const string Suffix = "-rebasin";
    /// <summary>The paper's MNIST MLP shape; a few epochs on 6,000 digits take seconds per model on 2 cores.</summary>
    public static readonly int[] Hidden = [512, 512, 512];
    private static readonly TrainingConfig[] Models = [new("mlp-seed-1", 1e-3, 4, 1001, 100), new("mlp-seed-2", 1e-3, 4, 2002, 100)];

    public static List<string> Train(MnistSplits data, string work, Action<string> say)
    {
        var files = new List<string>();
        foreach (var config in Models)
        {
            say($"training {config.Name}: 784-{string.Join("-", Hidden)}-10 from seed {config.Seed}, {config.Epochs} epochs ...");
            var weights = DeepMlpTrainer.Train(data.Train, Hidden, config, say);
            var file = Path.Combine(work, "checkpoints", config.Name + ".safetensors");
            SafetensorsWriter.WriteFile(file, weights, new Dictionary<string, string> { ["seed"] = config.Seed.ToString(CultureInfo.InvariantCulture) });
            foreach (var t in weights.Values) t.Dispose();
            files.Add(file);
        }
        return files;
    }

    public static string Recipe(IEnumerable<string> models, string heldOut, string test) => $"""
        name: demo-rebasin-midpoint
        merge_method: linear
        models:
        {string.Join("\n", models.Select(m => $"  - model: {m}\n    parameters: {{weight: 1.0}}"))}
        alignment:
          method: weight_matching
          spec: mlp
        evaluation:
          model: builtin:mlp
          data: {heldOut}
          test: {test}
        """;

    public static void Print(MergeReport report)
    {
        var al = report.Alignment ?? throw new InvalidOperationException("the re-basin job's report has no alignment section");
        var other = al.Models.Single(m => !m.IsReference);
        var path = other.Path ?? throw new InvalidOperationException("the re-basin job's report has no interpolation path");
        static string Pct(double v) => (100 * v).ToString("0.00", CultureInfo.InvariantCulture) + "%";
        static string F(double v) => v.ToString("0.0000", CultureInfo.InvariantCulture);
        Console.WriteLine();
        Console.WriteLine($"Git Re-Basin on MNIST: two 784-{string.Join("-", Hidden)}-10 MLPs from different seeds, midpoint θ = ½(θ_A + θ_B) (held-out split):");
        Console.WriteLine($"  endpoints:          A {Pct(path.Naive.Curve[0].Accuracy)}, B {Pct(path.Naive.Curve[^1].Accuracy)}");
        Console.WriteLine($"  naive midpoint:     {Pct(AlignmentPlots.Midpoint(path.Naive).Accuracy)}   loss barrier {F(path.Naive.Barrier)}");
        Console.WriteLine($"  aligned midpoint:   {Pct(AlignmentPlots.Midpoint(path.Aligned).Accuracy)}   loss barrier {F(path.Aligned.Barrier)}");
        Console.WriteLine($"  weight matching:    {other.Sweeps} sweeps, objective {other.Objective[0]:0.##} → {other.Objective[^1]:0.##}, {other.UnitsMoved} units moved, {al.Seconds:0.0} s");
        if (report.Evaluation?.Merged.Test is { } t) Console.WriteLine($"  merged (aligned) model on the test split: {Pct(t.Accuracy)}");
    }
}
