// The generalized task-arithmetic pipeline shared by task_arithmetic, ties, dare_*, breadcrumbs* and della*
// (mergekit/merge_methods/generalized_task_arithmetic.py; docs/methods.md), per tensor:
//   δ_i = x_i − b → sparsify (own density) → optional rescale → Δ_i = w_i·δ_i
//   → optional sign consensus (TIES: s = sign Σ Δ_i, ties to +; keep Δ_i whose sign equals s)
//   → mixed = Σ Δ_i, divided by Σ w_i of the contributors when `normalize` (TIES dis-mean; false = dis-sum)
//   → b + λ·mixed.
using CloudSoup.Control.Errors;
using CloudSoup.Control.Jobs;
using CloudSoup.Control.Methods;
using CloudSoup.Control.Recipes;
using TorchSharp;

namespace CloudSoup.Engine.Merging;

public class TaskArithmeticFamily(TaskVectorSignature signature, IMaskProvider? masks = null) : IMergeMethod, IWholeModelPrepass, INonFinitePropagating
{
    /// <summary>
    /// Always: every input of an element reaches that output element through products and sums only (a dropped entry
    /// is δ·0, a zero weight or λ multiplies, a disagreeing term is multiplied by 0, the L1 factor is a ratio of sums
    /// over every entry), and ±inf·0 is NaN, so a non-finite input leaves the output non-finite there
    /// (NonFinitePropagationTests).
    /// </summary>
    public bool EveryInputReachesTheOutput(IReadOnlyList<ResolvedParameters> perModel, ResolvedParameters global) => true;

    private readonly IMaskProvider _masks = masks ?? SeededMaskProvider.Instance;

    public MethodSignature Signature => signature;
    private string Name => signature.Name;
    private SparsifyKind Sparsify => signature.Sparsify;

    /// <summary>
    /// topk_scope: model — each model's |δ| threshold over the whole model (TopKPrepass), by model reference;
    /// magnitude trimming then keeps |δ| ≥ threshold (the official TIES rule) instead of a per-tensor top-k.
    /// </summary>
    public IReadOnlyDictionary<string, double>? ModelThresholds { get; init; }

    /// <summary>True when the recipe asks for whole-model top-k and the thresholds are not known yet.</summary>
    public bool NeedsPrepass(MergePlan plan) =>
        Sparsify == SparsifyKind.Magnitude && ModelThresholds is null && plan.Tensors.Any(t => t.Merge && TaskVectorSignature.WholeModelTopK(t.Global));

    /// <summary>
    /// Float32 CPU tensors take the fused kernel (FusedTaskVectors: the same bytes in one pass, no full-size
    /// temporaries); false forces the tensor path everywhere (tests compare the two).
    /// </summary>
    public bool Fused { get; init; } = true;

    public Task<(MergePlan Plan, string Note)> RunPrepassAsync(MergePlan plan, IProgress<JobProgress>? progress, CancellationToken ct) =>
        TopKPrepass.RunAsync(plan, thresholds => new TaskArithmeticFamily(signature, _masks) { ModelThresholds = thresholds, Fused = Fused, MaskBudgetBytes = MaskBudgetBytes }, progress, ct);

    public string? SaveDecision() => ModelThresholds is null ? null : System.Text.Json.JsonSerializer.Serialize(ModelThresholds, PrepassJson.Options);

    public IMergeMethod WithDecision(string json) => new TaskArithmeticFamily(signature, _masks)
    {
        Fused = Fused, MaskBudgetBytes = MaskBudgetBytes,
        ModelThresholds = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, double>>(json, PrepassJson.Options)
            ?? throw new InvalidDataException("the whole-model thresholds are JSON null"),
    };

