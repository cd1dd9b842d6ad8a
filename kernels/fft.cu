// Batched complex FFT of power-of-two length (the transform of ops.Backend.FFT; the CPU reference
// in ops/fft.go is the specification): X_k = Σ_j x_j e^{−2πi jk/n}, complex values interleaved
// (re, im) as float2 / double2, signal b at offset b·n.
//
// Algorithm: Stockham autosort. A transform of length n = R_1·R_2·…·R_P runs as P passes over
// global memory; pass p (radix R = R_p, Ns = R_1⋯R_{p−1}) computes, for every column j ∈ [0, n/R)
// of every signal,
//
//   v_r   = in[j + r·n/R] · e^{−2πi r·(j mod Ns)/(Ns·R)},   r = 0..R−1
//   V     = DFT_R(v)
//   out[(j − j mod Ns)·R + (j mod Ns) + k·Ns] = V_k,         k = 0..R−1
//
// and the last pass leaves X in natural order. Each pass is one launch of fft_r<R>; n up to the
// tile (4096 values in float, 2048 in double) is a single pass with R = n. The launcher
// (ops/cuda/fft.go) picks the radices, ping-pongs between the data and a scratch buffer, and
// implements the inverse as conj(DFT(conj(X)))/n through the flags below, so every kernel computes
// the forward transform only.
//
// Inside a block. A block transforms a tile of C columns of length R, C·R = the tile (512 threads
// × 8 values in float, 256 × 8 in double; fewer for R < 8) — 32 KiB of data in either precision.
// Thread (c, t), t ∈ [0, R/E), E = min(R, 8), holds v[m] = element t + m·R/E of its column in
// registers. The DFT_R is itself a Stockham sequence of radix-8 stages and one final radix-2 or 4
// stage: each stage applies its twiddles, does its butterflies in registers (radix 8 as 2×4,
// radix 4, radix 2; constants exact or correctly rounded), and, except the last, exchanges the
// values through shared memory — real parts, then imaginary parts, so the exchange buffer holds
// one real per value (16 KiB). The positions a thread reads are t + m·R/E before every stage, so
// ownership never changes, and after the last stage v[m] is output k = t + m·R/E. Radix 8 rather
// than 16 per thread keeps a float block within 64 registers and a double block within 128 (no
// spills): two blocks share an SM, so one block's memory phase overlaps the other's arithmetic.
// Shared positions are XOR-swizzled (swizzle below) against bank conflicts.
//
// Memory access. Pass tiles come in two kinds: a contiguous run of C·R values (the input of a
// single pass, the output of a first pass), or C adjacent columns, element r at stride n/R (the
// input of the passes of a multi-pass plan, the output of all but its first). For the strided kind
// the block maps threads column-fastest and reads / writes runs of C adjacent values (the launcher
// keeps C·(8 or 16) ≥ 16 bytes); contiguous tiles are read or written directly when a column has
// ≥ 8 threads (runs of ≥ 8 values), and otherwise staged through the shared buffer in linear order
// so that a warp touches consecutive addresses. Every pass thus reads and writes each value once:
// 2·(8 or 16) bytes per complex value per pass.
//
// Twiddles. Within a block the stage twiddles e^{−2πi p/(Ns·Q)} (Ns·Q ≤ R) come from a table of
// the first quarter wave e^{−2πi k/N_tw}, k < N_tw/4, N_tw = the tile (4096 / 2048), computed in
// float64 on the host and rounded once (the launcher uploads it once per dtype, 8 KiB); the other
// quarters follow exactly by multiplying with (−i)^q. The pass twiddle e^{−2πi r·(j mod Ns)/(Ns·R)}
// between passes (Ns·R ≤ n ≤ 2^24) is sincospi of the exact fraction −2p/q (p < 2^24, q a power of
// two: exact in float). So every twiddle is within an ulp or so, and the error stays the usual
// ε·log₂n of an FFT.
//
// Kernels (T = float: _f32, T = double: _f64; every parameter is 8 bytes wide):
//
//   fft_r<R>_<T>(dst, src, tw, batch, n, ns, flags, scale, xout, nout, paths),
//     R = 2, 4, …, 4096 (float) / 2048
//     One pass of radix R over batch signals of length n (R divides n) with Ns = ns: src (T2*)
//     to dst (T2*), which may be src only when n == R (a single pass reads its whole tile before
//     writing it and tiles are disjoint). tw is the quarter-wave table (N_tw/4 T2 values).
//     flags bit 0 conjugates the input, bit 1 the output; every output is multiplied by scale
//     (1, or 1/n: exact; for fGn the noise scale, rounded to T). In float, with xout not null
//     the pass is the last of a multi-pass plan (ns > 1) and writes no complex output: value
//     k < nout of signal b goes to xout[2b, k] (real part) and xout[2b + 1, k] (imaginary part,
//     when 2b + 1 < paths), xout being a (paths, nout) matrix of T — fGn's two paths per transform
//     (fgn.cu); dst is not touched. Double passes and single passes ignore xout. A multi-pass
//     plan needs n/R ≥ C and, for ns > 1, ns ≥ C (the columns of a tile stay within one signal
//     and one run of the output).
//
// Launch: 512 threads (float) or 256 (double), any grid: blocks stride over tiles of C columns
// (C = tile/R, at most the thread count); a single pass masks the columns past batch in its last
// tile. Indices into global memory are 64-bit.

