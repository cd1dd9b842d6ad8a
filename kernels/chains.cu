// Fused multi-step Langevin chains on Gaussian mixtures (docs/math.md §1.1, §2, §3): S steps of ULA,
// MALA or underdamped Langevin (ULD) for N chains in one launch, each chain's state held in
// registers from the first step to the last. The specification is ops.GMMChains: the step-by-step
// sequence of the ops GMMScore (gmm.cu), AddGaussianFactor, Step, MALAAccept and ULDStep
// (langevin.cu), which ops.StepByStepChains runs one launch per op. Per step s (sites
// site(s, p) = (first + s)·stride + p):
//
//   ULA   g ← ∇log p(x) (+ factor);  x ← x + β_i g + γ_i ξ(site(s, step))
//   MALA  y ← x + β_i s(x) + γ_i ξ(site(s, step));  log p(y), s(y) (+ factor);
//         log α = (log p(y) − log p(x)) + (‖y − x − h_i s(x)‖² − ‖x − y − h_i s(y)‖²) / (4 h_i);
//         accept iff log U < log α, U the f64 uniform of lane 0 at site(s, accept)
//   ULD   g ← ∇log p(x) (+ factor);  x' = x + cx v + cxg g + l11 ξ1,  v' = E v + cv g + l21 ξ1 + l22 ξ2
//         (ξ1 at site(s, uld), ξ2 at site(s, uld) + 1)
//
// with (β_i, γ_i, h_i) = (h, √(2h), h), or (h_i, √2·√h_i, h_i) for per-chain step sizes, and the
// factor (RTK) log p += −‖c − a x‖²/(2v), score += a (c − a x)/v.
//
// Same numbers as the step ops, operation for operation. Everything the step-by-step path stores
// between launches in the element type T is held here in T registers, and each value is computed
// by the same expression in the same order:
//   - the mixture score, in T, from the per-component constants table that gmm_prep_<dt> writes
//     for the shared noise level (the launcher runs that kernel of the gmm module first):
//     consts = [cst (K) | 1/c (K·l1) | a μ (K·d)], e = x − a μ, quadratic form Σ e·(e/c),
//     r = cst − ½ q, an online log-sum-exp over the components, score = acc / sum,
//     log p = m + log sum. For d ≤ 16 the score op runs gmm.cu's per-thread kernels, whose
//     component term is gmm.cuh's row_term, and so do the thread variants here (its fused
//     multiply-adds and its summation order: sequential, except in double for 8 < d ≤ 16, which
//     adds in the 16-lane butterfly's tree). For d > 16 the score op runs the warp kernels, whose
//     butterfly sum the warp variants here replay with the same shuffles;
//   - the step, the factor, the ULD update and the MALA decision in double from the T values,
//     rounded once to T, exactly as langevin.cu; MALA's two squared norms and the factor's
//     ‖c − a x‖² are summed in the layout the step ops' launcher uses (ops/cuda langevinGroup:
//     g lanes per row, lane sub = j mod g adding its coordinates in increasing j, then a
//     butterfly over the g lanes), which this kernel reproduces with shuffles (warp variants) or
//     g partial sums and the same tree (thread variants, where g is 1, 1, 2, 4 for D = 2, 4, 8, 16);
//   - the normals: the Normal fill's numbers for (seed, site, chain, j) in T's precision (float:
//     Philox lane j/4, Box–Muller pairs on words (0, 1) and (2, 3); double: lane j/2), the code of
//     random.cu and langevin.cu; MALA's uniform: U64 of words (0, 1) of lane 0.
// A fused run therefore reproduces the step-by-step run on the GPU bit for bit; what separates
// both from the float64 CPU reference is the score op's rounding in T (optest.ScoreF32/ScoreF64)
// and the normals' few ulp.
//
// Variants (entries chains_<method>_<variant>_<dt>, method ∈ {ula, mala, uld}):
//   row2, row4, row8, row16   d ≤ 2, ≤ 4, ≤ 8, ≤ 16: one thread per chain, coordinates in registers
//                              (a bound D with zero padding): the point the score is evaluated at
//                              (x; MALA's proposal) and the accumulator. What a chain carries
//                              besides (MALA's current state, score, log p and count, ULD's
//                              velocity: RowCarry) is held in registers by row2–row8 and, in
//                              row16, in the chain's own rows in global memory (cached), read
//                              where used and written when it changes, so that across the
//                              component loop the three methods hold the same registers. 256 threads per
//                              block; the block stages the component table in shared memory, in
//                              gmm.cuh's RowTile layout padded to D — once for the whole run when
//                              it fits (the launcher sizes the tile for
//                              that), otherwise one tile of `tile` components at a time in every
//                              score evaluation, all threads reaching each barrier (threads without
//                              a chain compute on zeros and store nothing). The online
//                              log-sum-exp update is branch-free: threads disagree on whether the
//                              max grows (one e^{−|r − m|} is the rescale factor or the weight;
//                              multiplying by 1 is exact, so this is the score op's arithmetic).
//   warp1, warp2, warp4, warp8 16 < d ≤ 32·P: one warp per chain, lane l owns coordinates l + 32c,
//                              c < P; 8 chains per 256-thread block sharing the staged table. The
//                              quadratic forms are butterfly sums, so every lane holds the same bits
//                              of r_k, log p and log α: the online-max branch and the MALA decision
//                              are warp-uniform without a broadcast. Normals: the warp's lanes
//                              compute the ⌈d/W⌉ Philox blocks of the row (lane L the block of
//                              Philox lane L, L + 32, …), write them to a per-warp shared buffer
//                              of 32·P elements, and every lane reads its coordinates back, so
//                              each block and each Box–Muller pair is computed once per chain.
//   Method is a template parameter (ULA keeps 2 arrays live, ULD 3, MALA 4), so ULA and ULD do
//   not pay MALA's register count.
//
// NaN: a chain whose state turns NaN stays NaN (ULA, ULD) and never affects another chain (its
// thread or warp only touches its own state; shared memory holds the mixture only). MALA rejects
// a proposal whose log α is NaN (log U < NaN is false), so a chain never moves to NaN.
//
// Parameters (every one 8 bytes; absent optional pointers null):
//   (x, v, logp, score, accepted, hs, center, trace, consts, n, d, k, cov, tile, steps, thin, group,
//    h, beta, gamma, fa, fv, e, cv, cx, cxg, l11, l21, l22, seed, first, stride, p_step, p_accept,
//    p_uld, chain0)
//   x (n, d) state, in place; v (n, d) ULD velocity; logp (n), score (n, d), accepted (f64, n):
//   MALA's current log p and score (valid on entry, kept valid) and acceptance counts (added to);
//   hs (n) per-chain step sizes or null; center (n, d) with (fa, fv) the Gaussian factor, or null;
//   trace (steps/thin, n, d) or null: after every thin steps the state goes to the next slice;
//   consts the gmm_prep table; cov an ops.CovKind (isotropic or diagonal); tile components per
//   shared tile (the run stages once when tile ≥ k); group the step ops' reduction group for d;
//   h MALA's shared step; (beta, gamma) the Step coefficients (h, √(2h)) or per chain (1, √2);
//   e … l22 ops.ULDCoefficients; sites (first + s)·stride + p_*; chain0 the chain of row 0.
// Dynamic shared memory: tile·(1 + l1 + d) elements, plus 8·32·P for the warp variants.

