// The sparsifiers of the generalized task-arithmetic family (mergekit/sparsify.py; the TIES, DARE, Breadcrumbs
// and DELLA papers listed in docs/methods.md "Sources"): pure functions, one task vector in, a sparsified copy out.
// Random ones take their keep-mask from an IMaskProvider, so tests can inject masks and every draw is
// seeded per tensor and model.
using TorchSharp;

namespace CloudSoup.Engine.Merging;

/// <summary>How a sparsified task vector is rescaled.</summary>
public enum RescaleMode
{
    /// <summary>mergekit (since PR #245): match the L1 norm of the original task vector.</summary>
    L1,
    /// <summary>The DARE/DELLA papers: divide each kept entry by its keep probability (1/(1−p)).</summary>
    InverseDensity,
}

/// <summary>Draws keep-masks (1 = keep) for random sparsifiers.</summary>
public interface IMaskProvider
{
    /// <summary>A 0/1 tensor shaped like <paramref name="keepProbability"/> for model <paramref name="modelIndex"/>.</summary>
    torch.Tensor KeepMask(torch.Tensor keepProbability, TensorMergeInput input, int modelIndex);
}

/// <summary>
/// The default provider: Bernoulli draws seeded with the tensor's seed mixed with the model's index and reference,
/// so a mask does not depend on execution order or worker count. The tensor is drawn in fixed chunks of
/// <see cref="ChunkElements"/>, each from its own torch.Generator seeded from that seed and the chunk's number, so the
/// chunks can be drawn on every core (libtorch draws one element at a time from one generator) and the mask is the same
/// whatever the number of cores. Draws are in the compute dtype (float32 for 16-bit compute dtypes): a float64 draw
/// costs two 32-bit random numbers per element, a float32 draw one.
/// </summary>
public sealed class SeededMaskProvider : IMaskProvider
{
    public static readonly SeededMaskProvider Instance = new();

    /// <summary>Elements per independently seeded chunk (part of the random stream's definition: changing it changes masks).</summary>
    public const long ChunkElements = 1L << 20;

    public static long SeedFor(TensorMergeInput input, int modelIndex) =>
        Seeds.For(input.Seed, input.TensorName, $"{modelIndex}:{input.ModelIds[modelIndex]}");

    public unsafe torch.Tensor KeepMask(torch.Tensor keepProbability, TensorMergeInput input, int modelIndex)
    {
        long seed = SeedFor(input, modelIndex);
        var drawType = keepProbability.dtype == torch.ScalarType.Float64 ? torch.ScalarType.Float64 : torch.ScalarType.Float32;
        using var p = keepProbability.to_type(drawType).cpu().contiguous().flatten();
        var mask = torch.empty_like(p);
        long n = p.NumberOfElements;
        long chunks = (n + ChunkElements - 1) / ChunkElements;
        if (drawType == torch.ScalarType.Float32 && n > 0)
            DrawChunks(seed, Float32Memory.Of(p), Float32Memory.Of(mask), n);   // torch.bernoulli's own values, in C# on every core
        else
            Parallel.For(0L, chunks, c =>
            {
                long start = c * ChunkElements, length = Math.Min(ChunkElements, n - start);
                using var gen = new torch.Generator((ulong)ChunkSeed(seed, c));
                using var from = p.narrow(0, start, length);
                using var into = mask.narrow(0, start, length);
                using var drawn = torch.bernoulli(from, gen);
                into.copy_(drawn);
            });
        using (mask)
            return mask.reshape(keepProbability.shape).to(keepProbability.dtype, keepProbability.device);
    }

    private static long ChunkSeed(long seed, long chunk) => Seeds.For(seed, $"chunk {chunk}");

