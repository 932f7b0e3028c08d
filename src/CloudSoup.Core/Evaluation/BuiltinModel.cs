// CloudSoup's built-in evaluation architectures, for checkpoints saved from the equivalent PyTorch
// modules (same parameter keys), so no TorchScript file is needed:
//   builtin:mlp  fc1.weight [h1, in], fc1.bias [h1], fc2..., fcL [classes, hL-1]; input flattened;
//                ReLU between layers (as nn.Linear layers named fc1..fcL with F.relu in between).
//   builtin:cnn  conv1..convK ([c_out, c_in, k, k] + bias, padding k/2, ReLU, 2×2 max-pool after each),
//                then fc1..fcL as above on the flattened feature map. [N, 784] inputs are viewed as
//                [N, 1, 28, 28] (any [N, s²] input with conv1 taking one channel is viewed as s×s).
// Layer sizes are read from the checkpoint's shapes, so any depth and width of this naming scheme works.
using System.Text.RegularExpressions;
using CloudSoup.Core.Errors;
using TorchSharp;
using static TorchSharp.torch.nn.functional;

namespace CloudSoup.Core.Evaluation;

public sealed partial class BuiltinModel : IEvalModel
{
    private readonly bool _cnn;
    private Dictionary<string, torch.Tensor>? _weights;
    private List<(string Weight, string Bias)> _convs = [], _fcs = [];

    private BuiltinModel(string name, bool cnn)
    {
        Name = name;
        _cnn = cnn;
    }

    public string Name { get; }

    public static bool IsBuiltin(string reference) => reference.StartsWith("builtin:", StringComparison.Ordinal);

    public static BuiltinModel Create(string reference) => reference switch
    {
        "builtin:mlp" => new BuiltinModel(reference, cnn: false),
        "builtin:cnn" => new BuiltinModel(reference, cnn: true),
        _ => throw CloudSoupException.Recipe("evaluation.model", $"unknown built-in architecture '{reference}' (available: builtin:mlp, builtin:cnn)"),
    };

    [GeneratedRegex(@"^(?<kind>fc|conv)(?<index>\d+)\.(?<part>weight|bias)$")]
    private static partial Regex LayerKey();

    public void LoadWeights(IReadOnlyDictionary<string, torch.Tensor> weights, string source)
    {
        var layers = new Dictionary<(string Kind, int Index), (bool W, bool B)>();
        foreach (var name in weights.Keys)
        {
            var m = LayerKey().Match(name);
            if (!m.Success || (!_cnn && m.Groups["kind"].Value == "conv"))
                throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{source} does not fit {Name}: unexpected tensor '{name}' (expected {(_cnn ? "convK./fcK." : "fcK.")}weight/bias)");
            var key = (m.Groups["kind"].Value, int.Parse(m.Groups["index"].Value));
            var has = layers.GetValueOrDefault(key);
            layers[key] = m.Groups["part"].Value == "weight" ? (true, has.B) : (has.W, true);
        }
        List<(string, string)> Chain(string kind)
        {
            var idx = layers.Keys.Where(k => k.Kind == kind).Select(k => k.Index).Order().ToList();
            for (int i = 0; i < idx.Count; i++)
            {
                if (idx[i] != i + 1) throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{source} does not fit {Name}: {kind} layers must be numbered 1..N (found {kind}{idx[i]})");
                if (!layers[(kind, idx[i])].W || !layers[(kind, idx[i])].B) throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{source} does not fit {Name}: {kind}{idx[i]} needs weight and bias");
            }
            return idx.Select(i => ($"{kind}{i}.weight", $"{kind}{i}.bias")).ToList();
        }
        var convs = _cnn ? Chain("conv") : [];
        var fcs = Chain("fc");
        if (fcs.Count == 0) throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{source} does not fit {Name}: no fc1.weight");
        if (_cnn && convs.Count == 0) throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{source} does not fit {Name}: no conv1.weight");
        if (_weights != null)
        {
            // Every later checkpoint must have exactly the first one's tensors and shapes.
            Evaluator.CheckSameNames(Name, _weights.Keys, weights, source);
            foreach (var (n, t) in _weights) Evaluator.CopyInto(Name, t, weights[n], n, source);
            return;
        }
        _weights = weights.ToDictionary(kv => kv.Key, kv => kv.Value.to_type(torch.ScalarType.Float32).clone());
        _convs = convs;
        _fcs = fcs;
    }

    public IReadOnlyDictionary<string, torch.Tensor> Parameters => _weights ?? throw new InvalidOperationException("LoadWeights first");

    public torch.Tensor Forward(torch.Tensor inputs)
    {
        if (_weights is null) throw new InvalidOperationException("LoadWeights first");
        return Forward(_weights, inputs);
    }

    /// <summary>
    /// The same forward pass with caller-supplied weights (same names and shapes as the loaded ones). Used by
    /// the learned soup, whose weights are functions of the mixing coefficients and so carry gradients.
    /// </summary>
    internal torch.Tensor Forward(IReadOnlyDictionary<string, torch.Tensor> _weights, torch.Tensor inputs)
    {
        var x = inputs;
        if (_cnn)
        {
            var w1 = _weights[_convs[0].Weight];
            if (x.dim() == 2)
            {
                long side = (long)Math.Round(Math.Sqrt(x.shape[1] / (double)w1.shape[1]));
                if (side * side * w1.shape[1] != x.shape[1])
                    throw CloudSoupException.Recipe("evaluation.data", $"{Name} cannot view inputs of width {x.shape[1]} as {w1.shape[1]}-channel square images");
                x = x.view(x.shape[0], w1.shape[1], side, side);
            }
            foreach (var (w, b) in _convs)
            {
                var weight = _weights[w];
                x = max_pool2d(relu(conv2d(x, weight, _weights[b], padding: [weight.shape[2] / 2, weight.shape[3] / 2])), 2);
            }
        }
        x = x.flatten(1);
        for (int i = 0; i < _fcs.Count; i++)
        {
            var weight = _weights[_fcs[i].Weight];
            if (x.shape[1] != weight.shape[1])
                throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{Name}: {_fcs[i].Weight} expects {weight.shape[1]} inputs but gets {x.shape[1]}");
            x = linear(x, weight, _weights[_fcs[i].Bias]);
            if (i < _fcs.Count - 1) x = relu(x);
        }
        return x;
    }

    public void Dispose()
    {
        if (_weights != null) foreach (var t in _weights.Values) t.Dispose();
    }
}
