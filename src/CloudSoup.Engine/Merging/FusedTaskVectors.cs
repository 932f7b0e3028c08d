// The generalized task-arithmetic pipeline (TaskArithmeticFamily) for float32 CPU tensors in one pass over the
// inputs instead of a dozen tensor operations per model: each model's task vector is computed, trimmed, weighted,
// elected and summed a vector at a time (MixDirect; a step of a few thousand elements through a scratch where a
// partial cut must count equal keys in order), from the (memory-mapped) inputs into the output, with no full-size
// temporary. Every step is the float32 operation the tensor path applies, with the operands in the same
// order (δ = x − b; δ·1 or δ·0 for the mask; ÷ density; · w; sums started at +0 and added in model order; the TIES
// election and divisor as in TaskArithmeticFamily.Combine; · λ; b + mixed), so the output is the same bit for bit
// (FusedTaskVectorTests compares the two paths). Magnitude trimming uses MagnitudeCuts (selection, not a sort); DARE
// and DELLA masks come drawn as bits, a window of the tensor at a time, their L1 factor as a number
// (TaskArithmeticFamily.MaskWindows).
// What the caller does not hand over (other dtypes or devices, the L1 rescale of TIES/Breadcrumbs, inverse-density
// DELLA, DELLA over more than two dimensions, injected masks, NaN) takes the tensor path instead.
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace CloudSoup.Engine.Merging;

/// <summary>One model's term of the fused merge: where its values come from and how they are trimmed and weighted.</summary>
internal sealed unsafe class FusedTerm
{
    /// <summary>The model's input (δ = x − b is computed on the fly); 0 when <see cref="Given"/> is set.</summary>
    public nint Model { get; init; }

    /// <summary>A sparsified task vector computed by the tensor path (random masks, DELLA); used as it is.</summary>
    public nint Given { get; init; }

    /// <summary>Kept: the entries inside <see cref="Upper"/> and outside <see cref="Lower"/> (ranks [lower, upper)).</summary>
    public MagnitudeCut Upper { get; init; } = MagnitudeCut.All;
    public MagnitudeCut Lower { get; init; } = MagnitudeCut.None;

    /// <summary>Entries equal to a partial cut's key before each block (MagnitudeCuts.EqualBefore).</summary>
    public long[]? UpperEqualBefore { get; init; }
    public long[]? LowerEqualBefore { get; init; }

    /// <summary>Kept: where these n bits are 1 (a DARE or DELLA keep-mask drawn beforehand, KeepBits), instead of cuts.</summary>
    public nint KeepMask { get; init; }

    /// <summary>The kept entries are multiplied by this (the L1 rescale's factor, found beforehand).</summary>
    public float? MultiplyBy { get; init; }

    /// <summary>Kept: |δ| ≥ this (whole-model top-k thresholds), instead of cuts.</summary>
    public float? AtLeast { get; init; }

    /// <summary>The kept entries are divided by this (inverse-density rescaling).</summary>
    public float? DivideBy { get; init; }

    public float Weight { get; init; }

    /// <summary>
    /// This term over a window of the tensor that starts at element <paramref name="at"/>, for
    /// <see cref="FusedTaskVectors.Combine"/> over the window: its inputs from there on, and the window's own mask bytes
    /// and rescale factor when given. A partial cut counts equal keys from the tensor's start, so it has no window.
    /// </summary>
    internal FusedTerm Window(long at, nint keepMask = 0, float? multiplyBy = null)
    {
        if (Upper.Partial || Lower.Partial || (KeepMask != 0 && keepMask == 0))
            throw new InvalidOperationException("a partial cut or a whole-tensor mask has no window");
        nint offset = (nint)(at * sizeof(float));
        return new FusedTerm
        {
            Model = Model == 0 ? 0 : Model + offset, Given = Given == 0 ? 0 : Given + offset,
            Upper = Upper, Lower = Lower, KeepMask = keepMask, MultiplyBy = multiplyBy ?? MultiplyBy,
            AtLeast = AtLeast, DivideBy = DivideBy, Weight = Weight,
        };
    }
}

