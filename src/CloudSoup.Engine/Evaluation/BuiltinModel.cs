// CloudSoup's built-in evaluation architectures, for checkpoints saved from the equivalent PyTorch
// modules (same parameter keys), so no TorchScript file is needed:
//   builtin:mlp  fc1.weight [h1, in], fc1.bias [h1], fc2..., fcL [classes, hL-1]; input flattened;
//                ReLU between layers (as nn.Linear layers named fc1..fcL with F.relu in between).
//   builtin:cnn  conv1..convK ([c_out, c_in, k, k] + bias, padding k/2, optional BatchNorm2d bnK (weight, bias,
//                running_mean, running_var, num_batches_tracked; eps 1e-5), ReLU, 2×2 max-pool after each),
//                then fc1..fcL as above on the flattened feature map. [N, 784] inputs are viewed as
//                [N, 1, 28, 28] (any [N, s²] input with conv1 taking one channel is viewed as s×s).
// Layer sizes are read from the checkpoint's shapes, so any depth and width of this naming scheme works.
using CloudSoup.Control.Recipes;
using System.Text.RegularExpressions;
using CloudSoup.Control.Errors;
using TorchSharp;
using static TorchSharp.torch.nn.functional;

namespace CloudSoup.Engine.Evaluation;

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
        _ => throw CloudSoupException.Recipe("evaluation.model", $"unknown built-in architecture '{reference}' (available: {string.Join(", ", EvaluationSection.BuiltinArchitectures)})"),
    };

    [GeneratedRegex(@"^(?<kind>fc|conv)(?<index>\d+)\.(?<part>weight|bias)$")]
    private static partial Regex LayerKey();

    [GeneratedRegex(@"^bn(?<index>\d+)\.(?<part>weight|bias|running_mean|running_var|num_batches_tracked)$")]
    private static partial Regex NormKey();

    private static readonly string[] NormParts = ["weight", "bias", "running_mean", "running_var"];
    private HashSet<int> _norms = [];

    public void LoadWeights(IReadOnlyDictionary<string, torch.Tensor> weights, string source)
    {
        var layers = new Dictionary<(string Kind, int Index), (bool W, bool B)>();
        var norms = new HashSet<int>();
        foreach (var name in weights.Keys)
        {
            if (_cnn && NormKey().Match(name) is { Success: true } nm)
            {
                norms.Add(int.Parse(nm.Groups["index"].Value));
                continue;
            }
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
        foreach (int k in norms)
        {
            if (k < 1 || k > convs.Count) throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{source} does not fit {Name}: bn{k} has no conv{k} to follow");
            var missing = NormParts.Where(p => !weights.ContainsKey($"bn{k}.{p}")).ToList();
            if (missing.Count > 0) throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{source} does not fit {Name}: bn{k} lacks {string.Join(", ", missing)}");
        }
        if (_weights != null)
        {
            // Every later checkpoint must have exactly the first one's tensors and shapes.
            Evaluator.CheckSameNames(Name, _weights.Keys, weights, source);
            foreach (var (n, t) in _weights) Evaluator.CopyInto(Name, t, weights[n], n, source);
            return;
        }
        _weights = weights.ToDictionary(kv => kv.Key, kv => kv.Value.is_floating_point() ? kv.Value.to_type(torch.ScalarType.Float32).clone() : kv.Value.clone());
        _convs = convs;
        _fcs = fcs;
        _norms = norms;
    }

    public Dictionary<string, torch.Tensor> ParameterFisher(EvalData data, FisherOptions options, IProgress<JobProgress>? progress, CancellationToken ct) =>
        FisherEstimator.OverParameters(this, Parameters, data, options, progress, ct);

    public const double BatchNormEps = 1e-5;

    public string BatchNormResetMethod => "exact population statistics";

    public IReadOnlyDictionary<string, torch.Tensor> Parameters => (_weights ?? throw new InvalidOperationException("LoadWeights first"))
        .Where(kv => !kv.Key.EndsWith(".running_mean", StringComparison.Ordinal) && !kv.Key.EndsWith(".running_var", StringComparison.Ordinal) && kv.Value.is_floating_point())
        .ToDictionary(StringComparer.Ordinal);

    /// <summary>
    /// Exact population statistics of every BatchNorm layer's input over <paramref name="data"/> (layer by layer, each
    /// later layer seeing the earlier layers' new statistics): mean, and the unbiased variance PyTorch keeps.
    /// </summary>
    public IReadOnlyDictionary<string, torch.Tensor>? ResetBatchNorm(EvalData data, int maxExamples, int batchSize)
    {
        if (_weights is null) throw new InvalidOperationException("LoadWeights first");
        if (!_cnn || _norms.Count == 0) return null;
        using var _ = torch.no_grad();
        long n = Math.Min(maxExamples, data.Count);
        var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        foreach (int k in _norms.Order())
        {
            // Σx and Σx² per channel over every example and position of bn k's input, in float64.
            torch.Tensor? sum = null, sumSq = null;
            long count = 0;
            for (long start = 0; start < n; start += batchSize)
            {
                using var scope = torch.NewDisposeScope();
                var pre = PreNorm(data.Inputs.narrow(0, start, Math.Min(batchSize, n - start)), k).to_type(torch.ScalarType.Float64);
                var s1 = pre.sum([0, 2, 3]);
                var s2 = pre.square().sum([0, 2, 3]);
                sum = sum is null ? s1.MoveToOuterDisposeScope() : sum.add_(s1);
                sumSq = sumSq is null ? s2.MoveToOuterDisposeScope() : sumSq.add_(s2);
                count += pre.shape[0] * pre.shape[2] * pre.shape[3];
            }
            var mean = sum! / count;
            var variance = (sumSq! - mean.square() * count) / Math.Max(1, count - 1);
            _weights[$"bn{k}.running_mean"].copy_(mean);
            _weights[$"bn{k}.running_var"].copy_(variance.clamp_min(0));
            result[$"bn{k}.running_mean"] = _weights[$"bn{k}.running_mean"].clone();
            result[$"bn{k}.running_var"] = _weights[$"bn{k}.running_var"].clone();
            foreach (var t in new[] { sum!, sumSq!, mean, variance }) t.Dispose();
        }
        return result;
    }

    /// <summary>The input of BatchNorm layer <paramref name="k"/> (the output of conv k) for a batch.</summary>
    private torch.Tensor PreNorm(torch.Tensor inputs, int k)
    {
        var x = ViewAsImages(inputs);
        for (int j = 1; j <= k; j++)
        {
            var weight = _weights![_convs[j - 1].Weight];
            x = conv2d(x, weight, _weights[_convs[j - 1].Bias], padding: [weight.shape[2] / 2, weight.shape[3] / 2]);
            if (j == k) return x;
            if (_norms.Contains(j))
                x = batch_norm(x, _weights[$"bn{j}.running_mean"], _weights[$"bn{j}.running_var"], _weights[$"bn{j}.weight"], _weights[$"bn{j}.bias"], training: false, eps: BatchNormEps);
            x = max_pool2d(relu(x), 2);
        }
        return x;
    }

    public torch.Tensor Forward(torch.Tensor inputs)
    {
        if (_weights is null) throw new InvalidOperationException("LoadWeights first");
        return Forward(_weights, inputs);
    }

    /// <summary>
    /// The same forward pass with caller-supplied weights (same names and shapes as the loaded ones). Used by
    /// the learned soup, whose weights are functions of the mixing coefficients and so carry gradients.
    /// </summary>
    internal torch.Tensor Forward(IReadOnlyDictionary<string, torch.Tensor> _weights, torch.Tensor inputs) => Forward(_weights, inputs, null);

    /// <summary>
    /// The forward pass, reporting every hidden layer's activations to <paramref name="hidden"/> as (layer, tensor):
    /// convK's after BatchNorm and ReLU, before pooling ([N, C, H, W]), and each hidden fcK's after ReLU ([N, units]).
    /// </summary>
    internal torch.Tensor Forward(IReadOnlyDictionary<string, torch.Tensor> _weights, torch.Tensor inputs, Action<string, torch.Tensor>? hidden)
    {
        var x = inputs;
        if (_cnn)
        {
            x = ViewAsImages(x, _weights);
            for (int k = 1; k <= _convs.Count; k++)
            {
                var weight = _weights[_convs[k - 1].Weight];
                x = conv2d(x, weight, _weights[_convs[k - 1].Bias], padding: [weight.shape[2] / 2, weight.shape[3] / 2]);
                if (_norms.Contains(k))
                    x = batch_norm(x, _weights[$"bn{k}.running_mean"], _weights[$"bn{k}.running_var"], _weights[$"bn{k}.weight"], _weights[$"bn{k}.bias"], training: false, eps: BatchNormEps);
                x = relu(x);
                hidden?.Invoke($"conv{k}", x);
                x = max_pool2d(x, 2);
            }
        }
        x = x.flatten(1);
        for (int i = 0; i < _fcs.Count; i++)
        {
            var weight = _weights[_fcs[i].Weight];
            if (x.shape[1] != weight.shape[1])
                throw new CloudSoupException(ErrorKind.IncompatibleModels, $"{Name}: {_fcs[i].Weight} expects {weight.shape[1]} inputs but gets {x.shape[1]}");
            x = linear(x, weight, _weights[_fcs[i].Bias]);
            if (i < _fcs.Count - 1)
            {
                x = relu(x);
                hidden?.Invoke($"fc{i + 1}", x);
            }
        }
        return x;
    }

    /// <summary>The loaded model's forward pass with its hidden activations reported (see the overload above).</summary>
    internal torch.Tensor Forward(torch.Tensor inputs, Action<string, torch.Tensor> hidden) =>
        Forward(_weights ?? throw new InvalidOperationException("LoadWeights first"), inputs, hidden);

    private torch.Tensor ViewAsImages(torch.Tensor x) => ViewAsImages(x, _weights!);

    private torch.Tensor ViewAsImages(torch.Tensor x, IReadOnlyDictionary<string, torch.Tensor> weights)
    {
        var w1 = weights[_convs[0].Weight];
        if (x.dim() != 2) return x;
        long side = (long)Math.Round(Math.Sqrt(x.shape[1] / (double)w1.shape[1]));
        if (side * side * w1.shape[1] != x.shape[1])
            throw CloudSoupException.Recipe("evaluation.data", $"{Name} cannot view inputs of width {x.shape[1]} as {w1.shape[1]}-channel square images");
        return x.view(x.shape[0], w1.shape[1], side, side);
    }

    public void Dispose()
    {
        if (_weights != null) foreach (var t in _weights.Values) t.Dispose();
    }
}
