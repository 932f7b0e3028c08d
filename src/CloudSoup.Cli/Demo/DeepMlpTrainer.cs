// Training for the Git Re-Basin part of the demo: plain ReLU MLPs 784-h-…-h-10 trained from different random
// seeds (Ainsworth et al. 2022, arXiv 2209.04836, use 784-512-512-512-10 on MNIST: samuela/git-re-basin
// src/mnist_mlp_train.py; docs/alignment.md). Parameter
// names are fc1..fcL, so builtin:mlp evaluates them and the mlp permutation spec applies.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CloudSoup.Cli.Demo;

public sealed class DeepMlp : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<Linear> _layers = new();

    public DeepMlp(IReadOnlyList<int> hidden) : base(nameof(DeepMlp))
    {
        var widths = new[] { MnistDigits.Pixels }.Concat(hidden).Append(10).ToArray();
        for (int k = 1; k < widths.Length; k++) _layers.Add(nn.Linear(widths[k - 1], widths[k]));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        for (int k = 0; k < _layers.Count; k++)
        {
            x = _layers[k].forward(x);
            if (k < _layers.Count - 1) x = nn.functional.relu(x);
        }
        return x;
    }

    /// <summary>State dict as fc1.weight, fc1.bias, …, fcL.bias (copies).</summary>
    public Dictionary<string, Tensor> FcStateDict()
    {
        var d = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (int k = 0; k < _layers.Count; k++)
        {
            d[$"fc{k + 1}.weight"] = _layers[k].weight!.detach().clone();
            d[$"fc{k + 1}.bias"] = _layers[k].bias!.detach().clone();
        }
        return d;
    }
}

public static class DeepMlpTrainer
{
    /// <summary>Trains a fresh MLP initialised and shuffled from <paramref name="config"/>.Seed with Adam.</summary>
    public static Dictionary<string, Tensor> Train(DigitSplit data, IReadOnlyList<int> hidden, TrainingConfig config, Action<string>? log = null)
    {
        torch.random.manual_seed(config.Seed);
        using var model = new DeepMlp(hidden);
        DemoTrainer.Fit(model, data, config, log);
        return model.FcStateDict();
    }
}
