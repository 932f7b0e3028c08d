using CloudSoup.Engine.Alignment;
using TorchSharp;
using static TorchSharp.torch;

namespace CloudSoup.Tests.Alignment;

/// <summary>Small TorchSharp networks with random weights (and random BatchNorm statistics) for alignment tests.</summary>
public static class TestNets
{
    public static nn.Module<Tensor, Tensor> Mlp(params int[] widths)
    {
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        for (int k = 0; k + 1 < widths.Length; k++)
        {
            layers.Add(($"fc{k + 1}", nn.Linear(widths[k], widths[k + 1])));
            if (k + 2 < widths.Length) layers.Add(($"relu{k + 1}", nn.ReLU()));
        }
        return nn.Sequential(layers.ToArray());
    }

    // An MLP with LayerNorm after each hidden layer (ln1 follows fc1, ...).
    public static nn.Module<Tensor, Tensor> MlpLayerNorm()
    {
        var net = nn.Sequential(("fc1", nn.Linear(6, 10)), ("ln1", nn.LayerNorm(10)), ("relu1", nn.ReLU()),
            ("fc2", nn.Linear(10, 12)), ("ln2", nn.LayerNorm(12)), ("relu2", nn.ReLU()), ("fc3", nn.Linear(12, 3)));
        RandomiseNorms(net);
        return net;
    }

