// torch.bernoulli(p, generator) for float32 keep-probabilities on the CPU, drawn in C#: the same 0/1 values from the
// same seed, without libtorch's per-element serial kernel (a generator lock, a function call and a 32-bit draw per
// element: a third of a dare_ties merge's profile, bench/README.md). What libtorch does, and so what this repeats
// (PyTorch sources, public on GitHub):
//   - torch.Generator(seed) on the CPU is an MT19937 engine seeded with the low 32 bits of the seed
//     (aten/src/ATen/core/MT19937RNGEngine.h: init_with_uint32; CPUGeneratorImpl::random returns the next output);
//   - the tensor-probability Bernoulli kernel visits the elements in order and, for a float32 p, draws one 32-bit
//     number per element: u = (r & (2^24 − 1)) · 2^−24 in double, and the element is 1 when u < p
//     (aten/src/ATen/native/cpu/DistributionTemplates.h: bernoulli_kernel; aten/src/ATen/core/TransformationHelper.h:
//     uniform_real, bernoulli).
// TorchBernoulliTests compares it with torch.bernoulli itself on many seeds and probabilities, so a libtorch that
// draws differently fails the suite instead of changing masks silently.
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.CompilerServices;

namespace CloudSoup.Engine.Merging;

/// <summary>Uniforms read in order from wherever the reader was opened.</summary>
internal unsafe interface IUniformReader
{
    void Read(float* into, int count);
}

internal static unsafe class TorchBernoulli
{
    /// <summary>
    /// Writes into <paramref name="mask"/>[0 … length) the draws of torch.bernoulli over the probabilities
    /// <paramref name="p"/>[0 … length) from a fresh generator seeded with <paramref name="seed"/>: 1 where kept, else 0
    /// (a mask tensor's values).
    /// </summary>
    public static void Draw(ulong seed, float* p, float* mask, long length)
    {
        var engine = new Mt19937(seed);
        int* keep = stackalloc int[Mt19937.N];
        for (long e = 0; e < length; e += Mt19937.N)
        {
            int count = (int)Math.Min(Mt19937.N, length - e);
            engine.NextKeeps(p + e, 0, count, keep);
            Store(keep, mask + e, count);
        }
    }

    /// <summary>The 0/1 draws as floats, a vector at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Store(int* keep, float* into, int count)
    {
        int v = Vector<int>.Count, j = 0;
        for (; j + v <= count; j += v) Vector.ConvertToSingle(Vector.Load(keep + j)).Store(into + j);
        for (; j < count; j++) into[j] = keep[j];
    }

    /// <summary>
    /// The draws of torch.bernoulli for <paramref name="constant"/> everywhere, as bits (KeepBits), with the first
    /// <paramref name="skip"/> elements passed over: bits[0 … length) get the draws of elements skip … skip + length of
    /// the whole draw (a window of DARE's mask, TaskArithmeticFamily.MaskWindows). skip is a multiple of 8, so every
    /// state's draws (624 of them) start on a byte.
    /// </summary>
    public static void DrawBits(ulong seed, float constant, byte* bits, long length, long skip)
    {
        if (skip % 8 != 0) throw new ArgumentException($"a bit mask's draws start on a byte, not at element {skip}", nameof(skip));
        var engine = new Mt19937(seed);
        for (; skip >= Mt19937.N; skip -= Mt19937.N) engine.Skip();
        int* keep = stackalloc int[Mt19937.N];
        int offset = (int)skip;   // where the first state's draws start to count
        for (long e = 0; e < length; offset = 0)
        {
            int count = (int)Math.Min(Mt19937.N - offset, length - e);
            engine.NextKeeps(null, constant, offset + count, keep);
            KeepBits.FromInts(keep + offset, count, bits + (e >> 3));
            e += count;
        }
    }

    /// <summary>
    /// The uniforms of a draw made in chunks (SeededMaskProvider: chunk c, elements [c·chunk, (c+1)·chunk), drawn as
    /// <see cref="Draw"/> draws from its own seed) read from element <paramref name="start"/> on, in order: each chunk's
    /// engine is run from its seed, states before the start are only twisted (no uniforms made of them), and each state's
    /// uniforms are made once and handed out as they are read. Reading [s, e) gives the uniforms a reader opened at 0 reads
    /// there, without the whole draw in memory (RowRanks.Keep reads a row's uniforms where it ranks the row).
    /// </summary>
    public sealed class UniformReader : IUniformReader
    {
        private readonly Func<long, ulong> _chunkSeed;
        private readonly long _chunk;
        private readonly float[] _block = new float[Mt19937.N];   // the uniforms of the engine's current state
        private Mt19937 _engine;
        private long _next;        // the element the next read starts at
        private int _used, _length;   // of _block: how many were handed out, how many belong to the chunk

