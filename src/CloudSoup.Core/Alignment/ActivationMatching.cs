// Activation matching for plain ReLU MLPs (fc1..fcL, as builtin:mlp evaluates them): Git Re-Basin §3.1,
// reference/rebasin-soups.md §1.5. For every hidden layer, the post-ReLU activations of A and B on the same
// data are compared unit by unit, and one maximising assignment per layer (independently, no coordinate
// descent) pairs B's units with A's. We use the Pearson correlation of the activations (as REPAIR and ZipIt do)
// rather than the raw E[a bᵀ]: it does not favour units just for being large, and dead units score 0.
using CloudSoup.Core.Errors;
using TorchSharp;

namespace CloudSoup.Core.Alignment;

public static class ActivationMatching
{
    /// <summary>
    /// Permutations (named as in <paramref name="spec"/>, the MLP spec of the reference) that line B's hidden
    /// units up with A's. <paramref name="inputs"/> is [N, features]; they are flattened to [N, −1].
    /// </summary>
    public static WeightMatchingResult Match(PermutationSpec spec, IReadOnlyDictionary<string, torch.Tensor> a,
        IReadOnlyDictionary<string, torch.Tensor> b, torch.Tensor inputs, int batchSize = 500, CancellationToken cancellationToken = default)
    {
        int layers = 0;
        while (a.ContainsKey($"fc{layers + 1}.weight")) layers++;
        if (layers < 2) throw new CloudSoupException(ErrorKind.IncompatibleModels, "activation_matching needs an MLP with hidden layers fc1..fcL (L ≥ 2)");
        // Which permutation acts on the output units of fcK.
        var permOfLayer = new string[layers - 1];
        for (int k = 1; k < layers; k++)
        {
            var owner = spec.PermsOf($"fc{k}.weight").Where(p => p.Axis == 0).Select(p => p.Perm).FirstOrDefault();
            permOfLayer[k - 1] = owner ?? throw new CloudSoupException(ErrorKind.IncompatibleModels, $"the permutation spec does not permute the output units of fc{k}");
        }
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        // Running sums for the correlation, per hidden layer: Σa, Σb, Σa², Σb², Σ a bᵀ (float64).
        var sa = new torch.Tensor?[layers - 1]; var sb = new torch.Tensor?[layers - 1];
        var saa = new torch.Tensor?[layers - 1]; var sbb = new torch.Tensor?[layers - 1]; var sab = new torch.Tensor?[layers - 1];
        long n = inputs.shape[0];
        for (long start = 0; start < n; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var x = inputs.narrow(0, start, Math.Min(batchSize, n - start)).reshape(Math.Min(batchSize, n - start), -1).to_type(torch.ScalarType.Float64);
            torch.Tensor ha = x, hb = x;
            for (int k = 1; k < layers; k++)
            {
                ha = torch.nn.functional.relu(torch.nn.functional.linear(ha, F64(a[$"fc{k}.weight"]), F64(a[$"fc{k}.bias"])));
                hb = torch.nn.functional.relu(torch.nn.functional.linear(hb, F64(b[$"fc{k}.weight"]), F64(b[$"fc{k}.bias"])));
                int l = k - 1;
                Add(ref sa[l], ha.sum(0L)); Add(ref sb[l], hb.sum(0L));
                Add(ref saa[l], ha.square().sum(0L)); Add(ref sbb[l], hb.square().sum(0L));
                Add(ref sab[l], ha.t().matmul(hb));
            }
        }
        var perms = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var name in spec.Names) perms[name] = Enumerable.Range(0, spec.Validate(Permutations.Shapes(a))[name]).ToArray();
        for (int l = 0; l < layers - 1; l++)
        {
            var ma = sa[l]! / n; var mb = sb[l]! / n;
            var cov = sab[l]! / n - ma.outer(mb);
            var sda = (saa[l]! / n - ma.square()).clamp_min(0).sqrt();
            var sdb = (sbb[l]! / n - mb.square()).clamp_min(0).sqrt();
            var corr = cov / (sda.outer(sdb) + 1e-8);
            int units = (int)corr.shape[0];
            var cost = corr.contiguous().data<double>().ToArray();
            perms[permOfLayer[l]] = LinearAssignment.Solve(cost, units, units, maximize: true);
        }
        return new WeightMatchingResult(perms, [], 1);
    }

    private static torch.Tensor F64(torch.Tensor t) => t.to_type(torch.ScalarType.Float64);

    private static void Add(ref torch.Tensor? acc, torch.Tensor value) => acc = acc is null ? value : acc + value;
}