#include <cstdint>

#include "gmm.cuh"
#include "normals.cuh"

namespace {

constexpr int kBlock = 256;
constexpr int kWarpsPerBlock = kBlock / kWarp;
constexpr long long kIsotropic = 1;  // ops.Isotropic

// Methods (template parameter).
constexpr int kULA = 1;
constexpr int kMALA = 2;
constexpr int kULD = 3;

// Launch arguments, unpacked once per thread.
template <typename T>
struct Params {
    T* x;
    T* v;
    T* logp;
    T* score;
    double* accepted;
    const T* hs;
    const T* center;
    T* trace;
    const T* tab;  // consts: [cst (K) | 1/c (K·l1) | a μ (K·d)]
    long long n, d, k, l1, tile, steps, thin, group;
    bool iso;
    double h, beta, gamma, fa, fv;
    double e, cv, cx, cxg, l11, l21, l22;
    uint2 key;
    unsigned long long first, stride, p_step, p_accept, p_uld, chain0;

    __device__ __forceinline__ const T* c0() const { return tab; }
    __device__ __forceinline__ const T* v1() const { return tab + k; }
    __device__ __forceinline__ const T* v2() const { return tab + k + k * l1; }
    // site is the draw site of step s (of this call), purpose offset p.
    __device__ __forceinline__ unsigned long long site(long long s, unsigned long long p) const {
        return (first + static_cast<unsigned long long>(s)) * stride + p;
    }
};

// stage copies the constants of components [k0, k0 + nk) into shared memory: sc0 (nk), sv1
// (nk·l1), sv2 (nk·d).
template <typename T>
__device__ __forceinline__ void stage(const Params<T>& P, long long k0, long long nk, T* sc0, T* sv1,
                                      T* sv2) {
    block_copy(sc0, P.c0() + k0, nk);
    block_copy(sv1, P.v1() + k0 * P.l1, nk * P.l1);
    block_copy(sv2, P.v2() + k0 * P.d, nk * P.d);
}

// stage_tile stages the tile [k0, k0 + nk) between two block barriers when multi is set (the
// components do not fit one tile); every thread of the block must call it.
template <typename T>
__device__ __forceinline__ void stage_tile(const Params<T>& P, bool multi, long long k0, int nk, T* sc0,
                                           T* sv1, T* sv2) {
    if (multi) {
        __syncthreads();
        stage(P, k0, nk, sc0, sv1, sv2);
        __syncthreads();
    }
}

// Step coefficients of one chain: the Step op's (β_i, γ_i) and MALAAccept's h_i.
struct StepCoef {
    double beta, gamma, h;
};

template <typename T>
__device__ __forceinline__ StepCoef step_coef(const Params<T>& P, long long row, bool live) {
    StepCoef c{P.beta, P.gamma, P.h};
    if (P.hs != nullptr && live) {
        const double hi = static_cast<double>(P.hs[row]);
        c.beta = P.beta * hi;
        c.gamma = P.gamma * sqrt(hi);
        c.h = hi;
    }
    return c;
}

// mala_uniform is MALAAccept's uniform: column 0 of the f64 Uniform fill.
__device__ __forceinline__ double mala_uniform(uint2 key, unsigned long long site, unsigned int chain) {
    const uint4 b = philox_block(key, site, chain, 0u);
    return uniform_u64(b.x, b.y);
}

// ---------------------------------------------------------------------------------------------
// One thread per chain, d ≤ D ∈ {2, 4, 8, 16}.

// Group of the step ops' row reductions for d in this variant's range (ops/cuda langevinGroup:
// ⌈d/4⌉ rounded up to a power of two): 1 for d ≤ 4, 2 for 5..8, 4 for 9..16.
template <int D>
struct RowGroup {
    static constexpr int G = D <= 4 ? 1 : D / 4;
};

// tree_sum folds G partial sums as the butterfly of a G-lane group leaves them in every lane:
// at step o, p_s ← p_s + p_{s+o} for s < o (lane s reads lane s ^ o = s + o; the sum commutes).
template <int G>
__device__ __forceinline__ double tree_sum(double (&p)[G]) {
#pragma unroll
    for (int o = G / 2; o > 0; o >>= 1) {
#pragma unroll
        for (int s = 0; s < o; ++s) {
            p[s] = p[s] + p[s + o];
        }
    }
    return p[0];
}

// row_eval is GMMScore at x for one thread's chain: acc / sum is the score, m + log sum the log
// density. With multi, the tiles are staged here (every thread of the block must call it).
template <typename T, int D>
__device__ __forceinline__ void row_eval(const Params<T>& P, bool multi, const RowTile<T, D>& tl,
                                         const T (&x)[D], T (&acc)[D], T& m, T& sum) {
    // t is kept in registers between the quadratic form and the update for D ≤ 8 and recomputed
    // (the same bits) for D = 16: the 16 registers it saves are part of what brings the float
    // row16 variants to 80 (3 resident blocks), for 32 more instructions per component (of
    // about 170).
    constexpr bool kKeepT = D < 16;
    m = -Math<T>::inf();
    sum = T(0);
#pragma unroll
    for (int j = 0; j < D; ++j) {
        acc[j] = T(0);
    }
    const long long K = P.k, TK = P.tile;
    for (long long k0 = 0; k0 < K; k0 += TK) {
        const int nk = static_cast<int>(K - k0 < TK ? K - k0 : TK);
        if (multi) {
            __syncthreads();
            tl.stage(P.tab, K, P.d, k0, nk);
            __syncthreads();
        }
        // For D ≤ 8 the same loop twice, so that each copy is compiled for one covariance kind
        // (the compiler does not unswitch it on its own in the MALA and ULD bodies); for D = 16
        // the registers go to the state instead.
        if (D <= 8 && tl.iso) {
            for (int kk = 0; kk < nk; ++kk) {
                row_term<T, D, kKeepT>(x, tl, kk, true, acc, m, sum);
            }
        } else {
            for (int kk = 0; kk < nk; ++kk) {
                row_term<T, D, kKeepT>(x, tl, kk, true, acc, m, sum);
            }
        }
    }
}

// row_score turns the accumulator into the score (T) and, with the factor, adds
// a (c − a x)/v in double, rounding once (AddGaussianFactor). With the factor and want_q, the
// return value is ‖c − a x‖² in the step ops' group layout, else 0.
template <typename T, int D>
__device__ __forceinline__ double row_score(const Params<T>& P, long long row, bool live, int dd,
                                            const T (&x)[D], T (&acc)[D], T sum, bool want_q) {
    constexpr int G = RowGroup<D>::G;
#pragma unroll
    for (int j = 0; j < D; ++j) {
        acc[j] = j < dd ? acc[j] / sum : T(0);
    }
    if (P.center == nullptr) {
        return 0.0;
    }
    double q[G];
#pragma unroll
    for (int s = 0; s < G; ++s) {
        q[s] = 0.0;
    }
    const T* cr = P.center + (live ? row * dd : 0);
#pragma unroll
    for (int j = 0; j < D; ++j) {
        if (j < dd) {
            const double c = live ? static_cast<double>(__ldg(cr + j)) : 0.0;
            const double r = c - P.fa * static_cast<double>(x[j]);
            q[j % G] = q[j % G] + r * r;
            acc[j] = static_cast<T>(static_cast<double>(acc[j]) + P.fa * r / P.fv);
        }
    }
    return want_q ? tree_sum<G>(q) : 0.0;
}

// row_normals calls fn(j, ξ_j) for j < dd with the normals of chain at site (T's stream, as
// double).
template <typename T, int D, typename F>
__device__ __forceinline__ void row_normals(uint2 key, unsigned long long site, unsigned int chain, int dd,
                                            F fn) {
    constexpr int W = Normals<T>::W;
    constexpr int NL = (D + W - 1) / W;
#pragma unroll
    for (int L = 0; L < NL; ++L) {
        if (L * W < dd) {
            const int cnt = dd - L * W < W ? dd - L * W : W;
            double z[W];
            Normals<T>::widened(philox_block(key, site, chain, static_cast<unsigned int>(L)), cnt, z);
#pragma unroll
            for (int k = 0; k < W; ++k) {
                if (L * W + k < D && L * W + k < dd) {
                    fn(L * W + k, z[k]);
                }
            }
        }
    }
}

// row_normals2 calls fn(j, ξ1_j, ξ2_j) with the normals at site and site + 1 (ULDStep).
template <typename T, int D, typename F>
__device__ __forceinline__ void row_normals2(uint2 key, unsigned long long site, unsigned int chain, int dd,
                                             F fn) {
    constexpr int W = Normals<T>::W;
    constexpr int NL = (D + W - 1) / W;
#pragma unroll
    for (int L = 0; L < NL; ++L) {
        if (L * W < dd) {
            const int cnt = dd - L * W < W ? dd - L * W : W;
            double z1[W], z2[W];
            Normals<T>::widened(philox_block(key, site, chain, static_cast<unsigned int>(L)), cnt, z1);
            Normals<T>::widened(philox_block(key, site + 1, chain, static_cast<unsigned int>(L)), cnt, z2);
#pragma unroll
            for (int k = 0; k < W; ++k) {
                if (L * W + k < D && L * W + k < dd) {
                    fn(L * W + k, z1[k], z2[k]);
                }
            }
        }
    }
}

// row_step is Step: out_j = T((x_j + β s_j) + γ ξ_j), no normal drawn when γ == 0.
template <typename T, int D>
__device__ __forceinline__ void row_step(const Params<T>& P, const StepCoef& sc, unsigned long long site,
                                         unsigned int chain, int dd, const T (&x)[D], const T (&s)[D],
                                         T (&out)[D]) {
#pragma unroll
    for (int j = 0; j < D; ++j) {
        if (j >= dd) {
            out[j] = T(0);  // the padding (coordinates j ≥ d are zero in every row)
        }
    }
    if (sc.gamma != 0.0) {  // NaN γ adds NaN, as in the Step op
        row_normals<T, D>(P.key, site, chain, dd, [&](int j, double z) {
            out[j] = static_cast<T>(static_cast<double>(x[j]) + sc.beta * static_cast<double>(s[j]) +
                                    sc.gamma * z);
        });
    } else {
#pragma unroll
        for (int j = 0; j < D; ++j) {
            if (j < dd) {
                out[j] = static_cast<T>(static_cast<double>(x[j]) + sc.beta * static_cast<double>(s[j]));
            }
        }
    }
}

// row_propose is MALA's proposal y = Step(x, s(x)) from the chain's state and score (row_step's
// arithmetic), each coordinate read from carry where it is used.
template <typename T, int D, typename C>
__device__ __forceinline__ void row_propose(const Params<T>& P, const StepCoef& sc, unsigned long long site,
                                            unsigned int chain, int dd, const C& carry, T (&y)[D]) {
#pragma unroll
    for (int j = 0; j < D; ++j) {
        y[j] = T(0);  // the padding (coordinates j ≥ d are zero in every row)
    }
    auto put = [&](int j, double z, bool noise) {
        const double xj = carry.x(j), sj = carry.s(j);
        y[j] = static_cast<T>(noise ? xj + sc.beta * sj + sc.gamma * z : xj + sc.beta * sj);
    };
    if (sc.gamma != 0.0) {  // NaN γ adds NaN, as in the Step op
        row_normals<T, D>(P.key, site, chain, dd, [&](int j, double z) { put(j, z, true); });
    } else {
#pragma unroll
        for (int j = 0; j < D; ++j) {
            if (j < dd) {
                put(j, 0.0, false);
            }
        }
    }
}

// row_store writes a chain's row (its dd coordinates).
template <typename T, int D>
__device__ __forceinline__ void row_store(T* dst, int dd, const T (&x)[D]) {
#pragma unroll
    for (int j = 0; j < D; ++j) {
        if (j < dd) {
            dst[j] = x[j];
        }
    }
}

// RowCarry is what a chain carries from step to step beside the point the score is evaluated at:
// MALA's current state, score, log p and acceptance count, and ULD's velocity. For LEAN (the
// row16 variants) it lives in the chain's own rows of x, score, logp, accepted and v (cached),
// read where it is used and written when it changes, so that across the component loop MALA and
// ULD hold the registers of ULA (the point and the accumulator) and fit 80 in float; otherwise it
// is held in registers, loaded once and stored at the end (fewer instructions per step). The
// values go through memory unchanged: the same bits either way.
template <typename T, int D, int M, bool LEAN>
struct RowCarry {
    static constexpr int R = LEAN ? 1 : D;
    const Params<T>& P;
    long long row, off;
    bool live;
    int dd;
    T xr[R], sr[R], vr[R], lpr;
    double naccr;