        public UniformReader(Func<long, ulong> chunkSeed, long chunkElements, long start)
        {
            _chunkSeed = chunkSeed;
            _chunk = chunkElements;
            long inChunk = start % chunkElements, inState = inChunk % Mt19937.N;
            _next = start - inState;   // where the state holding the start begins
            if (inChunk != inState)   // not the chunk's first state: run the chunk's engine up to it
            {
                _engine = new Mt19937(chunkSeed(start / chunkElements));
                for (long skipped = 0; skipped < inChunk - inState; skipped += Mt19937.N) _engine.Skip();
            }
            NextState();
            _used = (int)inState;
            _next = start;
        }

        /// <summary>The next <paramref name="count"/> uniforms, into <paramref name="into"/>.</summary>
        public void Read(float* into, int count)
        {
            while (count > 0)
            {
                if (_used == _length) NextState();
                int take = Math.Min(count, _length - _used);
                new ReadOnlySpan<float>(_block, _used, take).CopyTo(new Span<float>(into, take));
                into += take;
                count -= take;
                _used += take;
                _next += take;
            }
        }

        /// <summary>The uniforms of the state that starts at element _next (a chunk's first state from a new engine).</summary>
        private void NextState()
        {
            long inChunk = _next % _chunk;
            if (inChunk == 0) _engine = new Mt19937(_chunkSeed(_next / _chunk));
            _length = (int)Math.Min(Mt19937.N, _chunk - inChunk);
            fixed (float* block = _block) _engine.NextUniforms(_length, block);
            _used = 0;
        }
    }

    /// <summary>
    /// The 32-bit MT19937 engine as libtorch's CPU generator runs it (seeded with the seed's low 32 bits), producing its
    /// outputs a state (624 words) at a time with vector instructions: the same numbers in the same order.
    /// </summary>
    private struct Mt19937
    {
        public const int N = 624;
        private const int M = 397;
        private const uint MatrixA = 0x9908b0df, UpperMask = 0x80000000, LowerMask = 0x7fffffff;
        private fixed uint _state[N];

        public Mt19937(ulong seed)
        {
            _state[0] = (uint)seed;
            for (uint j = 1; j < N; j++) _state[j] = 1812433253u * (_state[j - 1] ^ (_state[j - 1] >> 30)) + j;
        }

        /// <summary>
        /// Draws the next <paramref name="count"/> (≤ 624) numbers — one twist of the state, then its words tempered in
        /// order, the rest of the state unused as torch never draws past a tensor's end — and writes 1 where the uniform
        /// u = (r &amp; (2^24 − 1))·2^−24 is below the probability (<paramref name="p"/>[j], or <paramref name="constant"/>
        /// when <paramref name="p"/> is null), else 0. u is a multiple of 2^−24 below 1, exact in float32, so comparing in
        /// float32 is comparing in double.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void NextKeeps(float* p, float constant, int count, int* keep)
        {
            fixed (uint* s = _state)
            {
                Twist(s);
                int v = Vector<uint>.Count, j = 0;
                var probability = new Vector<float>(constant);
                for (; j + v <= count; j += v)
                {
                    var kept = Vector.LessThan(Uniform(Vector.Load(s + j)), p == null ? probability : Vector.Load(p + j));
                    (kept & Vector<int>.One).Store(keep + j);
                }
                for (; j < count; j++) keep[j] = Uniform(s[j]) < (p == null ? constant : p[j]) ? 1 : 0;
            }
        }

        /// <summary>The next <paramref name="count"/> (≤ 624) uniforms u, as NextKeeps draws them.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void NextUniforms(int count, float* u)
        {
            fixed (uint* s = _state)
            {
                Twist(s);
                int v = Vector<uint>.Count, j = 0;
                if (Vector512.IsHardwareAccelerated)
                    for (; j + 16 <= count; j += 16) Uniform(Vector512.Load(s + j)).Store(u + j);
                for (; j + v <= count; j += v) Uniform(Vector.Load(s + j)).Store(u + j);
                for (; j < count; j++) u[j] = Uniform(s[j]);
            }
        }