internal static unsafe class FusedTaskVectors
{
    private const int Step = 4096;   // elements per inner step: every model's weighted term of a step stays in cache
    private static readonly int Stride = Step + Vector<float>.Count;   // a term's scratch: a step and a vector of padding

    /// <summary>
    /// Writes b + λ·combine(terms) into <paramref name="output"/> (n elements), and says what it saw there. With a NaN
    /// output the caller takes the tensor path, whose NaN payloads are its own to define.
    /// </summary>
    public static OutputSeen Combine(float* b, float* output, long n, FusedTerm[] terms, bool signConsensus, bool normalize, double total, double lambda)
    {
        int v = Vector<float>.Count;
        nint ba = (nint)b, oa = (nint)output;   // pointers cannot be captured by the lambda below
        long blocks = (n + MagnitudeCuts.Block - 1) / MagnitudeCuts.Block;
        float divisor = Math.Abs(total) < 1e-8 ? 1f : (float)total;
        float lambdaF = (float)lambda;
        int seen = 0;
        // Per thread: every term's weighted values of one step (native memory: no pinning in the inner loops).
        nuint scratchBytes = (nuint)(terms.Length * Stride * sizeof(float));
        Parallel.For(0L, blocks, () => (nint)NativeMemory.AlignedAlloc(scratchBytes, 64), (block, _, scratch) =>
        {
            Interlocked.Or(ref seen, (int)CombineBlock((float*)ba, (float*)oa, n, block, terms, (float*)scratch, signConsensus, normalize, divisor, lambdaF));
            return scratch;
        }, scratch => NativeMemory.AlignedFree((void*)scratch));
        return (OutputSeen)seen;
    }

    // The loops below are hot from their first call: compiled fully optimized at once (tier-0 code with vectors and
    // pointers is many times slower, and its on-stack replacement showed as a third of a merge's profile).

    /// <summary>One block of MagnitudeCuts.Block elements, step by step; what it saw in the output.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static OutputSeen CombineBlock(float* b, float* output, long n, long block, FusedTerm[] terms, float* scratch, bool signConsensus, bool normalize, float divisor, float lambda)
    {
        long start = block * MagnitudeCuts.Block, end = Math.Min(n, start + MagnitudeCuts.Block);
        var upperSeen = new long[terms.Length];
        var lowerSeen = new long[terms.Length];
        for (int k = 0; k < terms.Length; k++)
        {
            upperSeen[k] = terms[k].UpperEqualBefore?[block] ?? 0;
            lowerSeen[k] = terms[k].LowerEqualBefore?[block] ?? 0;
        }
        var seen = OutputSeen.Finite;
        bool direct = terms.All(VectorTerm);
        for (long s = start; s < end; s += Step)
        {
            int count = (int)Math.Min(Step, end - s);
            if (direct && count % Vector<float>.Count == 0)
            {
                seen |= MixDirect(b + s, output + s, s, count, terms, signConsensus, normalize, divisor, lambda);
                continue;
            }
            for (int k = 0; k < terms.Length; k++)
                WeightedTerm(terms[k], b + s, s, count, scratch + k * Stride, ref upperSeen[k], ref lowerSeen[k]);
            seen |= Mix(b + s, output + s, count, terms, scratch, signConsensus, normalize, divisor, lambda);
        }
        return seen;
    }