    __device__ __forceinline__ RowCarry(const Params<T>& P_, long long row_, long long off_, bool live_, int dd_)
        : P(P_), row(row_), off(off_), live(live_), dd(dd_), lpr(T(0)), naccr(0.0) {
        if constexpr (!LEAN) {
#pragma unroll
            for (int j = 0; j < D; ++j) {
                const bool ok = live && j < dd;
                xr[j] = M == kMALA && ok ? P.x[off + j] : T(0);
                sr[j] = M == kMALA && ok ? P.score[off + j] : T(0);
                vr[j] = M == kULD && ok ? P.v[off + j] : T(0);
            }
            lpr = M == kMALA && live ? P.logp[row] : T(0);
            naccr = M == kMALA && live ? P.accepted[row] : 0.0;
        }
    }
    // MALA's current state x_j and score s_j, log p; ULD's velocity v_j (j < dd).
    __device__ __forceinline__ T x(int j) const {
        if constexpr (LEAN) {
            return live ? P.x[off + j] : T(0);
        } else {
            return xr[j];
        }
    }
    __device__ __forceinline__ T s(int j) const {
        if constexpr (LEAN) {
            return live ? P.score[off + j] : T(0);
        } else {
            return sr[j];
        }
    }
    __device__ __forceinline__ T lp() const {
        if constexpr (LEAN) {
            return live ? P.logp[row] : T(0);
        } else {
            return lpr;
        }
    }
    __device__ __forceinline__ T v(int j) const {
        if constexpr (LEAN) {
            return live ? P.v[off + j] : T(0);
        } else {
            return vr[j];
        }
    }
    __device__ __forceinline__ void set_v(int j, T val) {
        if constexpr (LEAN) {
            if (live) {
                P.v[off + j] = val;
            }
        } else {
            vr[j] = val;
        }
    }
    // accept moves MALA's chain to the proposal y with score sy and log p lpy.
    __device__ __forceinline__ void accept(const T (&y)[D], const T (&sy)[D], T lpy) {
        if constexpr (LEAN) {
            if (live) {
                row_store<T, D>(P.x + off, dd, y);
                row_store<T, D>(P.score + off, dd, sy);
                P.logp[row] = lpy;
                P.accepted[row] = P.accepted[row] + 1.0;
            }
        } else {
#pragma unroll
            for (int j = 0; j < D; ++j) {
                xr[j] = y[j];
                sr[j] = sy[j];
            }
            lpr = lpy;
            naccr = naccr + 1.0;
        }
    }
    // finish stores what registers held (nothing for LEAN).
    __device__ __forceinline__ void finish() const {
        if constexpr (!LEAN) {
            if (!live) {
                return;
            }
            if constexpr (M == kMALA) {
                row_store<T, D>(P.x + off, dd, xr);
                row_store<T, D>(P.score + off, dd, sr);
                P.logp[row] = lpr;
                P.accepted[row] = naccr;
            }
            if constexpr (M == kULD) {
                row_store<T, D>(P.v + off, dd, vr);
            }
        }
    }
};

template <typename T, int D, int M>
__device__ void row_chains(const Params<T>& P, T* sm) {
    constexpr int G = RowGroup<D>::G;
    constexpr bool kLean = D >= 16;
    const int dd = static_cast<int>(P.d);  // ≤ D
    const long long TK = P.tile;
    const bool multi = P.k > TK;
    const RowTile<T, D> tl(sm, TK, P.iso);
    if (!multi) {
        tl.stage(P.tab, P.k, P.d, 0, static_cast<int>(P.k));
        __syncthreads();
    }
    const long long gstride = static_cast<long long>(gridDim.x) * blockDim.x;
    for (long long base = static_cast<long long>(blockIdx.x) * blockDim.x; base < P.n; base += gstride) {
        const long long row = base + threadIdx.x;
        const bool live = row < P.n;
        const unsigned int chain = static_cast<unsigned int>(P.chain0 + static_cast<unsigned long long>(row));
        const long long off = live ? row * dd : 0;
        // x: the point the score is evaluated at for ULA and ULD (MALA evaluates its proposal).
        T x[D];
#pragma unroll
        for (int j = 0; j < D; ++j) {
            x[j] = M != kMALA && live && j < dd ? P.x[off + j] : T(0);
        }
        RowCarry<T, D, M, kLean> carry(P, row, off, live, dd);
        // The step coefficients: held for the whole run, or for kLean reread from the parameters
        // (and hs) where they are used, not held across the component loop.
        const StepCoef sc0 = step_coef(P, row, live);
        auto coef = [&]() { return kLean ? step_coef(P, row, live) : sc0; };
        long long tcount = 0, trow = 0;
        for (long long st = 0; st < P.steps; ++st) {
            if constexpr (M == kULA) {
                T acc[D], m, sum;
                row_eval<T, D>(P, multi, tl, x, acc, m, sum);
                row_score<T, D>(P, row, live, dd, x, acc, sum, false);
                row_step<T, D>(P, coef(), P.site(st, P.p_step), chain, dd, x, acc, x);
            } else if constexpr (M == kMALA) {
                T y[D], acc[D], m, sum;
                row_propose<T, D>(P, coef(), P.site(st, P.p_step), chain, dd, carry, y);
                row_eval<T, D>(P, multi, tl, y, acc, m, sum);
                T lpy = m + Math<T>::log(sum);
                const double q = row_score<T, D>(P, row, live, dd, y, acc, sum, true);
                if (P.center != nullptr) {
                    lpy = static_cast<T>(static_cast<double>(lpy) - q / (2.0 * P.fv));
                }
                const double h = coef().h;
                double fw[G], bw[G];
#pragma unroll
                for (int g = 0; g < G; ++g) {
                    fw[g] = 0.0;
                    bw[g] = 0.0;
                }
#pragma unroll
                for (int j = 0; j < D; ++j) {
                    if (j < dd) {
                        const double xj = carry.x(j), sxj = carry.s(j), yj = y[j], syj = acc[j];
                        const double f = yj - xj - h * sxj;  // y − x − h s(x)
                        const double r = xj - yj - h * syj;  // x − y − h s(y)
                        fw[j % G] = fw[j % G] + f * f;
                        bw[j % G] = bw[j % G] + r * r;
                    }
                }
                const double fwd = tree_sum<G>(fw), bwd = tree_sum<G>(bw);
                const double log_alpha =
                    static_cast<double>(lpy) - static_cast<double>(carry.lp()) + (fwd - bwd) / (4.0 * h);
                const double u = mala_uniform(P.key, P.site(st, P.p_accept), chain);
                if (log(u) < log_alpha) {  // false for a NaN log α: rejected
                    carry.accept(y, acc, lpy);
                }
            } else {
                T acc[D], m, sum;
                row_eval<T, D>(P, multi, tl, x, acc, m, sum);
                row_score<T, D>(P, row, live, dd, x, acc, sum, false);
                row_normals2<T, D>(P.key, P.site(st, P.p_uld), chain, dd, [&](int j, double z1, double z2) {
                    const double xr = x[j], vr = carry.v(j), sr = acc[j];
                    const double xn = xr + P.cx * vr + P.cxg * sr + P.l11 * z1;
                    const double vn = P.e * vr + P.cv * sr + P.l21 * z1 + P.l22 * z2;
                    x[j] = static_cast<T>(xn);
                    carry.set_v(j, static_cast<T>(vn));
                });
            }
            if (P.trace != nullptr && ++tcount == P.thin) {
                tcount = 0;
                if (live) {
                    T* dst = P.trace + (trow * P.n + row) * dd;
#pragma unroll
                    for (int j = 0; j < D; ++j) {
                        if (j < dd) {
                            dst[j] = M == kMALA ? carry.x(j) : x[j];
                        }
                    }
                }
                ++trow;
            }
        }
        if (M != kMALA && live) {
            // The row's address is formed again here from off (which the carry keeps live) behind
            // an empty asm, so that ptxas cannot keep the address of the first loads live across
            // the step loop: at 128 registers (double ULD row16, 2 blocks per SM) it otherwise
            // spills that 64-bit value on sm_80.
            long long o = off;
#if defined(__CUDA_ARCH__)
            asm volatile("" : "+l"(o));
#endif
            row_store<T, D>(P.x + o, dd, x);
        }
        carry.finish();
    }
}

// ---------------------------------------------------------------------------------------------
// One warp per chain, 16 < d ≤ 32·PP: lane l owns coordinates l + 32c, c < PP.

// warp_eval is GMMScore at x for the warp's chain (gmm_score_warp<PP>'s arithmetic: warp_term).
template <typename T, int PP>
__device__ __forceinline__ void warp_eval(const Params<T>& P, bool multi, T* sc0, T* sv1, T* sv2, int lane,
                                          int nv, const T (&x)[PP], T (&acc)[PP], Online<T>& on) {
    constexpr bool kKeepG = PP * sizeof(T) <= 32;
    const int d = static_cast<int>(P.d);
    on.init();
#pragma unroll
    for (int c = 0; c < PP; ++c) {
        acc[c] = T(0);
    }
    const long long K = P.k, TK = P.tile;
    for (long long k0 = 0; k0 < K; k0 += TK) {
        const int nk = static_cast<int>(K - k0 < TK ? K - k0 : TK);
        stage_tile(P, multi, k0, nk, sc0, sv1, sv2);
        for (int kk = 0; kk < nk; ++kk) {
            warp_term<T, PP, kKeepG>(x, sv2 + kk * d, sv1 + (P.iso ? kk : kk * d), P.iso, sc0[kk], lane, nv,
                                     true, acc, on);
        }
    }
}

// LayoutSum adds per-coordinate double terms (coordinate lane + 32c in slot c of each lane) in the
// step ops' group layout: group g, lane sub = j mod g adds j = sub, sub + g, … in increasing
// order, then a butterfly over the g lanes. Every lane of the warp ends with the same bits. add()
// is called once per slot c in increasing c, by every lane.
struct LayoutSum {
    int g, sub, per, d;
    double part;
    __device__ __forceinline__ LayoutSum(int group, int lane, int dim) {
        g = group;
        sub = lane & (group - 1);
        per = kWarp / group;
        d = dim;
        part = 0.0;
    }
    __device__ __forceinline__ void add(int c, double term) {
        for (int t = 0; t < per; ++t) {  // uniform trip count: every lane shuffles
            const int src = sub + g * t;
            const double w = __shfl_sync(kAllLanes, term, src);
            if (kWarp * c + src < d) {
                part = part + w;
            }
        }
    }
    __device__ __forceinline__ double total() {
        for (int o = g >> 1; o > 0; o >>= 1) {
            part = part + __shfl_xor_sync(kAllLanes, part, o);
        }
        return part;
    }
};

// warp_normals puts the normals of the warp's chain at site into z[c] (coordinate lane + 32c; 0
// past d): the lanes compute the row's Philox blocks once each into the warp's buffer zs (32·PP
// elements) and read their coordinates back.
template <typename T, int PP>
__device__ __forceinline__ void warp_normals(uint2 key, unsigned long long site, unsigned int chain, int d,
                                             int lane, T* zs, T (&z)[PP]) {
    constexpr int W = Normals<T>::W;
    const int nb = (d + W - 1) / W;
    for (int L = lane; L < nb; L += kWarp) {
        const int cnt = d - L * W < W ? d - L * W : W;
        double w[W];
        Normals<T>::widened(philox_block(key, site, chain, static_cast<unsigned int>(L)), cnt, w);
#pragma unroll
        for (int k = 0; k < W; ++k) {
            if (k < cnt) {
                zs[L * W + k] = static_cast<T>(w[k]);
            }
        }
    }
    __syncwarp();
#pragma unroll
    for (int c = 0; c < PP; ++c) {
        const int j = lane + kWarp * c;
        z[c] = j < d ? zs[j] : T(0);
    }
    __syncwarp();  // the buffer is rewritten by the next draw
}

// warp_score: the score from the accumulator and, with the factor, AddGaussianFactor's update;
// returns ‖c − a x‖² (group layout) when want_q and the factor is set, else 0.
template <typename T, int PP>
__device__ __forceinline__ double warp_score(const Params<T>& P, long long row, bool live, int lane, int nv,
                                             const T (&x)[PP], T (&acc)[PP], T sum, bool want_q) {
    const int d = static_cast<int>(P.d);
#pragma unroll
    for (int c = 0; c < PP; ++c) {
        acc[c] = c < nv ? acc[c] / sum : T(0);
    }
    if (P.center == nullptr) {
        return 0.0;
    }
    LayoutSum q(static_cast<int>(P.group), lane, d);
    const T* cr = P.center + (live ? row * d : 0);
#pragma unroll
    for (int c = 0; c < PP; ++c) {
        double rr = 0.0;
        if (c < nv) {
            const double cj = live ? static_cast<double>(__ldg(cr + lane + kWarp * c)) : 0.0;
            const double r = cj - P.fa * static_cast<double>(x[c]);
            rr = r * r;
            acc[c] = static_cast<T>(static_cast<double>(acc[c]) + P.fa * r / P.fv);
        }
        if (want_q) {
            q.add(c, rr);
        }
    }
    return want_q ? q.total() : 0.0;
}

// warp_step is Step for the warp's chain (warp-uniform γ).
template <typename T, int PP>
__device__ __forceinline__ void warp_step(const Params<T>& P, const StepCoef& sc, unsigned long long site,
                                          unsigned int chain, int lane, int nv, T* zs, const T (&x)[PP],
                                          const T (&s)[PP], T (&out)[PP]) {
    const int d = static_cast<int>(P.d);
    if (sc.gamma != 0.0) {
        T z[PP];
        warp_normals<T, PP>(P.key, site, chain, d, lane, zs, z);
#pragma unroll
        for (int c = 0; c < PP; ++c) {
            if (c < nv) {
                out[c] = static_cast<T>(static_cast<double>(x[c]) + sc.beta * static_cast<double>(s[c]) +
                                        sc.gamma * static_cast<double>(z[c]));
            }
        }
    } else {
#pragma unroll
        for (int c = 0; c < PP; ++c) {
            if (c < nv) {
                out[c] = static_cast<T>(static_cast<double>(x[c]) + sc.beta * static_cast<double>(s[c]));
            }
        }
    }
}

template <typename T, int PP>
__device__ __forceinline__ void warp_store(T* dst, int lane, int nv, const T (&x)[PP]) {
#pragma unroll
    for (int c = 0; c < PP; ++c) {
        if (c < nv) {
            dst[lane + kWarp * c] = x[c];
        }
    }
}

template <typename T, int PP, int M>
__device__ void warp_chains(const Params<T>& P, T* sm) {
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int d = static_cast<int>(P.d);  // ≤ 32·PP
    const int nv = lane < d ? (d - lane + kWarp - 1) / kWarp : 0;
    const long long TK = P.tile;
    const bool multi = P.k > TK;
    T* sc0 = sm;
    T* sv1 = sc0 + TK;
    T* sv2 = sv1 + TK * P.l1;
    T* zs = sv2 + TK * P.d + warp * kWarp * PP;
    if (!multi) {
        stage(P, 0, P.k, sc0, sv1, sv2);
        __syncthreads();
    }
    const long long gstride = static_cast<long long>(gridDim.x) * kWarpsPerBlock;
    for (long long base = static_cast<long long>(blockIdx.x) * kWarpsPerBlock; base < P.n; base += gstride) {
        const long long row = base + warp;
        const bool live = row < P.n;  // uniform over the warp
        const unsigned int chain = static_cast<unsigned int>(P.chain0 + static_cast<unsigned long long>(row));
        const long long off = live ? row * d : 0;
        T x[PP], s[PP], v[PP];
#pragma unroll
        for (int c = 0; c < PP; ++c) {
            const bool ok = live && c < nv;
            const long long j = off + lane + kWarp * c;
            x[c] = ok ? P.x[j] : T(0);
            s[c] = M == kMALA && ok ? P.score[j] : T(0);
            v[c] = M == kULD && ok ? P.v[j] : T(0);
        }
        const StepCoef sc = step_coef(P, row, live);
        T lp = M == kMALA && live ? P.logp[row] : T(0);
        double nacc = M == kMALA && live ? P.accepted[row] : 0.0;
        long long tcount = 0, trow = 0;
        for (long long st = 0; st < P.steps; ++st) {
            if constexpr (M == kULA) {
                T acc[PP];
                Online<T> on;
                warp_eval<T, PP>(P, multi, sc0, sv1, sv2, lane, nv, x, acc, on);
                warp_score<T, PP>(P, row, live, lane, nv, x, acc, on.sum, false);
                warp_step<T, PP>(P, sc, P.site(st, P.p_step), chain, lane, nv, zs, x, acc, x);
            } else if constexpr (M == kMALA) {
                T y[PP], acc[PP];
                Online<T> on;
#pragma unroll
                for (int c = 0; c < PP; ++c) {
                    y[c] = T(0);
                }
                warp_step<T, PP>(P, sc, P.site(st, P.p_step), chain, lane, nv, zs, x, s, y);
                warp_eval<T, PP>(P, multi, sc0, sv1, sv2, lane, nv, y, acc, on);
                T lpy = on.m + Math<T>::log(on.sum);
                const double q = warp_score<T, PP>(P, row, live, lane, nv, y, acc, on.sum, true);
                if (P.center != nullptr) {
                    lpy = static_cast<T>(static_cast<double>(lpy) - q / (2.0 * P.fv));
                }
                LayoutSum fw(static_cast<int>(P.group), lane, d), bw(static_cast<int>(P.group), lane, d);
#pragma unroll
                for (int c = 0; c < PP; ++c) {
                    double ff = 0.0, rr = 0.0;
                    if (c < nv) {
                        const double xj = x[c], sxj = s[c], yj = y[c], syj = acc[c];
                        const double f = yj - xj - sc.h * sxj;
                        const double r = xj - yj - sc.h * syj;
                        ff = f * f;
                        rr = r * r;
                    }
                    fw.add(c, ff);
                    bw.add(c, rr);
                }
                const double fwd = fw.total(), bwd = bw.total();
                const double log_alpha =
                    static_cast<double>(lpy) - static_cast<double>(lp) + (fwd - bwd) / (4.0 * sc.h);
                const double u = mala_uniform(P.key, P.site(st, P.p_accept), chain);
                if (log(u) < log_alpha) {  // the same bits in every lane: a warp-uniform branch
#pragma unroll
                    for (int c = 0; c < PP; ++c) {
                        x[c] = y[c];
                        s[c] = acc[c];
                    }
                    lp = lpy;
                    nacc = nacc + 1.0;
                }
            } else {
                T acc[PP], z1[PP], z2[PP];
                Online<T> on;
                warp_eval<T, PP>(P, multi, sc0, sv1, sv2, lane, nv, x, acc, on);
                warp_score<T, PP>(P, row, live, lane, nv, x, acc, on.sum, false);
                const unsigned long long site = P.site(st, P.p_uld);
                warp_normals<T, PP>(P.key, site, chain, d, lane, zs, z1);
                warp_normals<T, PP>(P.key, site + 1, chain, d, lane, zs, z2);
#pragma unroll
                for (int c = 0; c < PP; ++c) {
                    if (c < nv) {
                        const double xr = x[c], vr = v[c], sr = acc[c];
                        const double xi1 = z1[c], xi2 = z2[c];
                        const double xn = xr + P.cx * vr + P.cxg * sr + P.l11 * xi1;
                        const double vn = P.e * vr + P.cv * sr + P.l21 * xi1 + P.l22 * xi2;
                        x[c] = static_cast<T>(xn);
                        v[c] = static_cast<T>(vn);
                    }
                }
            }
            if (P.trace != nullptr && ++tcount == P.thin) {
                tcount = 0;
                if (live) {
                    warp_store<T, PP>(P.trace + (trow * P.n + row) * d, lane, nv, x);
                }
                ++trow;
            }
        }
        if (!live) {
            continue;
        }
        warp_store<T, PP>(P.x + off, lane, nv, x);
        if constexpr (M == kMALA) {
            warp_store<T, PP>(P.score + off, lane, nv, s);
            if (lane == 0) {
                P.logp[row] = lp;
                P.accepted[row] = nacc;
            }
        }
        if constexpr (M == kULD) {
            warp_store<T, PP>(P.v + off, lane, nv, v);
        }
    }
}

template <typename T>
__device__ __forceinline__ Params<T> make_params(
    T* x, T* v, T* logp, T* score, double* accepted, const T* hs, const T* center, T* trace, const T* consts,
    long long n, long long d, long long k, long long cov, long long tile, long long steps, long long thin,
    long long group, double h, double beta, double gamma, double fa, double fv, double e, double cv, double cx,
    double cxg, double l11, double l21, double l22, unsigned long long seed, unsigned long long first,
    unsigned long long stride, unsigned long long p_step, unsigned long long p_accept, unsigned long long p_uld,
    unsigned long long chain0) {
    Params<T> P;
    P.x = x;
    P.v = v;
    P.logp = logp;
    P.score = score;
    P.accepted = accepted;
    P.hs = hs;
    P.center = center;
    P.trace = trace;
    P.tab = consts;
    P.n = n;
    P.d = d;
    P.k = k;
    P.iso = cov == kIsotropic;
    P.l1 = P.iso ? 1 : d;
    P.tile = tile;
    P.steps = steps;
    P.thin = thin;
    P.group = group;
    P.h = h;
    P.beta = beta;
    P.gamma = gamma;
    P.fa = fa;
    P.fv = fv;
    P.e = e;
    P.cv = cv;
    P.cx = cx;
    P.cxg = cxg;
    P.l11 = l11;
    P.l21 = l21;
    P.l22 = l22;
    P.key = philox_key(seed);
    P.first = first;
    P.stride = stride;
    P.p_step = p_step;
    P.p_accept = p_accept;
    P.p_uld = p_uld;
    P.chain0 = chain0;
    return P;
}

}  // namespace