    // conv1/bn1 naming, where the norms sort before the convolutions by name.
    public static nn.Module<Tensor, Tensor> CnnBn()
    {
        var net = nn.Sequential(("conv1", nn.Conv2d(3, 6, 3, padding: 1)), ("bn1", nn.BatchNorm2d(6)), ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(6, 10, 3, padding: 1)), ("bn2", nn.BatchNorm2d(10)), ("relu2", nn.ReLU()),
            ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(10, 4)));
        RandomiseNorms(net);
        return net;
    }

    // builtin:cnn's naming and structure: conv-bn-relu-maxpool twice on side×side one-channel inputs (given
    // flat, [N, side²], as builtin:cnn takes them), then the [c2, side/4, side/4] maps flattened into fc1 (a spatial
    // flatten, side²/16 inputs per channel), relu, fc2. The defaults are a tiny random net with random BatchNorm.
    public static nn.Module<Tensor, Tensor> BuiltinCnn(int side = 8, int c1 = 6, int c2 = 10, int hidden = 16, int classes = 3, bool randomNorms = true)
    {
        var net = nn.Sequential(("view", nn.Unflatten(1, [1, side, side])),
            ("conv1", nn.Conv2d(1, c1, 3, padding: 1)), ("bn1", nn.BatchNorm2d(c1)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(c1, c2, 3, padding: 1)), ("bn2", nn.BatchNorm2d(c2)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
            ("flatten", nn.Flatten()), ("fc1", nn.Linear(c2 * (side / 4) * (side / 4), hidden)), ("relu3", nn.ReLU()), ("fc2", nn.Linear(hidden, classes)));
        if (randomNorms) RandomiseNorms(net);
        return net;
    }

    // torchvision-VGG naming: features.N (conv, BatchNorm, ReLU), global pooling, classifier.N.
    public static nn.Module<Tensor, Tensor> VggBn()
    {
        var features = nn.Sequential(
            ("0", nn.Conv2d(3, 8, 3, padding: 1)), ("1", nn.BatchNorm2d(8)), ("2", nn.ReLU()),
            ("3", nn.Conv2d(8, 12, 3, padding: 1)), ("4", nn.BatchNorm2d(12)), ("5", nn.ReLU()),
            ("6", nn.Conv2d(12, 16, 3, padding: 1)), ("7", nn.BatchNorm2d(16)), ("8", nn.ReLU()));
        var classifier = nn.Sequential(("0", nn.Linear(16, 20)), ("1", nn.ReLU()), ("2", nn.Linear(20, 5)));
        var net = nn.Sequential(("features", features), ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("classifier", classifier));
        RandomiseNorms(net);
        return net;
    }

    public static nn.Module<Tensor, Tensor> ResNet(bool bottleneck = false)
    {
        var net = new MiniResNet(bottleneck);
        RandomiseNorms(net);
        return net;
    }

    /// <summary>BatchNorm starts at weight 1, bias 0, mean 0, var 1, which would hide a missing permutation.</summary>
    public static void RandomiseNorms(nn.Module net)
    {
        using var _ = no_grad();
        foreach (var (name, t) in net.state_dict())
        {
            if (name.EndsWith("running_var")) t.copy_(rand_like(t) + 0.5);
            else if (name.EndsWith("running_mean") || (t.dim() == 1 && name.EndsWith("bias"))) t.copy_(randn_like(t) * 0.5);
            else if (t.dim() == 1 && name.EndsWith("weight")) t.copy_(rand_like(t) + 0.5);
        }
    }

    public static Dictionary<string, Tensor> State(nn.Module net) =>
        net.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    public static Tensor Run(nn.Module<Tensor, Tensor> net, Dictionary<string, Tensor> state, Tensor input)
    {
        using var _ = no_grad();
        net.load_state_dict(state);
        net.eval();
        return net.forward(input);
    }

    public static Dictionary<string, int[]> RandomPerms(IReadOnlyDictionary<string, int> sizes, int seed)
    {
        var rng = new Random(seed);
        return sizes.ToDictionary(kv => kv.Key, kv => Enumerable.Range(0, kv.Value).OrderBy(_ => rng.Next()).ToArray());
    }

    public static Dictionary<string, long[]> Shapes(Dictionary<string, Tensor> state) =>
        state.ToDictionary(kv => kv.Key, kv => kv.Value.shape);

    private sealed class Block : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> conv1, bn1, conv2, bn2;
        private readonly nn.Module<Tensor, Tensor>? downsample;

        public Block(int cin, int cout, int stride) : base("Block")
        {
            conv1 = nn.Conv2d(cin, cout, 3, stride: stride, padding: 1, bias: false);
            bn1 = nn.BatchNorm2d(cout);
            conv2 = nn.Conv2d(cout, cout, 3, padding: 1, bias: false);
            bn2 = nn.BatchNorm2d(cout);
            if (stride != 1 || cin != cout)
                downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride: stride, bias: false), nn.BatchNorm2d(cout));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h = nn.functional.relu(bn1.forward(conv1.forward(x)));
            h = bn2.forward(conv2.forward(h));
            return nn.functional.relu(h + (downsample is null ? x : downsample.forward(x)));
        }
    }

    // torchvision Bottleneck: 1×1 reduce, 3×3, 1×1 expand (conv3/bn3), projection when the width changes.
    private sealed class Bottleneck : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> conv1, bn1, conv2, bn2, conv3, bn3;
        private readonly nn.Module<Tensor, Tensor>? downsample;

        public Bottleneck(int cin, int width, int cout, int stride) : base("Bottleneck")
        {
            conv1 = nn.Conv2d(cin, width, 1, bias: false);
            bn1 = nn.BatchNorm2d(width);
            conv2 = nn.Conv2d(width, width, 3, stride: stride, padding: 1, bias: false);
            bn2 = nn.BatchNorm2d(width);
            conv3 = nn.Conv2d(width, cout, 1, bias: false);
            bn3 = nn.BatchNorm2d(cout);
            if (stride != 1 || cin != cout)
                downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride: stride, bias: false), nn.BatchNorm2d(cout));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h = nn.functional.relu(bn1.forward(conv1.forward(x)));
            h = nn.functional.relu(bn2.forward(conv2.forward(h)));
            h = bn3.forward(conv3.forward(h));
            return nn.functional.relu(h + (downsample is null ? x : downsample.forward(x)));
        }
    }

    // torchvision naming: conv1/bn1 stem, layerS.B blocks, fc head.
    private sealed class MiniResNet : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> conv1, bn1, layer1, layer2, fc;

        public MiniResNet(bool bottleneck) : base("MiniResNet")
        {
            conv1 = nn.Conv2d(3, 8, 3, padding: 1, bias: false);
            bn1 = nn.BatchNorm2d(8);
            if (bottleneck)
            {
                layer1 = nn.Sequential(new Bottleneck(8, 4, 16, 1), new Bottleneck(16, 4, 16, 1));
                layer2 = nn.Sequential(new Bottleneck(16, 6, 12, 2), new Bottleneck(12, 6, 12, 1));
            }
            else
            {
                layer1 = nn.Sequential(new Block(8, 8, 1), new Block(8, 8, 1));
                layer2 = nn.Sequential(new Block(8, 12, 2), new Block(12, 12, 1));
            }
            fc = nn.Linear(12, 4);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            var h = nn.functional.relu(bn1.forward(conv1.forward(x)));
            h = layer2.forward(layer1.forward(h));
            return fc.forward(h.mean([2, 3]));
        }
    }
}