    /// <summary>
    /// Elements [<paramref name="start"/>, start + <paramref name="length"/>) of the keep-mask <see cref="KeepMask"/> draws
    /// for a float32 probability that is <paramref name="p"/> everywhere (DARE), as bits (KeepBits) from bit 0 of
    /// <paramref name="bits"/>: the same draws, a window at a time (TaskArithmeticFamily.MaskWindows), the chunks it
    /// touches on every core. start is a multiple of 8 (chunks then start on bytes too).
    /// </summary>
    internal static unsafe void DrawKeepBits(long seed, float p, byte* bits, long start, long length)
    {
        if (start % 8 != 0) throw new ArgumentException($"a bit mask starts on a byte, not at element {start}", nameof(start));
        if (length <= 0) return;
        nint into = (nint)bits;
        Parallel.For(start / ChunkElements, (start + length - 1) / ChunkElements + 1, c =>
        {
            long chunkStart = c * ChunkElements;
            long from = Math.Max(chunkStart, start), to = Math.Min(chunkStart + ChunkElements, start + length);
            TorchBernoulli.DrawBits((ulong)ChunkSeed(seed, c), p, (byte*)into + (from - start) / 8, to - from, skip: from - chunkStart);
        });
    }

    /// <summary>
    /// The uniforms behind <see cref="KeepMask"/>'s float32 draws, from the same seed and chunks, read from element
    /// <paramref name="start"/> on: element e is kept when u[e] &lt; p[e], whatever the probabilities p (DELLA, whose p
    /// is known only once a row is ranked: RowRanks.Keep).
    /// </summary>
    internal static TorchBernoulli.UniformReader UniformsFrom(long seed, long start) =>
        new(c => (ulong)ChunkSeed(seed, c), ChunkElements, start);

    /// <summary>
    /// Float32 draws of the whole tensor from <paramref name="p"/>, chunk by chunk on every core (TorchBernoulli,
    /// torch.bernoulli's values).
    /// </summary>
    private static unsafe void DrawChunks(long seed, float* p, float* mask, long n)
    {
        nint into = (nint)mask, from = (nint)p;
        Parallel.For(0L, (n + ChunkElements - 1) / ChunkElements, c =>
        {
            long start = c * ChunkElements;
            TorchBernoulli.Draw((ulong)ChunkSeed(seed, c), (float*)from + start, (float*)into + start, Math.Min(ChunkElements, n - start));
        });
    }
}

