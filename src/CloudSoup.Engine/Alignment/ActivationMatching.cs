// Activation matching for the built-in architectures (builtin:mlp and builtin:cnn, run exactly as the evaluator
// runs them): Git Re-Basin §3.1 (arXiv 2209.04836; samuela/git-re-basin src/mnist_mlp_activation_matching.py;
// docs/alignment.md). For every hidden layer, the activations of A and
// B on the same data are compared unit by unit, and one maximising assignment per layer (independently, no
// coordinate descent) pairs B's units with A's. Hidden fc layers contribute one sample per example (after ReLU);
// convolutions one sample per example and spatial position (after BatchNorm and ReLU, before pooling — pooling
// commutes with a channel permutation). We use the Pearson correlation of the activations (as REPAIR and ZipIt
// do) rather than the raw E[a bᵀ]: it does not favour units just for being large, and dead units score 0.
// Units the data never moves (dead ReLUs, constant channels) correlate with nothing, so the assignment among them
// would be arbitrary; a tie-break of 1e-3 × the cosine similarity of the units' incoming weights (B's inputs
// already permuted by the previous layer's answer, layers solved in forward order) pairs them by weights instead
// without overriding any real difference in correlation.
using CloudSoup.Control.Recipes;
using CloudSoup.Control.Errors;
using CloudSoup.Engine.Evaluation;
using TorchSharp;

namespace CloudSoup.Engine.Alignment;

public static class ActivationMatching
{
    /// <summary>The evaluation architectures activation matching can run.</summary>
    public static IReadOnlyList<string> Architectures => AlignmentSection.ActivationArchitectures;

