// The building blocks of the batched complex FFT (kernels/fft.cu has the algorithm and its
// conventions): complex arithmetic, the in-register DFTs, the twiddle table lookup, the block
// geometry, the bank swizzle, the shared-memory exchange and the in-block Stockham stages. Shared
// by fft.cu's passes and by fgn.cu's first pass, which generates its input instead of loading it.
#pragma once

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

}  // namespace
