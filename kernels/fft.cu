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

#include <cstdint>

namespace {

template <typename T>
struct Traits;

template <>
struct Traits<float> {
    using C2 = float2;
    static constexpr int kLogThreads = 9;  // 512 threads per block: a tile of 4096 values
    static constexpr int kLogBank = 5;     // 32 banks of 4-byte words
    __device__ __forceinline__ static C2 make(float x, float y) { return make_float2(x, y); }
    __device__ __forceinline__ static void sincospi_(float x, float* s, float* c) { sincospif(x, s, c); }
    __device__ __forceinline__ static float fma(float a, float b, float c) { return fmaf(a, b, c); }
    // Bank swizzle (see swizzle below): 5-bit field j is the set of bank bits that word-address bit
    // 5 + j flips: 7, 14, 20, 5, 9, 28, 18.
    static constexpr unsigned long long kSwizzle = 0x4b892d1c7ull;
};

template <>
struct Traits<double> {
    using C2 = double2;
    static constexpr int kLogThreads = 8;  // 256 threads per block: a tile of 2048 values
    static constexpr int kLogBank = 4;     // 16 banks of 8-byte words per half-warp
    __device__ __forceinline__ static C2 make(double x, double y) { return make_double2(x, y); }
    __device__ __forceinline__ static void sincospi_(double x, double* s, double* c) { sincospi(x, s, c); }
    __device__ __forceinline__ static double fma(double a, double b, double c) { return ::fma(a, b, c); }
    // Bank swizzle: 5-bit field j is the set of (8-byte) bank bits that word-address bit 4 + j
    // flips: 5, 6, 12, 1, 2, 4, 15.
    static constexpr unsigned long long kSwizzle = 0x3c820b0c5ull;
};

template <typename T>
using C2 = typename Traits<T>::C2;

constexpr int kLogEMax = 3;  // per-thread radix: at most 8 values in registers

// log2 of the block length, which is also the twiddle table's full circle N_tw.
template <typename T>
constexpr int kLogTile = Traits<T>::kLogThreads + kLogEMax;

template <typename T>
__device__ __forceinline__ C2<T> cx(T x, T y) {
    return Traits<T>::make(x, y);
}

template <typename T>
__device__ __forceinline__ C2<T> cadd(C2<T> a, C2<T> b) {
    return cx<T>(a.x + b.x, a.y + b.y);
}

template <typename T>
__device__ __forceinline__ C2<T> csub(C2<T> a, C2<T> b) {
    return cx<T>(a.x - b.x, a.y - b.y);
}

// cmul is a·b with each part one product and one fused multiply-add (4 instructions instead of 6;
// normwise relative error at most 2u, against √5·u for the unfused form).
template <typename T>
__device__ __forceinline__ C2<T> cmul(C2<T> a, C2<T> b) {
    return cx<T>(Traits<T>::fma(a.x, b.x, -(a.y * b.y)), Traits<T>::fma(a.x, b.y, a.y * b.x));
}

// a·(−i)
template <typename T>
__device__ __forceinline__ C2<T> mul_minus_i(C2<T> a) {
    return cx<T>(a.y, -a.x);
}

// cos(πq/8) for q = 0..4 (the rest by symmetry); q is a constant wherever it is called.
__device__ __forceinline__ double cos_pi8(int q) {
    switch (q) {
        case 0:
            return 1.0;
        case 1:
            return 0.92387953251128675613;
        case 2:
            return 0.70710678118654752440;
        case 3:
            return 0.38268343236508977173;
        default:
            return 0.0;
    }
}

// a·w16^e, w16 = e^{−2πi/16}, for a constant e (the loops calling it are unrolled, so the branches
// fold): multiplications by ±1 and ±i are exact swaps and negations.
template <typename T>
__device__ __forceinline__ C2<T> mul_w16(C2<T> a, int e) {
    e &= 15;
    if (e == 0) return a;
    if (e == 4) return mul_minus_i<T>(a);
    if (e == 8) return cx<T>(-a.x, -a.y);
    if (e == 12) return cx<T>(-a.y, a.x);
    // w16^e = cos(πe/8) − i sin(πe/8)
    const int q = e & 7;  // e mod 8; e ≥ 8 negates
    const double c = q <= 4 ? cos_pi8(q) : -cos_pi8(8 - q);
    const double s = q <= 4 ? cos_pi8(4 - q) : cos_pi8(q - 4);
    C2<T> w = cx<T>(static_cast<T>(c), static_cast<T>(-s));
    if (e >= 8) w = cx<T>(-w.x, -w.y);
    return cmul<T>(a, w);
}

// In-register DFT of Q values in natural order: a_k ← Σ_r a_r e^{−2πi rk/Q}, Q = 2, 4, 8.
template <typename T, int Q>
struct Dft;

template <typename T>
struct Dft<T, 1> {
    __device__ __forceinline__ static void run(C2<T> (&)[1]) {}
};

template <typename T>
struct Dft<T, 2> {
    __device__ __forceinline__ static void run(C2<T> (&a)[2]) {
        const C2<T> s = cadd<T>(a[0], a[1]);
        a[1] = csub<T>(a[0], a[1]);
        a[0] = s;
    }
};

template <typename T>
struct Dft<T, 4> {
    __device__ __forceinline__ static void run(C2<T> (&a)[4]) {
        const C2<T> t0 = cadd<T>(a[0], a[2]);
        const C2<T> t1 = csub<T>(a[0], a[2]);
        const C2<T> t2 = cadd<T>(a[1], a[3]);
        const C2<T> t3 = mul_minus_i<T>(csub<T>(a[1], a[3]));
        a[0] = cadd<T>(t0, t2);
        a[2] = csub<T>(t0, t2);
        a[1] = cadd<T>(t1, t3);
        a[3] = csub<T>(t1, t3);
    }
};

// Q = N1·N2 by the four-step split: input index j1 + N1·j2, output index k2 + N2·k1:
// DFT_N2 over j2, twiddle w_Q^{j1·k2}, DFT_N1 over j1.
template <typename T, int N1, int N2>
__device__ __forceinline__ void dft_split(C2<T> (&a)[N1 * N2]) {
    constexpr int Q = N1 * N2;
    C2<T> y[N1][N2];
#pragma unroll
    for (int j1 = 0; j1 < N1; ++j1) {
#pragma unroll
        for (int j2 = 0; j2 < N2; ++j2) y[j1][j2] = a[j1 + N1 * j2];
        Dft<T, N2>::run(y[j1]);
#pragma unroll
        for (int k2 = 0; k2 < N2; ++k2) y[j1][k2] = mul_w16<T>(y[j1][k2], (j1 * k2) * (16 / Q));
    }
#pragma unroll
    for (int k2 = 0; k2 < N2; ++k2) {
        C2<T> z[N1];
#pragma unroll
        for (int j1 = 0; j1 < N1; ++j1) z[j1] = y[j1][k2];
        Dft<T, N1>::run(z);
#pragma unroll
        for (int k1 = 0; k1 < N1; ++k1) a[k2 + N2 * k1] = z[k1];
    }
}

template <typename T>
struct Dft<T, 8> {
    __device__ __forceinline__ static void run(C2<T> (&a)[8]) { dft_split<T, 2, 4>(a); }
};


// e^{−2πi k/N_tw} for k ∈ [0, N_tw) from the quarter-wave table tw[kk] = e^{−2πi kk/N_tw},
// kk < N_tw/4: e^{−2πi k/N_tw} = (−i)^{k div (N_tw/4)} · tw[k mod (N_tw/4)], the factor exact.
template <typename T>
__device__ __forceinline__ C2<T> twiddle(const C2<T>* __restrict__ tw, int k) {
    constexpr int kLogQuarter = kLogTile<T> - 2;
    const C2<T> a = tw[k & ((1 << kLogQuarter) - 1)];
    switch ((k >> kLogQuarter) & 3) {
        case 0:
            return a;
        case 1:
            return cx<T>(a.y, -a.x);
        case 2:
            return cx<T>(-a.x, -a.y);
        default:
            return cx<T>(-a.y, a.x);
    }
}

// The geometry of a block of radix R = 2^LOGR.
template <typename T, int LOGR>
struct Shape {
    static constexpr int kLogThreads = Traits<T>::kLogThreads;
    static constexpr int kThreads = 1 << kLogThreads;
    static constexpr int kR = 1 << LOGR;
    static constexpr int kLogE = LOGR < kLogEMax ? LOGR : kLogEMax;
    static constexpr int kE = 1 << kLogE;                   // values per thread
    static constexpr int kLogRT = LOGR - kLogE;             // log2 threads per column
    static constexpr int kRT = 1 << kLogRT;
    static constexpr int kLogC = kLogThreads - kLogRT;      // log2 columns per tile
    static constexpr int kC = 1 << kLogC;
    static constexpr int kTile = kC << LOGR;                // values per tile, kThreads·kE
};

// swizzle maps tile position a = c·R + r (column c, element r) to its word in the shared buffer:
// a with its bank bits (the low 5 bits of a float index, 4 of a double index) XORed with a linear
// function of the bits above them. It is a bijection (the high bits are unchanged) and linear over
// XOR, so that swizzle(x | y) = swizzle(x) ^ swizzle(y) for x, y without common bits: a thread
// computes the swizzle of its own bits (column, t) once per stage and the compiler folds the
// constant rest. The masks were found by a search over a host model of every shared access of
// every kernel (each stage's writes and reads, the staged loads and stores, in both thread
// mappings): with them no warp access has a bank conflict (float: 32 banks per warp; double: 16
// eight-byte banks per half-warp).
template <typename T>
__device__ __forceinline__ int swizzle(int a) {
    constexpr int kLogBank = Traits<T>::kLogBank;
    int b = a;
#pragma unroll
    for (int j = 0; j < 7; ++j) {
        if ((a >> (kLogBank + j)) & 1) b ^= static_cast<int>((Traits<T>::kSwizzle >> (5 * j)) & 31);
    }
    return b;
}

// exchange moves the thread's values through the shared buffer: value v[q] currently belongs at
// (swizzled) position from(q), and afterwards v[m] is the value at position to(m). Real and
// imaginary parts travel one after the other.
template <typename T, int E, typename From, typename To>
__device__ __forceinline__ void exchange(C2<T> (&v)[E], T* sbuf, From from, To to) {
#pragma unroll
    for (int q = 0; q < E; ++q) sbuf[from(q)] = v[q].x;
    __syncthreads();
#pragma unroll
    for (int m = 0; m < E; ++m) v[m].x = sbuf[to(m)];
    __syncthreads();
#pragma unroll
    for (int q = 0; q < E; ++q) sbuf[from(q)] = v[q].y;
    __syncthreads();
#pragma unroll
    for (int m = 0; m < E; ++m) v[m].y = sbuf[to(m)];
    __syncthreads();
}

// The in-block DFT of length R from stage LOGNS on: thread (c, t) holds v[m] = element t + m·R/E
// of column c. Stage (Q, Ns): butterfly jq = t + u·R/E (u < E/Q) combines v[u + r·E/Q], r < Q,
// twiddled by e^{−2πi r·(jq mod Ns)/(Ns·Q)}, and its output r goes to
// (jq − jq mod Ns)·Q + jq mod Ns + r·Ns. base is swizzle(c·R), rd = base ^ swizzle(t): the
// swizzled position of element t + m·R/E is rd ^ swizzle(m·R/E).
template <typename T, int LOGR, int LOGNS>
__device__ __forceinline__ void stages(C2<T> (&v)[Shape<T, LOGR>::kE], T* sbuf, const C2<T>* __restrict__ tw,
                                       int base, int rd, int t) {
    if constexpr (LOGNS < LOGR) {
        using S = Shape<T, LOGR>;
        constexpr int E = S::kE, RT = S::kRT;
        constexpr int LOGQ = (LOGR - LOGNS) < kLogEMax ? (LOGR - LOGNS) : kLogEMax;
        constexpr int Q = 1 << LOGQ;
        constexpr int EQ = E / Q;
        constexpr int NS = 1 << LOGNS;
        constexpr bool kLast = LOGNS + LOGQ == LOGR;
#pragma unroll
        for (int u = 0; u < EQ; ++u) {
            C2<T> a[Q];
#pragma unroll
            for (int r = 0; r < Q; ++r) a[r] = v[u + r * EQ];
            if constexpr (NS > 1) {
                const int k = (t + u * RT) & (NS - 1);
#pragma unroll
                for (int r = 1; r < Q; ++r) {
                    a[r] = cmul<T>(a[r], twiddle<T>(tw, (r * k) << (kLogTile<T> - LOGNS - LOGQ)));
                }
            }
            Dft<T, Q>::run(a);
#pragma unroll
            for (int r = 0; r < Q; ++r) v[u + r * EQ] = a[r];
        }
        if constexpr (!kLast) {
            // jq = t | u·RT (t < RT), so the output position splits into bits from t,
            // ((t >> log Ns) << (log Ns + log Q)) | (t mod Ns), and constant bits.
            const int wr = base ^ swizzle<T>(((t >> LOGNS) << (LOGNS + LOGQ)) | (t & (NS - 1)));
            exchange<T, E>(
                v, sbuf,
                [&](int q) {
                    const int u = q % EQ, r = q / EQ;
                    const int jc = u * RT;  // the constant part of jq
                    return wr ^ swizzle<T>(((jc >> LOGNS) << (LOGNS + LOGQ)) | (jc & (NS - 1)) | (r * NS));
                },
                [&](int m) { return rd ^ swizzle<T>(m * RT); });
            stages<T, LOGR, LOGNS + LOGQ>(v, sbuf, tw, base, rd, t);
        }
    }
}

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