    /// <summary>
    /// Permutations (named as in <paramref name="spec"/>) that line B's hidden units up with A's, measured by running
    /// both through <paramref name="architecture"/> on <paramref name="inputs"/> ([N, ...] as the evaluator takes them).
    /// A hidden layer whose output units no permutation of the spec touches is left alone.
    /// </summary>
    public static WeightMatchingResult Match(string architecture, PermutationSpec spec, IReadOnlyDictionary<string, torch.Tensor> a,
        IReadOnlyDictionary<string, torch.Tensor> b, torch.Tensor inputs, int batchSize = 500, CancellationToken cancellationToken = default)
    {
        if (!Architectures.Contains(architecture))
            throw CloudSoupException.Recipe("alignment.method", $"activation_matching runs {string.Join(" or ", Architectures)} (got {architecture})");
        using var modelA = BuiltinModel.Create(architecture);
        using var modelB = BuiltinModel.Create(architecture);
        modelA.LoadWeights(a, "the reference model");
        modelB.LoadWeights(b, "the model to align");
        using var noGrad = torch.no_grad();
        var stats = new Dictionary<string, Correlation>(StringComparer.Ordinal);
        var order = new List<string>();   // hidden layers in forward order
        try
        {
            long n = inputs.shape[0];
            for (long start = 0; start < n; start += batchSize)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = torch.NewDisposeScope();
                var x = inputs.narrow(0, start, Math.Min(batchSize, n - start)).to_type(torch.ScalarType.Float32);
                var hiddenA = new List<(string Layer, torch.Tensor Act)>();
                modelA.Forward(x, (layer, act) => hiddenA.Add((layer, act)));
                int i = 0;
                modelB.Forward(x, (layer, act) =>
                {
                    var (layerA, actA) = hiddenA[i++];
                    if (layerA != layer || !actA.shape.SequenceEqual(act.shape))
                        throw new CloudSoupException(ErrorKind.IncompatibleModels, $"activation_matching: the models' hidden layers differ ({layerA} {Shape(actA)} vs {layer} {Shape(act)})");
                    if (!stats.TryGetValue(layer, out var c)) { stats[layer] = c = new Correlation(); order.Add(layer); }
                    c.Add(Samples(actA), Samples(act));
                });
            }
            if (stats.Count == 0) throw new CloudSoupException(ErrorKind.IncompatibleModels, $"activation_matching needs hidden layers ({architecture} with a single layer has none)");

            var sizes = spec.Validate(Permutations.Shapes(a));
            var perms = Permutations.Identity(sizes);
            var index = perms.ToDictionary(kv => kv.Key, kv => Permutations.IndexTensor(kv.Value).DetachFromDisposeScope());
            int matched = 0;
            try
            {
                foreach (var layer in order)
                {
                    string weight = $"{layer}.weight";
                    var owner = spec.PermsOf(weight).Where(p => p.Axis == 0).Select(p => p.Perm).FirstOrDefault();
                    if (owner is null) continue;
                    using var scope = torch.NewDisposeScope();
                    var corr = stats[layer].Matrix();
                    int units = (int)corr.shape[0];
                    if (units != sizes[owner])
                        throw new CloudSoupException(ErrorKind.IncompatibleModels, $"activation_matching: {layer} has {units} units but permutation {owner} has size {sizes[owner]}");
                    var rowsA = torch.nn.functional.normalize(a[weight].to_type(torch.ScalarType.Float64).reshape(units, -1), dim: 1);
                    var rowsB = torch.nn.functional.normalize(Permutations.Permute(b[weight].to_type(torch.ScalarType.Float64), spec.PermsOf(weight), index, exceptAxis: 0).reshape(units, -1), dim: 1);
                    var cost = corr + TieBreak * rowsA.mm(rowsB.t());
                    perms[owner] = LinearAssignment.Solve(cost.contiguous().data<double>().ToArray(), units, units, maximize: true);
                    index[owner].Dispose();
                    index[owner] = Permutations.IndexTensor(perms[owner]).DetachFromDisposeScope();
                    matched++;
                }
            }
            finally
            {
                foreach (var t in index.Values) t.Dispose();
            }
            if (matched == 0) throw new CloudSoupException(ErrorKind.IncompatibleModels, "activation_matching: the permutation spec permutes none of the hidden layers' outputs");
            return new WeightMatchingResult(perms, [], 1);
        }
        finally
        {
            foreach (var c in stats.Values) c.Dispose();
        }
    }

    private const double TieBreak = 1e-3;

    private static string Shape(torch.Tensor t) => $"[{string.Join(", ", t.shape)}]";

    /// <summary>[N, units] stays; [N, C, H, W] becomes [N·H·W, C] (each position a sample of every channel).</summary>
    private static torch.Tensor Samples(torch.Tensor act) =>
        (act.dim() == 2 ? act : act.permute(0, 2, 3, 1).reshape(-1, act.shape[1])).to_type(torch.ScalarType.Float64);

    /// <summary>Running sums for the Pearson correlation of A's units with B's, in float64.</summary>
    private sealed class Correlation : IDisposable
    {
        private torch.Tensor? _sa, _sb, _saa, _sbb, _sab;
        private long _n;

        public void Add(torch.Tensor a, torch.Tensor b)
        {
            Accumulate(ref _sa, a.sum(0L)); Accumulate(ref _sb, b.sum(0L));
            Accumulate(ref _saa, a.square().sum(0L)); Accumulate(ref _sbb, b.square().sum(0L));
            Accumulate(ref _sab, a.t().matmul(b));
            _n += a.shape[0];
        }

        public torch.Tensor Matrix()
        {
            using var scope = torch.NewDisposeScope();
            var ma = _sa! / _n; var mb = _sb! / _n;
            var cov = _sab! / _n - ma.outer(mb);
            var sda = (_saa! / _n - ma.square()).clamp_min(0).sqrt();
            var sdb = (_sbb! / _n - mb.square()).clamp_min(0).sqrt();
            return (cov / (sda.outer(sdb) + 1e-8)).MoveToOuterDisposeScope();
        }

        private static void Accumulate(ref torch.Tensor? acc, torch.Tensor value)
        {
            if (acc is null) acc = value.detach().clone().DetachFromDisposeScope();
            else acc.add_(value);
        }

        public void Dispose()
        {
            foreach (var t in new[] { _sa, _sb, _saa, _sbb, _sab }) t?.Dispose();
        }
    }
}