#define CHAINS_PARAMS(T)                                                                                     \
    T *x, T *v, T *logp, T *score, double *accepted, const T *hs, const T *center, T *trace, const T *consts, \
        long long n, long long d, long long k, long long cov, long long tile, long long steps, long long thin, \
        long long group, double h, double beta, double gamma, double fa, double fv, double e, double cv,      \
        double cx, double cxg, double l11, double l21, double l22, unsigned long long seed,                   \
        unsigned long long first, unsigned long long stride, unsigned long long p_step,                        \
        unsigned long long p_accept, unsigned long long p_uld, unsigned long long chain0
#define CHAINS_ARGS                                                                                       \
    x, v, logp, score, accepted, hs, center, trace, consts, n, d, k, cov, tile, steps, thin, group, h, beta, \
        gamma, fa, fv, e, cv, cx, cxg, l11, l21, l22, seed, first, stride, p_step, p_accept, p_uld, chain0

#define CHAINS_ENTRY(NAME, T, MINB, BODY)                                                       \
    extern "C" __global__ void __launch_bounds__(kBlock, MINB) NAME(CHAINS_PARAMS(T)) {         \
        const Params<T> P = make_params<T>(CHAINS_ARGS);                                        \
        T* sm = reinterpret_cast<T*>(dynamic_smem);                                             \
        BODY;                                                                                   \
    }