#include "fft.cuh"

namespace {

template <typename T>
__device__ __forceinline__ C2<T> conj_if(C2<T> a, bool conj) {
    return conj ? cx<T>(a.x, -a.y) : a;
}

// Extract: the alternative output of a multi-pass plan's last pass (xout not null): the values
// k < nout of signal b go, real part and imaginary part, to rows 2b and 2b + 1 (when 2b + 1 <
// paths) of the real matrix xout (paths, nout), instead of signal b of dst — fGn's two paths per
// transform (fgn.cu). Built into the float passes only: in double the widest passes (R = 1024,
// 2048) would exceed their 128 registers and spill, so double entries ignore xout.
template <typename T>
struct Extract {
    static constexpr bool kBuilt = sizeof(T) == 4;
    T* xout;
    long long nout, paths;
    __device__ __forceinline__ void put(long long b, long long k, C2<T> v) const {
        if (k < nout) {
            xout[2 * b * nout + k] = v.x;
            if (2 * b + 1 < paths) {
                xout[(2 * b + 1) * nout + k] = v.y;
            }
        }
    }
};

template <typename T, int LOGR>
__device__ __forceinline__ void fft_pass(C2<T>* dst, const C2<T>* src, const C2<T>* __restrict__ tw, long long batch,
                                         long long n, long long ns, long long flags, double scale,
                                         const Extract<T> ex) {
    using S = Shape<T, LOGR>;
    constexpr int E = S::kE, R = S::kR, RT = S::kRT, C = S::kC, TPB = S::kThreads;
    __shared__ T sbuf[S::kTile];

    const long long cols = n >> LOGR;  // columns per signal, n/R
    const long long ncols = batch * cols;
    const long long ntiles = (ncols + C - 1) >> S::kLogC;
    const bool multi = cols > 1;
    const bool conj_in = (flags & 1) != 0, conj_out = (flags & 2) != 0;
    const T sc = static_cast<T>(scale);
    const int tid = threadIdx.x;
    // Multi-pass tiles are strided: columns fastest so that a warp touches runs of C adjacent
    // values. Single-pass tiles are contiguous: a column's threads fastest.
    const int c = multi ? (tid & (C - 1)) : (tid >> S::kLogRT);
    const int t = multi ? (tid >> S::kLogC) : (tid & (RT - 1));
    const bool direct = RT >= 8;  // contiguous tile with runs of ≥ 8 values per column
    const int base = swizzle<T>(c << LOGR), rd = base ^ swizzle<T>(t), lin = swizzle<T>(tid);

    for (long long tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
        const long long g0 = tile << S::kLogC;  // first column of the tile
        C2<T> v[E];
        // ---- load (and the pass twiddle) ----
        if (multi) {
            const long long b = g0 / cols, j = g0 - b * cols + c;
            const C2<T>* in = src + b * n + j;
#pragma unroll
            for (int m = 0; m < E; ++m) v[m] = conj_if<T>(in[static_cast<long long>(t + m * RT) * cols], conj_in);
            if (ns > 1) {
                const long long k = j & (ns - 1);
                const T q = static_cast<T>(ns << LOGR);
#pragma unroll
                for (int m = 0; m < E; ++m) {
                    const long long p = static_cast<long long>(t + m * RT) * k;  // < ns·R ≤ 2^24
                    T s, co;
                    Traits<T>::sincospi_(-static_cast<T>(2 * p) / q, &s, &co);
                    v[m] = cmul<T>(v[m], cx<T>(co, s));
                }
            }
        } else if (direct) {
            const bool ok = g0 + c < ncols;
            const C2<T>* in = src + (g0 + c) * R;
#pragma unroll
            for (int m = 0; m < E; ++m) v[m] = ok ? conj_if<T>(in[t + m * RT], conj_in) : cx<T>(0, 0);
        } else {
            const C2<T>* in = src + g0 * R;  // the tile is C·R contiguous values
#pragma unroll
            for (int q = 0; q < E; ++q) {
                const int i = tid + q * TPB;
                v[q] = g0 + (i >> LOGR) < ncols ? conj_if<T>(in[i], conj_in) : cx<T>(0, 0);
            }
            exchange<T, E>(
                v, sbuf, [&](int q) { return lin ^ swizzle<T>(q * TPB); },  // tile position tid + q·TPB
                [&](int m) { return rd ^ swizzle<T>(m * RT); });
        }

        stages<T, LOGR, 0>(v, sbuf, tw, base, rd, t);

#pragma unroll
        for (int m = 0; m < E; ++m) {
            v[m] = conj_if<T>(v[m], conj_out);
            v[m].x *= sc;
            v[m].y *= sc;
        }
        // ---- store: v[m] is output k = t + m·R/E of column c ----
        if (multi && ns > 1) {
            const long long b = g0 / cols, j = g0 - b * cols + c;
            const long long k0 = ((j & ~(ns - 1)) << LOGR) + (j & (ns - 1));
            if (Extract<T>::kBuilt && ex.xout != nullptr) {
#pragma unroll
                for (int m = 0; m < E; ++m) ex.put(b, k0 + static_cast<long long>(t + m * RT) * ns, v[m]);
            } else {
                C2<T>* out = dst + b * n + k0;
#pragma unroll
                for (int m = 0; m < E; ++m) out[static_cast<long long>(t + m * RT) * ns] = v[m];
            }
        } else if (!multi && direct) {
            if (g0 + c < ncols) {
                C2<T>* out = dst + (g0 + c) * R;
#pragma unroll
                for (int m = 0; m < E; ++m) out[t + m * RT] = v[m];
            }
        } else {
            // Contiguous output tile: the first pass of a multi-pass plan (out[b·n + j·R + k]) or a
            // single pass of a short length. Staged into linear order.
            exchange<T, E>(
                v, sbuf, [&](int q) { return rd ^ swizzle<T>(q * RT); },
                [&](int m) { return lin ^ swizzle<T>(m * TPB); });
            C2<T>* out = dst + g0 * R;  // b·n + j0·R = g0·R: columns are consecutive
#pragma unroll
            for (int m = 0; m < E; ++m) {
                const int i = tid + m * TPB;
                if (g0 + (i >> LOGR) < ncols) out[i] = v[m];
            }
        }
    }
}

}  // namespace