public static class Sparsifiers
{
    /// <summary>
    /// TIES trim: keep exactly int(density·n) entries with the largest |δ|; density ≥ 1 keeps everything. Equal
    /// magnitudes rank by position, the lower flat index counting as larger (<see cref="RankByMagnitude"/>). mergekit
    /// asserts k > 0; we return zeros for a tiny tensor instead.
    /// With <paramref name="inPlace"/>, <paramref name="delta"/> itself is masked and returned (the same values).
    /// </summary>
    public static torch.Tensor Magnitude(torch.Tensor delta, double density, bool inPlace = false)
    {
        if (density >= 1) return inPlace ? delta : delta.clone();
        long n = delta.NumberOfElements;
        long k = (long)(density * n);
        using var scope = torch.NewDisposeScope();
        var flat = delta.flatten();
        var mask = RankedRangeMask(flat, 0, k);
        if (inPlace) { flat.mul_(mask); return delta; }
        return (flat * mask).reshape(delta.shape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Breadcrumbs (magnitude_outliers), as mergekit/sparsify.py: density ≥ 1 keeps the whole task vector; otherwise drop
    /// the top n_top = int(γ·n) entries by |δ| and the smallest ones so that int(density·n) remain. When density + γ > 1
    /// there are not enough entries for both, so n_top shrinks to n − int(density·n) (nothing is dropped at the bottom).
    /// Fixes mergekit's defect: its slice [n_bot:-n_top] is empty when n_top = 0, which zeroes the whole tensor (e.g. any
    /// tensor under 100 elements at γ = 0.01); here the kept ranks are [n_top, n_top + int(density·n)) of the descending
    /// order. Equal magnitudes rank as in <see cref="RankByMagnitude"/>.
    /// With <paramref name="inPlace"/>, <paramref name="delta"/> itself is masked and returned (the same values).
    /// </summary>
    public static torch.Tensor MagnitudeOutliers(torch.Tensor delta, double density, double gamma, bool inPlace = false)
    {
        if (density >= 1) return inPlace ? delta : delta.clone();
        long n = delta.NumberOfElements;
        long nTop = (long)(gamma * n);
        long nBot = n - (long)(density * n) - nTop;
        if (nBot < 0) { nTop += nBot; nBot = 0; }
        long keep = n - nBot - nTop;
        using var scope = torch.NewDisposeScope();
        var flat = delta.flatten();
        var mask = RankedRangeMask(flat, nTop, keep);
        if (inPlace) { flat.mul_(mask); return delta; }
        return (flat * mask).reshape(delta.shape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// A 0/1 mask (in <paramref name="flat"/>'s dtype) of the entries at ranks [<paramref name="start"/>,
    /// <paramref name="start"/> + <paramref name="count"/>) of <see cref="RankByMagnitude"/>, found by selection instead
    /// of a sort: the rank-r magnitude comes from torch.kthvalue (linear time), everything strictly larger is in, and
    /// of the entries equal to it the lowest flat indices fill the remaining places, which is exactly the tie rule
    /// of the stable sort. Tensors holding NaN take the sort (the mask is the same; NaN's place in an order is the
    /// sort's to define). Call it inside a dispose scope.
    /// </summary>
    public static torch.Tensor RankedRangeMask(torch.Tensor flat, long start, long count)
    {
        long n = flat.NumberOfElements;
        if (count <= 0) return torch.zeros_like(flat);
        if (start == 0 && count >= n) return torch.ones_like(flat);
        var magnitude = flat.abs();
        // A sum of magnitudes (all ≥ 0) is NaN exactly when one of them is: one reduction, no bool tensor.
        if (magnitude.sum().isnan().ToBoolean())
        {
            var mask = torch.zeros_like(flat);
            using Scalar one = 1.0;   // held in a local until the call returns (see TopRanks)
            mask.index_fill_(0, RankByMagnitude(flat).narrow(0, start, count), one);
            return mask;
        }
        var top = TopRanks(magnitude, start + count);
        if (start > 0) top.logical_and_(TopRanks(magnitude, start).logical_not_());
        return top.to_type(flat.dtype);
    }

    /// <summary>A bool mask of the <paramref name="m"/> entries ranked first by magnitude (larger first; equal: lower index first).</summary>
    private static torch.Tensor TopRanks(torch.Tensor magnitude, long m)
    {
        long n = magnitude.NumberOfElements;
        if (m >= n) return torch.ones_like(magnitude, dtype: torch.ScalarType.Bool);
        // The m-th largest value is the (n − m + 1)-th smallest (kthvalue counts from 1, ascending).
        var threshold = magnitude.kthvalue(n - m + 1, dim: 0).values;
        var mask = magnitude > threshold;
        long missing = m - mask.sum().ToInt64();
        if (missing > 0)
        {
            // nonzero lists indices in ascending order: the first ones win among the equal magnitudes.
            var equal = (magnitude == threshold).nonzero().flatten();
            // The fill value as a Scalar the caller holds until the call returns: a temporary one made by an implicit
            // conversion in the argument list can be finalized (its native value freed) while libtorch still reads it,
            // which failed a test run once with libtorch's "Expected false to be true" from Scalar::toBool.
            using Scalar on = true;
            mask.index_fill_(0, equal.narrow(0, 0, missing), on);
        }
        return mask;
    }

    /// <summary>
    /// The flat indices of <paramref name="flat"/> from the largest |value| to the smallest; equal magnitudes keep their
    /// index order, so of two equal entries the one with the lower index counts as larger (kept first by a top-k,
    /// dropped first as an outlier). The one tie rule of every magnitude ranking (TIES, Breadcrumbs, SCE's variances;
    /// docs/methods.md, "Ties between equal magnitudes"). Call it inside a dispose scope.
    /// </summary>
    public static torch.Tensor RankByMagnitude(torch.Tensor flat) => flat.abs().sort(dim: 0, descending: true, stable: true).Indices;

    /// <summary>DARE keep probabilities: density everywhere.</summary>
    public static torch.Tensor DareProbabilities(torch.Tensor delta, double density) => torch.full_like(delta, density);

    /// <summary>
    /// DELLA MagPrune keep probabilities: per row (dim 1; a 1-D tensor is one row) rank |δ| ascending and map the
    /// rank linearly onto [density − ε, density + ε], so larger magnitudes are kept more often. Equal magnitudes rank
    /// by position, the lower index lower (a stable sort: the tie rule of every ranking, docs/methods.md).
    /// </summary>
    public static torch.Tensor DellaProbabilities(torch.Tensor delta, double density, double epsilon)
    {
        using var scope = torch.NewDisposeScope();
        var rows = delta.dim() <= 1 ? delta.reshape(1, -1) : delta.reshape(delta.shape[0], delta.shape[1], -1);
        long width = rows.shape[1];
        var rank = RanksAlongRows(delta, rows);
        var p = width <= 1 ? torch.full_like(rows, density) : (density - epsilon) + 2 * epsilon * rank / (width - 1);
        return p.reshape(delta.shape).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The 0-based ascending rank of each |δ| along dim 1 of <paramref name="rows"/> (ties: lower index first), in
    /// <paramref name="delta"/>'s dtype. Float32 CPU tensors of at most two dimensions (rows in memory order) take
    /// RowRanks' radix sort; others (and rows holding NaN) a stable argsort, whose inverse permutation a scatter writes
    /// (what an argsort of the argsort computes, without a second sort). Both give the same ranks.
    /// </summary>
    internal static unsafe torch.Tensor RanksAlongRows(torch.Tensor delta, torch.Tensor rows)
    {
        if (Float32Memory.IsFlat(delta) && delta.dim() <= 2
            && rows.NumberOfElements > 0 && rows.shape[1] <= int.MaxValue)
        {
            var ranks = torch.empty_like(delta);
            if (RowRanks.Compute(Float32Memory.Of(delta), null, rows.shape[0], (int)rows.shape[1], Float32Memory.Of(ranks)))
                return ranks.reshape(rows.shape);
            ranks.Dispose();
        }
        var order = rows.abs().sort(dim: 1, descending: false, stable: true).Indices;
        var along = Enumerable.Repeat(1L, (int)rows.dim()).ToArray();
        along[1] = rows.shape[1];
        var positions = torch.arange(rows.shape[1], dtype: torch.ScalarType.Int64).reshape(along).expand(order.shape);
        return torch.empty_like(order).scatter_(1, order, positions).to_type(delta.dtype);
    }

    /// <summary>
    /// Applies a keep-mask and rescales the survivors; with <paramref name="inPlace"/> into <paramref name="delta"/> itself
    /// (not with the L1 rescale, which needs the unmasked values).
    /// </summary>
    public static torch.Tensor ApplyMask(torch.Tensor delta, torch.Tensor keepMask, torch.Tensor keepProbability, bool rescale, RescaleMode mode, bool inPlace = false)
    {
        if (inPlace && rescale && mode == RescaleMode.L1) throw new ArgumentException("the L1 rescale needs the unmasked task vector", nameof(inPlace));
        using var scope = torch.NewDisposeScope();
        var masked = inPlace ? delta.mul_(keepMask) : delta * keepMask;
        if (rescale)
            masked = mode == RescaleMode.InverseDensity
                ? masked.div_(keepProbability.clamp_min(1e-12))
                : MatchL1(delta, masked);
        return inPlace ? masked : masked.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// mergekit's rescale: masked·‖δ‖₁/‖masked‖₁, left alone when either norm is below 1e-7. Float32 CPU norms are summed
    /// in L1Norms' order (the fused kernels' too, so both paths give the same bytes); others by libtorch.
    /// </summary>
    public static torch.Tensor MatchL1(torch.Tensor original, torch.Tensor masked)
    {
        double before = L1Norm(original), after = L1Norm(masked);
        return L1Norms.LeavesAlone(before, after) ? masked.clone() : masked * (before / after);
    }

    private static unsafe double L1Norm(torch.Tensor t)
    {
        if (t.dtype != torch.ScalarType.Float32 || t.device_type != DeviceType.CPU || t.NumberOfElements == 0) return t.abs().sum().ToDouble();
        using var flat = t.contiguous();
        long rows = L1Norms.RowsOf(t.shape), width = t.NumberOfElements / rows;
        nint v = (nint)Float32Memory.Of(flat);   // pointers cannot be captured by the lambda below
        return L1Norms.Of(r => new L1Norms.Magnitudes((float*)v + r * width), rows, width);
    }
}