    public torch.Tensor Merge(TensorMergeInput input)
    {
        var b = input.Base ?? throw new CloudSoupException(ErrorKind.InvalidRecipe, $"{Name} needs a base_model", "base_model");
        bool rescale = input.Global.Bool("rescale");
        var mode = input.Global.Text("rescale_mode") == "inverse_density" ? RescaleMode.InverseDensity : RescaleMode.L1;
        using var scope = torch.NewDisposeScope();
        var models = Enumerable.Range(0, input.Tensors.Count).Where(i => i != input.BaseIndex).ToList();
        var weights = models.Select(i => input.PerModel[i].Number("weight")).ToList();
        if (Fused && models.Count > 0 && TryMergeFused(input, b, models, weights, rescale, mode) is { } fused) return fused.MoveToOuterDisposeScope();
        var deltas = new torch.Tensor[models.Count];
        try
        {
            // Each model's task vector is sparsified on its own (no shared state; libtorch's selection and sorts run on
            // one core), so big tensors sparsify two models at a time; the combination below adds them in recipe order
            // whatever order they finished in, so the output is the same.
            void SparsifyModel(int j)
            {
                using var _ = torch.no_grad();   // grad mode belongs to a thread
                using var own = torch.NewDisposeScope();
                int i = models[j];
                var delta = input.Tensors[i] - b;
                deltas[j] = SparsifyOne(delta, input.PerModel[i], input, i, rescale, mode).DetachFromDisposeScope();
            }
            EachModel(models.Count, Sparsify != SparsifyKind.None ? b.NumberOfElements : 0, SparsifyModel);   // nothing to sparsify: in turn
        }
        catch
        {
            foreach (var d in deltas) d?.Dispose();
            throw;
        }
        foreach (var d in deltas) scope.Attach(d);
        if (deltas.Length == 0) return b.clone().MoveToOuterDisposeScope();
        var mixed = Combine(deltas, weights, signature.SignConsensus, input.Global.Bool("normalize"));
        double lambda = input.Global.Number("lambda");
        if (lambda != 1) mixed.mul_(lambda);
        return (b + mixed).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The merge by the fused kernel (FusedTaskVectors), or null when it does not cover this tensor (not float32 CPU,
    /// the L1 rescale of a magnitude trim, a NaN magnitude or output): then the tensor path below runs. Magnitude trims
    /// are cuts found by selection (TrimTerm, the models side by side); seeded DARE and (up to 2-D, not inverse-density)
    /// DELLA masks are drawn as bits a window at a time (MaskWindows); other random masks (injected ones, DELLA
    /// otherwise) are drawn and applied by the tensor path and handed to the kernel as they are.
    /// </summary>
    private unsafe torch.Tensor? TryMergeFused(TensorMergeInput input, torch.Tensor b, List<int> models, List<double> weights, bool rescale, RescaleMode mode)
    {
        if (!Float32Memory.IsFlat(b) || b.NumberOfElements == 0 || models.Any(i => !Float32Memory.IsFlat(input.Tensors[i]) || !input.Tensors[i].shape.SequenceEqual(b.shape))) return null;
        if (rescale && mode == RescaleMode.L1 && Sparsify is SparsifyKind.Magnitude or SparsifyKind.MagnitudeOutliers) return null;
        if (Sparsify == SparsifyKind.Magnitude && ModelThresholds is null && TaskVectorSignature.WholeModelTopK(input.Global)) return null;   // the tensor path says why
        long n = b.NumberOfElements;
        long rows = L1Norms.RowsOf(b.shape), width = n / rows;   // the rows of DELLA's ranks, of the L1 sums and of the mask windows
        float* bp = Float32Memory.Of(b);
        var terms = new FusedTerm[models.Count];
        var drawn = new List<int>();
        var masked = new List<MaskedModel>();
        if (Sparsify is SparsifyKind.Magnitude or SparsifyKind.MagnitudeOutliers)
        {
            // Each model's cuts are a pass or two over its x and b: the models side by side on a big tensor.
            int nan = 0;
            void Trim(int j)
            {
                if (TrimTerm(input, b, models[j], (float)weights[j], rescale) is { } term) terms[j] = term;
                else Interlocked.Exchange(ref nan, 1);
            }
            EachModel(models.Count, n, Trim);
            if (nan != 0) return null;   // NaN
        }
        else for (int j = 0; j < models.Count; j++)
        {
            int i = models[j];
            double density = input.PerModel[i].NumberOrNull("density") ?? 1.0;
            float* x = Float32Memory.Of(input.Tensors[i]);
            float weight = (float)weights[j];
            switch (Sparsify)
            {
                case SparsifyKind.Random when density < 1 && ReferenceEquals(_masks, SeededMaskProvider.Instance):
                    // DARE: torch.bernoulli's draws of the seeded provider, as bits; ÷ p.clamp_min(1e-12) for inverse density
                    terms[j] = new FusedTerm
                    {
                        Model = (nint)x, Weight = weight,
                        DivideBy = rescale && mode == RescaleMode.InverseDensity ? MathF.Max((float)density, (float)1e-12) : null,
                    };
                    masked.Add(new MaskedModel(j, x, SeededMaskProvider.SeedFor(input, i), (float)density, della: null));
                    break;
                case SparsifyKind.DellaMagprune when density < 1 && ReferenceEquals(_masks, SeededMaskProvider.Instance) && b.dim() <= 2
                                                     && width <= int.MaxValue   // RowRanks' rows: int widths
                                                     && !(rescale && mode == RescaleMode.InverseDensity):
                    terms[j] = new FusedTerm { Model = (nint)x, Weight = weight };
                    masked.Add(new MaskedModel(j, x, SeededMaskProvider.SeedFor(input, i), (float)density, DellaMap(width, density, input.PerModel[i].Number("epsilon"))));
                    break;
                case SparsifyKind.Random or SparsifyKind.DellaMagprune when density < 1:
                    drawn.Add(j);   // drawn below by the tensor path
                    break;
                default:
                    terms[j] = new FusedTerm { Model = (nint)x, Weight = weight };
                    break;
            }
        }
        using var scope = torch.NewDisposeScope();
        var given = new torch.Tensor[drawn.Count];
        void Draw(int d)
        {
            using var _ = torch.no_grad();
            using var own = torch.NewDisposeScope();
            int i = models[drawn[d]];
            var delta = input.Tensors[i] - b;
            given[d] = SparsifyOne(delta, input.PerModel[i], input, i, rescale, mode).contiguous().DetachFromDisposeScope();
        }
        try
        {
            EachModel(drawn.Count, n, Draw);
        }
        finally
        {
            foreach (var t in given) if (t is not null) scope.Attach(t);
        }
        for (int d = 0; d < drawn.Count; d++)
        {
            if (!Float32Memory.IsFlat(given[d])) return null;
            terms[drawn[d]] = new FusedTerm { Given = (nint)Float32Memory.Of(given[d]), Weight = (float)weights[drawn[d]] };
        }

        var output = input.OutputBuffers?.Uninitialized(b) ?? torch.empty_like(b);
        bool normalize = input.Global.Bool("normalize");
        float* op = Float32Memory.Of(output);
        OutputSeen CombineWindow(long at, long count, FusedTerm[] window) =>
            FusedTaskVectors.Combine(bp + at, op + at, count, window, signature.SignConsensus, normalize, weights.Sum(), input.Global.Number("lambda"));
        OutputSeen? seen = masked.Count == 0
            ? CombineWindow(0, n, terms)
            : MaskWindows(bp, rows, width, terms, masked, rescale && mode == RescaleMode.L1, input.Scratch, CombineWindow, input.Note);
        if (seen == OutputSeen.Finite) input.OutputBuffers?.VouchFinite(output);   // the executor need not scan it for NaN/inf again
        if (seen is { } s && (s & OutputSeen.Nan) != OutputSeen.Nan) return output.MoveToOuterDisposeScope();
        Float32Memory.Abandon(output, input.OutputBuffers);   // NaN (in a magnitude or the output): the tensor path decides those bytes
        return null;
    }

    /// <summary>
    /// The mask memory of a fused DARE/DELLA merge: at most this many bytes of keep-masks at once (a bit per entry per
    /// model, KeepBits), so it does not grow past this with the number of models or the tensor's size. A tensor whose
    /// masks would take more is drawn and combined a window of rows at a time (<see cref="MaskWindows"/>); settable so
    /// tests can use windows on small tensors.
    /// </summary>
    public long MaskBudgetBytes { get; init; } = DefaultMaskBudgetBytes;

    /// <summary>
    /// The budget unless a test sets another: a sixteenth of the memory this process may use (the GC's view, which is
    /// the container's limit where there is one, else the machine's memory), within <see cref="MinMaskBudgetBytes"/> …
    /// <see cref="MaxMaskBudgetBytes"/>. The bytes merged are the same under any budget; a smaller one only costs time,
    /// and only for tensors over it.
    /// </summary>
    public static long DefaultMaskBudgetBytes { get; } = MaskBudgetFor(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);

    /// <summary>
    /// 256 MB, 2^31 mask bits: one model's mask of a 2^31-entry tensor, or eight models' of a 2^28-entry one (the MLP
    /// matrices of a Llama-2 70B, 8 192 × 28 672, have 2.3 × 10^8 entries).
    /// </summary>
    public const long MinMaskBudgetBytes = 256L << 20;

    /// <summary>
    /// 2 GB, 2^34 mask bits: three models' masks of a Llama-3 70B's embedding (128 256 × 8 192, 1.05 × 10^9 entries)
    /// take 394 MB, eight models' 1.05 GB.
    /// </summary>
    public const long MaxMaskBudgetBytes = 2L << 30;

    /// <summary>The default budget for a process that may use <paramref name="availableBytes"/> of memory.</summary>
    internal static long MaskBudgetFor(long availableBytes) => Math.Clamp(availableBytes / 16, MinMaskBudgetBytes, MaxMaskBudgetBytes);

    /// <summary>One model whose keep-mask the fused merge draws as bits: DARE's (<see cref="Della"/> null) or DELLA's.</summary>
    private sealed unsafe class MaskedModel(int term, float* x, long seed, float density, RankMap? della)
    {
        public int Term { get; } = term;
        public float* X { get; } = x;
        public long Seed { get; } = seed;
        public float Density { get; } = density;
        public RankMap? Della { get; } = della;
        public byte* Keep;                // the current window's bits
        public double[]? Before, After;   // each row's L1 sums of |δ| and of the kept |δ| (the L1 rescale)
    }

    /// <summary>
    /// DELLA's keep probability of a rank: p = (density − ε) + (2ε · rank) / (width − 1), as the tensor expression
    /// (Sparsifiers.DellaProbabilities) evaluates it; one column: density.
    /// </summary>
    private static RankMap DellaMap(long width, double density, double epsilon) =>
        width <= 1 ? new RankMap((float)density, 0, 1) : new RankMap((float)(density - epsilon), (float)(2 * epsilon), width - 1);

    /// <summary>
    /// Draws the masked models' keep-masks (DARE: the seeded provider's draws; DELLA: RowRanks.Keep, mostly without
    /// ranking) as bits and combines the tensor, a window of rows at a time: every model's bits of a window take at
    /// most <see cref="MaskBudgetBytes"/> (windows are whole multiples of eight rows, so each starts on a byte; at least
    /// eight rows). The L1 rescale's factor ‖δ‖₁/‖mask·δ‖₁ needs every row's sums before the first window is combined,
    /// so with more than one window each mask is drawn twice: once for the sums, once to combine (the same bits: the
    /// draws are seeded per chunk, RowRanks' ranks are per row). Both norms are summed as the tensor path sums them
    /// (L1Norms), so the factor is the same float. Null when a magnitude is NaN. More than one window is noted for the
    /// report (<paramref name="note"/>): the tensor cost time instead of memory.
    /// </summary>
    private unsafe OutputSeen? MaskWindows(float* b, long rows, long width, FusedTerm[] terms, List<MaskedModel> masked, bool l1,
        ScratchBuffers? pool, Func<long, long, FusedTerm[], OutputSeen> combine, Action<string>? note)
    {
        long windowRows = WindowRows(rows, width, masked.Count, MaskBudgetBytes);
        if (windowRows < rows)
            note?.Invoke($"{masked.Count} keep-masks of {rows * width:N0} entries are over the {MaskBudgetBytes:N0}-byte mask budget: drawn and merged "
                + $"{(rows + windowRows - 1) / windowRows} windows of {windowRows:N0} rows at a time{(l1 ? ", each mask drawn twice for the L1 rescale's norms" : "")}");
        using var buffers = new NativeBuffers(pool);
        foreach (var m in masked)
        {
            m.Keep = (byte*)buffers.Allocate(KeepBits.Bytes(windowRows * width));
            if (l1) (m.Before, m.After) = (new double[rows], new double[rows]);
        }
        nint ba = (nint)b;   // pointers cannot be captured by the lambdas below
        bool DrawWindow(long first, long end, bool sums)
        {
            var dellas = new List<RowRanks.KeepJob>();
            foreach (var m in masked)
            {
                if (m.Della is { } map)
                {
                    long seed = m.Seed;
                    dellas.Add(new RowRanks.KeepJob
                    {
                        X = m.X, B = (float*)ba, FirstRow = first, Rows = end - first, Width = (int)width, Map = map,
                        Uniforms = start => SeededMaskProvider.UniformsFrom(seed, start),   // drawn as torch.bernoulli(p) draws: u < p
                        Keep = m.Keep, Before = sums ? m.Before : null, After = sums ? m.After : null,
                    });
                    continue;
                }
                SeededMaskProvider.DrawKeepBits(m.Seed, m.Density, m.Keep, first * width, (end - first) * width);
                if (!sums) continue;
                nint xa = (nint)m.X, ka = (nint)m.Keep;
                L1Norms.PairRows(r => new L1Norms.Differences((float*)xa + r * width, (float*)ba + r * width), r => new L1Norms.BitMask((byte*)ka, (r - first) * width),
                    first, end, width, m.Before!, m.After!);
            }
            return dellas.Count == 0 || RowRanks.Keep(dellas);   // all DELLA models' rows at once; false: NaN
        }
        bool twice = l1 && windowRows < rows;
        if (twice)
            for (long first = 0; first < rows; first += windowRows)
                if (!DrawWindow(first, Math.Min(rows, first + windowRows), sums: true)) return null;
        var seen = OutputSeen.Finite;
        var factors = new float?[masked.Count];
        for (long first = 0; first < rows; first += windowRows)
        {
            long end = Math.Min(rows, first + windowRows);
            if (!DrawWindow(first, end, sums: l1 && !twice)) return null;
            if (first == 0 && l1)
                for (int k = 0; k < masked.Count; k++) factors[k] = L1Norms.Factor(L1Norms.Total(masked[k].Before!), L1Norms.Total(masked[k].After!));
            var window = terms.Select(t => t.Window(first * width)).ToArray();
            for (int k = 0; k < masked.Count; k++) window[masked[k].Term] = terms[masked[k].Term].Window(first * width, (nint)masked[k].Keep, factors[k]);
            seen |= combine(first * width, (end - first) * width, window);
        }
        return seen;
    }

    /// <summary>
    /// The rows of a mask window: all of them when every model's bits fit <paramref name="budget"/>, else the most
    /// whole multiples of eight rows that do (at least eight).
    /// </summary>
    internal static long WindowRows(long rows, long width, int models, long budget)
    {
        long fit = budget * 8 / Math.Max(1, models * width);
        return fit >= rows ? rows : Math.Min(rows, Math.Max(8, fit / 8 * 8));
    }

    /// <summary>A magnitude trim's term (TIES, Breadcrumbs) for model <paramref name="i"/>: its cuts found by selection; null when a magnitude is NaN.</summary>
    private unsafe FusedTerm? TrimTerm(TensorMergeInput input, torch.Tensor b, int i, float weight, bool rescale)
    {
        long n = b.NumberOfElements;
        float* bp = Float32Memory.Of(b);
        float* x = Float32Memory.Of(input.Tensors[i]);
        double density = input.PerModel[i].NumberOrNull("density") ?? 1.0;
        switch (Sparsify)
        {
            case SparsifyKind.Magnitude:
            {
                float? by = rescale && density < 1 ? (float)density : null;
                if (density >= 1) return new FusedTerm { Model = (nint)x, Weight = weight };
                if (ModelThresholds != null)
                    return new FusedTerm { Model = (nint)x, Weight = weight, DivideBy = by, AtLeast = (float)ModelThresholds[input.ModelIds[i]] };
                if (MagnitudeCuts.Find(x, bp, n, [(long)(density * n)]) is [var top])
                    return new FusedTerm { Model = (nint)x, Weight = weight, DivideBy = by, Upper = top, UpperEqualBefore = EqualBefore(x, bp, n, top) };
                return null;   // NaN
            }
            case SparsifyKind.MagnitudeOutliers:
            {
                float? by = rescale ? (float)density : null;
                if (density >= 1) return new FusedTerm { Model = (nint)x, Weight = weight, DivideBy = by };
                long nTop = (long)(input.PerModel[i].Number("gamma") * n);
                long nBot = n - (long)(density * n) - nTop;
                if (nBot < 0) { nTop += nBot; nBot = 0; }
                long keep = n - nBot - nTop;
                if (keep <= 0) return new FusedTerm { Model = (nint)x, Weight = weight, DivideBy = by, Upper = MagnitudeCut.None };
                if (MagnitudeCuts.Find(x, bp, n, [nTop + keep, nTop]) is not [var upper, var lower]) return null;   // NaN
                return new FusedTerm
                {
                    Model = (nint)x, Weight = weight, DivideBy = by, Upper = upper, Lower = lower,
                    UpperEqualBefore = EqualBefore(x, bp, n, upper), LowerEqualBefore = EqualBefore(x, bp, n, lower),
                };
            }
            default:
                throw new InvalidOperationException($"{Sparsify} is not a magnitude trim");
        }
    }

    private static unsafe long[]? EqualBefore(float* x, float* b, long n, MagnitudeCut cut) =>
        cut.Partial ? MagnitudeCuts.EqualBefore(x, b, n, cut) : null;

    /// <summary>
    /// Tensors at least this big sparsify their models in parallel (smaller ones are not worth a thread hop); settable
    /// so tests can compare the two paths.
    /// </summary>
    internal static long ParallelSparsifyElements { get; set; } = 1L << 18;

    /// <summary>
    /// Runs <paramref name="body"/> for models 0 … count−1 of a tensor of <paramref name="elements"/> elements: on the
    /// thread pool when there are several and the tensor is at least ParallelSparsifyElements, else in turn; the first
    /// failure is rethrown as itself.
    /// </summary>
    private static void EachModel(int count, long elements, Action<int> body)
    {
        if (count <= 1 || elements < ParallelSparsifyElements)
        {
            for (int j = 0; j < count; j++) body(j);
            return;
        }
        try
        {
            Parallel.For(0, count, body);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            throw;
        }
    }

    /// <summary>
    /// The sparsified (and rescaled) task vector of one model. <paramref name="delta"/> is this merge's own temporary:
    /// it is masked in place unless the L1 rescale still needs the unmasked values (the same operations in the same
    /// order as on a copy, so the same values, without a fresh tensor's page faults per step).
    /// </summary>
    private torch.Tensor SparsifyOne(torch.Tensor delta, ResolvedParameters pm, TensorMergeInput input, int modelIndex, bool rescale, RescaleMode mode)
    {
        double density = pm.NumberOrNull("density") ?? 1.0;
        bool needsOriginal = rescale && mode == RescaleMode.L1;
        switch (Sparsify)
        {
            case SparsifyKind.Magnitude:
                torch.Tensor kept;
                if (ModelThresholds != null)
                {
                    using var keep = (delta.abs() >= ModelThresholds[input.ModelIds[modelIndex]]).to_type(delta.dtype);
                    kept = needsOriginal ? delta * keep : delta.mul_(keep);
                }
                else if (TaskVectorSignature.WholeModelTopK(input.Global))
                    throw new InvalidOperationException($"{Name} with topk_scope: model needs the job's pre-pass (TopKPrepass)");
                else
                    kept = Sparsifiers.Magnitude(delta, density, inPlace: !needsOriginal);
                return rescale && density < 1 ? RescaleDeterministic(delta, kept, density, mode) : kept;
            case SparsifyKind.MagnitudeOutliers:
                var crumbs = Sparsifiers.MagnitudeOutliers(delta, density, pm.Number("gamma"), inPlace: !needsOriginal);
                return rescale ? RescaleDeterministic(delta, crumbs, density, mode) : crumbs;
            case SparsifyKind.Random:
            case SparsifyKind.DellaMagprune:
                if (density >= 1) return delta;   // nothing to drop (mergekit skips sparsification too)
                var p = Sparsify == SparsifyKind.Random
                    ? Sparsifiers.DareProbabilities(delta, density)
                    : Sparsifiers.DellaProbabilities(delta, density, pm.Number("epsilon"));
                var mask = _masks.KeepMask(p, input, modelIndex);
                return Sparsifiers.ApplyMask(delta, mask, p, rescale, mode, inPlace: !needsOriginal);
            default:
                return delta;
        }
    }

    /// <summary>Rescales <paramref name="kept"/> (a temporary of this merge: divided in place for inverse_density).</summary>
    private static torch.Tensor RescaleDeterministic(torch.Tensor delta, torch.Tensor kept, double density, RescaleMode mode) =>
        mode == RescaleMode.InverseDensity ? kept.div_(density) : Sparsifiers.MatchL1(delta, kept);

    /// <summary>
    /// The element-wise sum of <paramref name="terms"/>, added in order onto zeros: the same values, bit for bit, as
    /// summing their stack over its first dimension (the order the reduction adds them in), without the stacked copy of
    /// every term.
    /// </summary>
    private static torch.Tensor SumOf(IReadOnlyList<torch.Tensor> terms)
    {
        var sum = torch.zeros_like(terms[0]);
        foreach (var t in terms) sum.add_(t);
        return sum;
    }

    /// <summary>
    /// Weights, optionally elects signs, sums and normalizes (steps 3–6 of the pipeline). The deltas are this merge's
    /// temporaries and are overwritten (weighted, then masked by the election in place): each in-place step is the
    /// same operation, operands in the same order, as the copy it replaces, so the values are the same bit for bit.
    /// </summary>
    public static torch.Tensor Combine(IReadOnlyList<torch.Tensor> deltas, IReadOnlyList<double> weights, bool signConsensus, bool normalize)
    {
        using var scope = torch.NewDisposeScope();
        var weighted = deltas.Select((d, i) => d.mul_(weights[i])).ToList();
        torch.Tensor mixed;
        if (signConsensus)
        {
            var sum = SumOf(weighted);
            var elected = torch.where(sum >= 0, 1.0, -1.0).to_type(sum.dtype);
            sum.zero_();   // from here on the sum of the agreeing terms
            mixed = sum;
            var divisor = normalize ? torch.zeros_like(mixed) : null;
            for (int i = 0; i < weighted.Count; i++)
            {
                using var agree = weighted[i].sign().eq_(elected);   // 1 where the term's sign is the elected one, else 0
                mixed.add_(weighted[i].mul_(agree));
                divisor?.add_(agree.mul_(weights[i]));
            }
            if (divisor is not null)
            {
                using (var none = divisor.eq(0))
                using (Scalar one = 1.0)   // held until the call returns (Sparsifiers.TopRanks says why)
                    divisor.masked_fill_(none, one);
                mixed.div_(divisor);
            }
        }
        else
        {
            mixed = SumOf(weighted);
            double total = weights.Sum();
            if (normalize)
            {
                // by a filled tensor, not a scalar: a scalar divisor may take another kernel (a different rounding)
                using var divisor = torch.full_like(mixed, Math.Abs(total) < 1e-8 ? 1.0 : total);
                mixed.div_(divisor);
            }
        }
        return mixed.MoveToOuterDisposeScope();
    }
}