        /// <summary>Passes over the next 624 numbers (one twist of the state) without making anything of them.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Skip()
        {
            fixed (uint* s = _state) Twist(s);
        }

        /// <summary>A state word tempered into MT19937's output r, then u = (r &amp; (2^24 − 1))·2^−24.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector<float> Uniform(Vector<uint> y)
        {
            y ^= Vector.ShiftRightLogical(y, 11);
            y ^= Vector.ShiftLeft(y, 7) & new Vector<uint>(0x9d2c5680u);
            y ^= Vector.ShiftLeft(y, 15) & new Vector<uint>(0xefc60000u);
            y ^= Vector.ShiftRightLogical(y, 18);
            return Vector.ConvertToSingle(Vector.AsVectorInt32(y & new Vector<uint>(0xFFFFFF))) * new Vector<float>(1f / (1 << 24));
        }

        /// <summary>The same, sixteen words at a time.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<float> Uniform(Vector512<uint> y)
        {
            y ^= Vector512.ShiftRightLogical(y, 11);
            y ^= Vector512.ShiftLeft(y, 7) & Vector512.Create(0x9d2c5680u);
            y ^= Vector512.ShiftLeft(y, 15) & Vector512.Create(0xefc60000u);
            y ^= Vector512.ShiftRightLogical(y, 18);
            return Vector512.ConvertToSingle((y & Vector512.Create(0xFFFFFFu)).AsInt32()) * Vector512.Create(1f / (1 << 24));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static float Uniform(uint y)
        {
            y ^= y >> 11;
            y ^= (y << 7) & 0x9d2c5680u;
            y ^= (y << 15) & 0xefc60000u;
            y ^= y >> 18;
            return (y & 0xFFFFFF) * (1f / (1 << 24));
        }

        /// <summary>MT19937's state transition; lanes of a vector never read a word another lane of it writes.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private static void Twist(uint* s)
        {
            int v = Vector<uint>.Count, k = 0;
            bool wide = Vector512.IsHardwareAccelerated;   // sixteen words at a time first where AVX-512 runs at full speed
            if (wide)
                for (; k + 16 <= N - M; k += 16) (Vector512.Load(s + k + M) ^ Mix(Vector512.Load(s + k), Vector512.Load(s + k + 1))).Store(s + k);
            for (; k + v <= N - M; k += v) (Vector.Load(s + k + M) ^ Mix(Vector.Load(s + k), Vector.Load(s + k + 1))).Store(s + k);
            for (; k < N - M; k++) s[k] = s[k + M] ^ Mix(s[k], s[k + 1]);
            if (wide)
                for (; k + 16 <= N - 1; k += 16) (Vector512.Load(s + k + M - N) ^ Mix(Vector512.Load(s + k), Vector512.Load(s + k + 1))).Store(s + k);
            for (; k + v <= N - 1; k += v) (Vector.Load(s + k + M - N) ^ Mix(Vector.Load(s + k), Vector.Load(s + k + 1))).Store(s + k);
            for (; k < N - 1; k++) s[k] = s[k + M - N] ^ Mix(s[k], s[k + 1]);
            s[N - 1] = s[M - 1] ^ Mix(s[N - 1], s[0]);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static uint Mix(uint u, uint v) => (((u & UpperMask) | (v & LowerMask)) >> 1) ^ (MatrixA & (0u - (v & 1)));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector512<uint> Mix(Vector512<uint> u, Vector512<uint> v) =>
            Vector512.ShiftRightLogical((u & Vector512.Create(UpperMask)) | (v & Vector512.Create(LowerMask)), 1)
            ^ (Vector512.Create(MatrixA) & (Vector512<uint>.Zero - (v & Vector512<uint>.One)));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector<uint> Mix(Vector<uint> u, Vector<uint> v) =>
            Vector.ShiftRightLogical((u & new Vector<uint>(UpperMask)) | (v & new Vector<uint>(LowerMask)), 1)
            ^ (new Vector<uint>(MatrixA) & (Vector<uint>.Zero - (v & Vector<uint>.One)));
    }
}