    /// <summary>The weighted term w·(trimmed δ [÷ density]) of <paramref name="count"/> elements from <paramref name="at"/>, into <paramref name="t"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightedTerm(FusedTerm term, float* b, long at, int count, float* t, ref long upperSeen, ref long lowerSeen)
    {
        int v = Vector<float>.Count;
        if (VectorTerm(term))
        {
            var plan = new TermPlan(term, at);
            for (int j = 0; j < count; j += v) TermVector(plan, b, j, Math.Min(v, count - j)).Store(t + j);   // lanes past count land in the scratch's padding
            return;
        }
        float* x = (float*)term.Model + at;
        if (term.KeepMask != 0)
        {
            // A bit mask without AVX2: the same steps element by element.
            for (int e = 0; e < count; e++)
            {
                float masked = (x[e] - b[e]) * KeepBits.At((byte*)term.KeepMask, at + e);
                if (term.MultiplyBy is { } times) masked *= times;
                if (term.DivideBy is { } by) masked /= by;
                t[e] = masked * term.Weight;
            }
            return;
        }
        // A partial cut: membership among equal keys depends on how many came before, so an entry whose key is the
        // cut's is taken element by element, in order; a vector at a time where no entry's key is a partial cut's
        // (nearly everywhere: the entries at the cut's key are a run of equal magnitudes).
        var weight = new Vector<float>(term.Weight);
        var magnitude = new Vector<int>(0x7FFFFFFF);
        var upperKey = new Vector<int>(term.Upper.Above);
        var lowerKey = new Vector<int>(term.Lower.Above);
        var upperEqual = term.Upper.Partial ? Vector<int>.AllBitsSet : Vector<int>.Zero;
        var lowerEqual = term.Lower.Partial ? Vector<int>.AllBitsSet : Vector<int>.Zero;
        int i = 0;
        for (; i + v <= count; i += v)
        {
            var d = Vector.Load(x + i) - Vector.Load(b + i);
            var key = Vector.AsVectorInt32(d) & magnitude;
            if (((Vector.Equals(key, upperKey) & upperEqual) | (Vector.Equals(key, lowerKey) & lowerEqual)) != Vector<int>.Zero)
            {
                for (int l = i; l < i + v; l++) t[l] = CutEntry(term, x[l] - b[l], ref upperSeen, ref lowerSeen);
                continue;
            }
            var keep = Vector.AndNot(Vector.GreaterThan(key, upperKey), Vector.GreaterThan(key, lowerKey));
            var s = Vector.ConditionalSelect(Vector.AsVectorSingle(keep), d, d * Vector<float>.Zero);
            if (term.MultiplyBy is { } times) s *= new Vector<float>(times);
            if (term.DivideBy is { } by) s /= new Vector<float>(by);
            (s * weight).Store(t + i);
        }
        for (; i < count; i++) t[i] = CutEntry(term, x[i] - b[i], ref upperSeen, ref lowerSeen);
    }

    /// <summary>Whether a term is worked a vector at a time throughout (no partial cut; a bit mask needs AVX2 and eight lanes, as KeepBits.Eight does).</summary>
    private static bool VectorTerm(FusedTerm term) => !term.Upper.Partial && !term.Lower.Partial && (term.KeepMask == 0 || Float32Memory.CanWidenBytes);

    /// <summary>A term's settings as plain fields for the inner loops, its pointers moved to the step at element <c>at</c>.</summary>
    private readonly struct TermPlan(FusedTerm term, long at)
    {
        public readonly float* Model = term.Model == 0 ? null : (float*)term.Model + at;
        public readonly float* Given = term.Given == 0 ? null : (float*)term.Given + at;
        public readonly byte* Keep = (byte*)term.KeepMask;   // bits, entry 0 at the tensor's (or window's) element 0
        public readonly long KeepAt = at;
        public readonly bool Cuts = term.Upper.Above != -1 || term.Lower.Above != int.MaxValue;
        public readonly int Upper = term.Upper.Above, Lower = term.Lower.Above;
        public readonly bool HasLeast = term.AtLeast.HasValue, HasTimes = term.MultiplyBy.HasValue, HasBy = term.DivideBy.HasValue;
        public readonly float Least = term.AtLeast ?? 0, Times = term.MultiplyBy ?? 1, By = term.DivideBy ?? 1, Weight = term.Weight;
    }

