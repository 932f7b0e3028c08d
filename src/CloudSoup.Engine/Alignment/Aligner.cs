// Aligning several models to one reference before merging (Git Re-Basin weight matching,
// Ainsworth et al. 2022, arXiv 2209.04836; docs/alignment.md): every other model is matched to the reference
// independently and permuted.
using TorchSharp;

namespace CloudSoup.Engine.Alignment;

/// <param name="Index">The model's position in the input list.</param>
/// <param name="Permutations">What was applied to the model (identity for the reference).</param>
/// <param name="Objective">Weight-matching objective at the identity and after each sweep (one entry for the reference).</param>
public sealed record ModelAlignment(int Index, IReadOnlyDictionary<string, int[]> Permutations, IReadOnlyList<double> Objective, int Sweeps);

/// <param name="Models">The permuted state dicts, in input order; the caller owns (and disposes) their tensors.</param>
public sealed record AlignmentResult(IReadOnlyList<Dictionary<string, torch.Tensor>> Models, IReadOnlyList<ModelAlignment> PerModel);

public static class Aligner
{
    /// <summary>
    /// Permutes every model but <paramref name="referenceIndex"/> to match the reference. Model i's coordinate
    /// descent is seeded from (<paramref name="seed"/>, i), so its result does not depend on the other models.
    /// The reference comes back unchanged (as aliases of its tensors).
    /// </summary>
    public static AlignmentResult Align(IReadOnlyList<IReadOnlyDictionary<string, torch.Tensor>> models, int referenceIndex,
        PermutationSpec spec, long seed, int maxIter = WeightMatching.DefaultMaxIter, CancellationToken cancellationToken = default)
    {
        if (models.Count == 0) throw new ArgumentException("no models to align");
        if (referenceIndex < 0 || referenceIndex >= models.Count)
            throw new ArgumentOutOfRangeException(nameof(referenceIndex), $"reference index {referenceIndex} is outside 0..{models.Count - 1}");
        var reference = models[referenceIndex];
        var sizes = spec.Validate(Permutations.Shapes(reference), "the reference model");

        var aligned = new Dictionary<string, torch.Tensor>[models.Count];
        var perModel = new ModelAlignment[models.Count];
        try
        {
            for (int i = 0; i < models.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (i == referenceIndex)
                {
                    var identity = Permutations.Identity(sizes);
                    aligned[i] = reference.ToDictionary(kv => kv.Key, kv => kv.Value.alias());
                    perModel[i] = new ModelAlignment(i, identity, [], 0);
                    continue;
                }
                var match = WeightMatching.Match(spec, reference, models[i], ModelSeed(seed, i), maxIter, cancellationToken);
                aligned[i] = Permutations.Apply(spec, match.Permutations, models[i]);
                perModel[i] = new ModelAlignment(i, match.Permutations, match.Objective, match.Sweeps);
            }
        }
        catch
        {
            foreach (var d in aligned) if (d is not null) foreach (var t in d.Values) t.Dispose();
            throw;
        }
        return new AlignmentResult(aligned, perModel);
    }

    /// <summary>The same on a worker thread, for callers on an async path.</summary>
    public static Task<AlignmentResult> AlignAsync(IReadOnlyList<IReadOnlyDictionary<string, torch.Tensor>> models, int referenceIndex,
        PermutationSpec spec, long seed, int maxIter = WeightMatching.DefaultMaxIter, CancellationToken cancellationToken = default) =>
        Task.Run(() => Align(models, referenceIndex, spec, seed, maxIter, cancellationToken), cancellationToken);

    private static long ModelSeed(long seed, int index) => unchecked(seed * 1_000_003L + index);
}
