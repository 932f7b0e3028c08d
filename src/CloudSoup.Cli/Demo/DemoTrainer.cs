// Training for the demo: an MLP trained on MNIST, then fine-tuned from that shared start into several
// ingredients with different hyperparameters — the setting in which model soups work (Wortsman et al.
// 2022). Everything is seeded, so the demo's numbers reproduce run to run.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CloudSoup.Cli.Demo;

/// <summary>784-H-10 MLP whose state dict keys are fc1.weight, fc1.bias, fc2.weight, fc2.bias (what builtin:mlp reads).</summary>
public sealed class DemoMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly Linear fc2;

    public DemoMlp(int hidden) : base(nameof(DemoMlp))
    {
        fc1 = nn.Linear(MnistDigits.Pixels, hidden);
        fc2 = nn.Linear(hidden, 10);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => fc2.forward(nn.functional.relu(fc1.forward(x)));
}

public sealed record TrainingConfig(string Name, double LearningRate, int Epochs, long Seed, int BatchSize = 64);

public static class DemoTrainer
{
    public const int Hidden = 128;

    /// <summary>Trains a fresh model (initialised from <paramref name="config"/>.Seed) or continues from <paramref name="start"/>.</summary>
    public static Dictionary<string, Tensor> Train(DigitSplit data, TrainingConfig config, IReadOnlyDictionary<string, Tensor>? start = null, Action<string>? log = null)
    {
        torch.random.manual_seed(config.Seed);
        using var model = new DemoMlp(Hidden);
        if (start != null)
        {
            using var _ = torch.no_grad();
            foreach (var (name, p) in model.named_parameters()) p.copy_(start[name]);
        }
        Fit(model, data, config, log);
        return model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
    }

    /// <summary>Adam on cross-entropy over shuffled mini-batches; the shuffle is seeded from <paramref name="config"/>.Seed.</summary>
    public static void Fit(nn.Module<Tensor, Tensor> model, DigitSplit data, TrainingConfig config, Action<string>? log)
    {
        using var optimizer = torch.optim.Adam(model.parameters(), lr: config.LearningRate);
        var generator = new torch.Generator((ulong)config.Seed);
        long n = data.Count;
        for (int epoch = 0; epoch < config.Epochs; epoch++)
        {
            using var perm = torch.randperm(n, generator: generator);
            double lossSum = 0;
            int batches = 0;
            for (long i = 0; i < n; i += config.BatchSize)
            {
                using var scope = torch.NewDisposeScope();
                var idx = perm.narrow(0, i, Math.Min(config.BatchSize, n - i));
                var loss = nn.functional.cross_entropy(model.forward(data.Inputs.index_select(0, idx)), data.Labels.index_select(0, idx));
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                lossSum += loss.item<float>();
                batches++;
            }
            log?.Invoke($"{config.Name}: epoch {epoch + 1}/{config.Epochs}, train loss {lossSum / batches:0.0000}");
        }
    }

    /// <summary>The demo's ingredients: fine-tunes of one base model with different learning rates, seeds and epochs.</summary>
    public static IReadOnlyList<TrainingConfig> FineTunes { get; } =
    [
        new("ingredient-1", 1e-3, 4, 11),
        new("ingredient-2", 3e-4, 6, 12),
        new("ingredient-3", 2e-3, 3, 13),
        new("ingredient-4", 5e-4, 5, 14),
        new("ingredient-5", 1e-3, 8, 15),
    ];

    public static TrainingConfig Base { get; } = new("base", 1e-3, 2, 1);

    /// <summary>The negative control: models trained from scratch with different seeds (different basins, so they do not soup).</summary>
    public static IReadOnlyList<TrainingConfig> FromScratch { get; } =
    [
        new("scratch-1", 3e-3, 4, 21),
        new("scratch-2", 3e-3, 4, 22),
        new("scratch-3", 3e-3, 4, 23),
        new("scratch-4", 3e-3, 4, 24),
    ];
}