    /// <summary>
    /// The weighted term of a <see cref="VectorTerm"/> at elements j … j + lanes − 1 of its step (lanes past them: of
    /// zeros): δ·mask [· the L1 factor] for a bit mask (δ·1 or δ·0, as the tensor path multiplies by its 0/1 mask), the
    /// given values, or δ kept by |δ| ≥ the threshold or by the cuts (a dropped entry is δ·0), then [÷ density] · w.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<float> TermVector(in TermPlan p, float* b, int j, int lanes)
    {
        Vector<float> s;
        if (p.Keep != null)
        {
            s = (Load(p.Model + j, lanes) - Load(b + j, lanes)) * KeepBits.Eight(p.Keep, p.KeepAt + j).AsVector();
            if (p.HasTimes) s *= new Vector<float>(p.Times);
        }
        else if (p.Given != null) s = Load(p.Given + j, lanes);
        else
        {
            var d = Load(p.Model + j, lanes) - Load(b + j, lanes);
            if (p.HasLeast) s = Vector.ConditionalSelect(Vector.GreaterThanOrEqual(Vector.Abs(d), new Vector<float>(p.Least)), d, d * Vector<float>.Zero);
            else if (p.Cuts)
            {
                var key = Vector.AsVectorInt32(d) & new Vector<int>(0x7FFFFFFF);
                var keep = Vector.AndNot(Vector.GreaterThan(key, new Vector<int>(p.Upper)), Vector.GreaterThan(key, new Vector<int>(p.Lower)));
                s = Vector.ConditionalSelect(Vector.AsVectorSingle(keep), d, d * Vector<float>.Zero);
            }
            else s = d;
        }
        if (p.HasBy) s /= new Vector<float>(p.By);
        return s * new Vector<float>(p.Weight);
    }

    /// <summary>The weighted term of one entry δ of a term with cuts, counting the entries at a partial cut's key.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float CutEntry(FusedTerm term, float d, ref long upperSeen, ref long lowerSeen)
    {
        int key = MagnitudeCuts.Key(d);
        float s = In(term.Upper, key, ref upperSeen) && !In(term.Lower, key, ref lowerSeen) ? d : d * 0f;
        if (term.MultiplyBy is { } times) s *= times;
        if (term.DivideBy is { } by) s /= by;
        return s * term.Weight;
    }

    /// <summary>Whether an entry with <paramref name="key"/> is inside <paramref name="cut"/>, counting equal keys seen so far.</summary>
    private static bool In(MagnitudeCut cut, int key, ref long seen)
    {
        if (key != cut.Above || !cut.Partial) return key > cut.Above;
        return seen++ < cut.Quota;
    }

    /// <summary>Sums (optionally elects and normalizes) one step's weighted terms from the scratch, scales by λ and adds the base; what it saw in the output.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static OutputSeen Mix(float* b, float* output, int count, FusedTerm[] terms, float* scratch, bool signConsensus, bool normalize, float divisor, float lambda)
    {
        int v = Vector<float>.Count, n = terms.Length;
        Span<float> weights = stackalloc float[n];
        for (int k = 0; k < n; k++) weights[k] = terms[k].Weight;
        Span<Vector<float>> t = stackalloc Vector<float>[n];
        var seen = new Seen();
        for (int j = 0; j < count; j += v)
        {
            int lanes = Math.Min(v, count - j);
            var sum = Vector<float>.Zero;
            for (int k = 0; k < n; k++) sum += t[k] = Vector.Load(scratch + k * Stride + j);
            seen.Store(Load(b + j, lanes) + Elect(t, sum, weights, signConsensus, normalize, divisor, lambda), output + j, lanes);
        }
        return seen.Result;
    }