#define FFT_PASS(LOGR, R, T, SUFFIX)                                                                       \
    extern "C" __global__ void __launch_bounds__(1 << Traits<T>::kLogThreads, 2)                           \
        fft_r##R##_##SUFFIX(C2<T>* dst, const C2<T>* src, const C2<T>* tw, long long batch, long long n, \
                            long long ns, long long flags, double scale, T* xout, long long nout,        \
                            long long paths) {                                                             \
        fft_pass<T, LOGR>(dst, src, tw, batch, n, ns, flags, scale, Extract<T>{xout, nout, paths});       \
    }

#define FFT_PASSES(T, SUFFIX)         \
    FFT_PASS(1, 2, T, SUFFIX)         \
    FFT_PASS(2, 4, T, SUFFIX)         \
    FFT_PASS(3, 8, T, SUFFIX)         \
    FFT_PASS(4, 16, T, SUFFIX)        \
    FFT_PASS(5, 32, T, SUFFIX)        \
    FFT_PASS(6, 64, T, SUFFIX)        \
    FFT_PASS(7, 128, T, SUFFIX)       \
    FFT_PASS(8, 256, T, SUFFIX)       \
    FFT_PASS(9, 512, T, SUFFIX)       \
    FFT_PASS(10, 1024, T, SUFFIX)     \
    FFT_PASS(11, 2048, T, SUFFIX)

FFT_PASSES(float, f32)
FFT_PASS(12, 4096, float, f32)
FFT_PASSES(double, f64)