// The entries of one method and dtype, each built for a minimum of resident blocks per SM (the
// largest that compiles without spilling on sm_80 and sm_90; kernels/ptx/resources.txt records the
// registers): SMALLB for row2 and row4 (float 3: at most 80 registers), ROW16B for row16 (float 3:
// at most 80; double 2: at most 128), WARPB for warp1 and warp2 (float 3), W8B for warp8 (double
// ULD 2); the others 1, which lets ptxas take what it needs.
#define CHAINS_ENTRIES(T, DT, M, MNAME, SMALLB, ROW16B, WARPB, W8B)                                        \
    CHAINS_ENTRY(chains_##MNAME##_row2_##DT, T, SMALLB, (row_chains<T, 2, M>(P, sm)))                      \
    CHAINS_ENTRY(chains_##MNAME##_row4_##DT, T, SMALLB, (row_chains<T, 4, M>(P, sm)))                      \
    CHAINS_ENTRY(chains_##MNAME##_row8_##DT, T, 1, (row_chains<T, 8, M>(P, sm)))                           \
    CHAINS_ENTRY(chains_##MNAME##_row16_##DT, T, ROW16B, (row_chains<T, 16, M>(P, sm)))                    \
    CHAINS_ENTRY(chains_##MNAME##_warp1_##DT, T, WARPB, (warp_chains<T, 1, M>(P, sm)))                     \
    CHAINS_ENTRY(chains_##MNAME##_warp2_##DT, T, WARPB, (warp_chains<T, 2, M>(P, sm)))                     \
    CHAINS_ENTRY(chains_##MNAME##_warp4_##DT, T, 1, (warp_chains<T, 4, M>(P, sm)))                         \
    CHAINS_ENTRY(chains_##MNAME##_warp8_##DT, T, W8B, (warp_chains<T, 8, M>(P, sm)))

CHAINS_ENTRIES(float, f32, kULA, ula, 3, 3, 3, 1)
CHAINS_ENTRIES(float, f32, kMALA, mala, 3, 3, 3, 1)
CHAINS_ENTRIES(float, f32, kULD, uld, 3, 3, 3, 1)
CHAINS_ENTRIES(double, f64, kULA, ula, 1, 2, 1, 1)
CHAINS_ENTRIES(double, f64, kMALA, mala, 1, 2, 1, 1)
CHAINS_ENTRIES(double, f64, kULD, uld, 1, 2, 1, 2)