    /// <summary>
    /// WeightedTerm and <see cref="Mix"/> in one pass, for terms that are all <see cref="VectorTerm"/>s and a whole
    /// number of vectors: each vector's weighted terms stay in registers instead of going through the scratch (a
    /// third of the combine's time went to that traffic), with the same operations in the same order, so the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static OutputSeen MixDirect(float* b, float* output, long at, int count, FusedTerm[] terms, bool signConsensus, bool normalize, float divisor, float lambda)
    {
        int v = Vector<float>.Count, n = terms.Length;
        Span<TermPlan> plan = stackalloc TermPlan[n];
        Span<float> weights = stackalloc float[n];
        for (int k = 0; k < n; k++) (plan[k], weights[k]) = (new TermPlan(terms[k], at), terms[k].Weight);
        Span<Vector<float>> t = stackalloc Vector<float>[n];
        var seen = new Seen();
        for (int j = 0; j < count; j += v)
        {
            var sum = Vector<float>.Zero;
            for (int k = 0; k < n; k++) sum += t[k] = TermVector(plan[k], b, j, v);
            seen.Store(Vector.Load(b + j) + Elect(t, sum, weights, signConsensus, normalize, divisor, lambda), output + j, v);
        }
        return seen.Result;
    }

    /// <summary>
    /// The mixed value of one vector's weighted terms <paramref name="t"/> (their <paramref name="sum"/> added in model
    /// order from +0): with the sign consensus, the terms that agree with the elected sign, summed in model order
    /// (÷ their weights when normalizing); else the sum (÷ the divisor when normalizing); then · λ.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<float> Elect(ReadOnlySpan<Vector<float>> t, Vector<float> sum, ReadOnlySpan<float> weightOf, bool signConsensus, bool normalize, float divisor, float lambda)
    {
        var zero = Vector<float>.Zero;
        Vector<float> mixed;
        if (signConsensus)
        {
            var positive = Vector.GreaterThanOrEqual(sum, zero);   // NaN elects −1, as torch.where(sum >= 0, 1, −1)
            mixed = zero;
            var weights = zero;
            for (int k = 0; k < t.Length; k++)
            {
                // sign(t) equals the elected sign: t > 0 where +1 was elected, t < 0 where −1 (0 and NaN never agree)
                var agrees = Vector.ConditionalSelect(positive, Vector.GreaterThan(t[k], zero), Vector.LessThan(t[k], zero));
                var agree = Vector.ConditionalSelect(agrees, Vector<float>.One, zero);
                mixed += t[k] * agree;
                if (normalize) weights += agree * new Vector<float>(weightOf[k]);
            }
            if (normalize) mixed /= Vector.ConditionalSelect(Vector.Equals(weights, zero), Vector<float>.One, weights);
        }
        else
        {
            mixed = sum;
            if (normalize) mixed /= new Vector<float>(divisor);
        }
        return lambda != 1f ? mixed * new Vector<float>(lambda) : mixed;
    }

    /// <summary>Stores outputs and notes whether any was NaN or infinite (x − x is 0 for a finite x and NaN for ±inf and NaN).</summary>
    private struct Seen()
    {
        private Vector<int> _notNan = Vector<int>.AllBitsSet, _finite = Vector<int>.AllBitsSet;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(Vector<float> result, float* output, int lanes)
        {
            if (lanes == Vector<float>.Count)
            {
                result.Store(output);
                _notNan &= Vector.Equals(result, result);
                _finite &= Vector.Equals(result - result, Vector<float>.Zero);
                return;
            }
            for (int l = 0; l < lanes; l++)
            {
                output[l] = result[l];
                if (float.IsNaN(result[l])) _notNan = Vector<int>.Zero;
                if (!float.IsFinite(result[l])) _finite = Vector<int>.Zero;
            }
        }

        public readonly OutputSeen Result =>
            _notNan != Vector<int>.AllBitsSet ? OutputSeen.Nan : _finite != Vector<int>.AllBitsSet ? OutputSeen.NonFinite : OutputSeen.Finite;
    }

    /// <summary>Loads <paramref name="lanes"/> floats (fewer than a vector at a tensor's end: the rest are zeros).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<float> Load(float* p, int lanes) => lanes == Vector<float>.Count ? Vector.Load(p) : LoadTail(p, lanes);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Vector<float> LoadTail(float* p, int lanes)
    {
        Span<float> tail = stackalloc float[Vector<float>.Count];
        tail.Clear();
        new ReadOnlySpan<float>(p, lanes).CopyTo(tail);
        return new Vector<float>(tail);
    }
}
