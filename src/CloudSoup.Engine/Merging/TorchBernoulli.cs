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
using System.Runtime.CompilerServices;

namespace CloudSoup.Engine.Merging;

internal static unsafe class TorchBernoulli
{
    private const double Divisor = 1.0 / (1 << 24);

    /// <summary>
    /// Writes into <paramref name="mask"/>[0 … length) the draws of torch.bernoulli over <paramref name="p"/>[0 … length)
    /// from a fresh generator seeded with <paramref name="seed"/>: 1 where kept, else 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Draw(ulong seed, float* p, float* mask, long length)
    {
        var engine = new Mt19937(seed);
        for (long e = 0; e < length; e++)
        {
            bool keep = (engine.Next() & 0xFFFFFF) * Divisor < p[e];
            mask[e] = Unsafe.As<bool, byte>(ref keep);   // branch-free: the draws go either way at random
        }
    }

    /// <summary>The same draws for a probability that is <paramref name="p"/> everywhere, as bytes (1 kept, 0 dropped).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Draw(ulong seed, float p, byte* mask, long length)
    {
        var engine = new Mt19937(seed);
        for (long e = 0; e < length; e++)
        {
            bool keep = (engine.Next() & 0xFFFFFF) * Divisor < p;
            mask[e] = Unsafe.As<bool, byte>(ref keep);
        }
    }

    /// <summary>The 32-bit MT19937 engine as libtorch's CPU generator runs it (seeded with the seed's low 32 bits).</summary>
    private struct Mt19937
    {
        private const int N = 624, M = 397;
        private const uint MatrixA = 0x9908b0df, UpperMask = 0x80000000, LowerMask = 0x7fffffff;
        private fixed uint _state[N];
        private int _next;

        public Mt19937(ulong seed)
        {
            _state[0] = (uint)seed;
            for (uint j = 1; j < N; j++) _state[j] = 1812433253u * (_state[j - 1] ^ (_state[j - 1] >> 30)) + j;
            _next = N;   // the first draw twists the seeded state
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public uint Next()
        {
            if (_next == N) Twist();
            uint y = _state[_next++];
            y ^= y >> 11;
            y ^= (y << 7) & 0x9d2c5680u;
            y ^= (y << 15) & 0xefc60000u;
            y ^= y >> 18;
            return y;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static uint Mix(uint u, uint v) => (((u & UpperMask) | (v & LowerMask)) >> 1) ^ (MatrixA & (0u - (v & 1)));

        [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
        private void Twist()
        {
            fixed (uint* s = _state)
            {
                int k = 0;
                for (; k < N - M; k++) s[k] = s[k + M] ^ Mix(s[k], s[k + 1]);
                for (; k < N - 1; k++) s[k] = s[k + M - N] ^ Mix(s[k], s[k + 1]);
                s[N - 1] = s[M - 1] ^ Mix(s[N - 1], s[0]);
            }
            _next = 0;
        }
    }
}
