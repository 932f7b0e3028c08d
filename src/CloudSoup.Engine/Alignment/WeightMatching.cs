// Git Re-Basin weight matching (Ainsworth et al. 2022, Algorithm 1; samuela/git-re-basin
// src/weight_matching.py; arXiv 2209.04836; docs/alignment.md): coordinate descent over the permutations of a spec.
// Start from the identity; each sweep visits the permutations in a fresh seeded random order and, for each P,
// solves the linear assignment maximising Σ_(tensor, axis) ∈ P  W_a(axis first, flattened) · W_b(all other
// permutations applied, axis first, flattened)ᵀ. Stop after a sweep in which no assignment improved its
// objective by more than 1e-12, or after maxIter sweeps. Raw inner products in float64, no normalisation.
using CloudSoup.Control.Errors;
using TorchSharp;

namespace CloudSoup.Engine.Alignment;

/// <param name="Permutations">Index vectors to apply to model B (<see cref="Alignment.Permutations.Apply"/>).</param>
/// <param name="Objective">Σ over the spec's tensors of ⟨W_a, π(W_b)⟩: at the identity, then after every sweep.</param>
public sealed record WeightMatchingResult(IReadOnlyDictionary<string, int[]> Permutations, IReadOnlyList<double> Objective, int Sweeps);

public static class WeightMatching
{
    public const int DefaultMaxIter = 100;
    private const double Tolerance = 1e-12;

    /// <summary>Finds permutations of model <paramref name="b"/> that bring its weights closest to <paramref name="a"/>'s.</summary>
    public static WeightMatchingResult Match(PermutationSpec spec, IReadOnlyDictionary<string, torch.Tensor> a,
        IReadOnlyDictionary<string, torch.Tensor> b, long seed, int maxIter = DefaultMaxIter, CancellationToken cancellationToken = default)
    {
        if (maxIter < 1) throw new ArgumentOutOfRangeException(nameof(maxIter), "maxIter must be at least 1");
        var sizes = spec.Validate(Permutations.Shapes(a), "the reference model");
        spec.Validate(Permutations.Shapes(b), "the model being aligned");
        foreach (var t in spec.Tensors)
            if (!a[t].shape.SequenceEqual(b[t].shape))
                throw new CloudSoupException(ErrorKind.IncompatibleModels,
                    $"tensor '{t}' has shape [{string.Join(", ", a[t].shape)}] in the reference model but [{string.Join(", ", b[t].shape)}] in the model being aligned");

        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var wa = spec.Tensors.ToDictionary(t => t, t => Float64(a[t], t, "reference model"));
        var wb = spec.Tensors.ToDictionary(t => t, t => Float64(b[t], t, "model being aligned"));
        // A's side of every cost term never changes: flatten it once.
        var flatA = spec.Names.ToDictionary(p => p, p => spec.AxesOf(p)
            .Select(x => wa[x.Tensor].movedim([x.Axis], [0]).reshape(sizes[p], -1)).ToArray());

        var perms = Permutations.Identity(sizes);
        var index = perms.ToDictionary(kv => kv.Key, kv => Permutations.IndexTensor(kv.Value));
        var objective = new List<double> { Objective(spec, wa, wb, index) };
        var cost = new double[sizes.Values.Max() * sizes.Values.Max()];
        int sweeps = 0;
        for (int iteration = 0; iteration < maxIter; iteration++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            sweeps++;
            bool progress = false;
            foreach (var p in SweepOrder(spec.Names, seed, iteration))
            {
                int n = sizes[p];
                using (var inner = torch.NewDisposeScope())
                {
                    var sim = torch.zeros(n, n, torch.float64);
                    var axes = spec.AxesOf(p);
                    for (int k = 0; k < axes.Count; k++)
                    {
                        var (tensor, axis, _) = axes[k];
                        var permutedB = Permutations.Permute(wb[tensor], spec.PermsOf(tensor), index, exceptAxis: axis);
                        sim.add_(flatA[p][k].mm(permutedB.movedim([axis], [0]).reshape(n, -1).t()));
                    }
                    sim.contiguous().data<double>().CopyTo(cost, 0);
                }
                var span = cost.AsSpan(0, n * n);
                int[] next = LinearAssignment.Solve(span, n, n, maximize: true);
                double oldL = LinearAssignment.Total(span, n, perms[p]);
                double newL = LinearAssignment.Total(span, n, next);
                progress |= newL > oldL + Tolerance;
                perms[p] = next;
                index[p].Dispose();
                index[p] = Permutations.IndexTensor(next);
            }
            objective.Add(Objective(spec, wa, wb, index));
            if (!progress) break;
        }
        return new WeightMatchingResult(perms, objective, sweeps);
    }

    /// <summary>Σ over the spec's tensors of ⟨W_a, π(W_b)⟩, the quantity the coordinate descent increases.</summary>
    private static double Objective(PermutationSpec spec, Dictionary<string, torch.Tensor> wa,
        Dictionary<string, torch.Tensor> wb, Dictionary<string, torch.Tensor> index)
    {
        using var scope = torch.NewDisposeScope();
        double sum = 0;
        foreach (var t in spec.Tensors)
            sum += (wa[t] * Permutations.Permute(wb[t], spec.PermsOf(t), index, exceptAxis: -1)).sum().item<double>();
        return sum;
    }

    /// <summary>The permutation names in the order sweep <paramref name="iteration"/> visits them (seeded Fisher–Yates).</summary>
    internal static string[] SweepOrder(IReadOnlyList<string> names, long seed, int iteration)
    {
        var order = names.ToArray();
        ulong state = Mix((ulong)seed ^ Mix((ulong)iteration + 0x9E3779B97F4A7C15UL));
        for (int i = order.Length - 1; i > 0; i--)
        {
            state = Mix(state);
            int j = (int)(state % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    // SplitMix64 finaliser: a fixed, platform-independent mixing step (no dependence on System.Random's algorithm).
    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static torch.Tensor Float64(torch.Tensor t, string name, string which)
    {
        var d = t.to(torch.CPU).to_type(torch.float64).contiguous();
        if (!torch.isfinite(d).all().item<bool>())
            throw new CloudSoupException(ErrorKind.InvalidCheckpoint, $"tensor '{name}' of the {which} contains NaN or Inf; alignment needs finite weights");
        return d;
    }
}
