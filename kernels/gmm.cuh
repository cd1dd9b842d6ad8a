// Gaussian-mixture evaluation pieces shared by gmm.cu (the score kernels) and chains.cu (the
// fused chains, which evaluate the same mixture inside their step loops with gmm.cu's arithmetic):
// block copies into shared memory, the precision-dispatched math, the warp butterfly sum and the
// online log-sum-exp of the warp kernels.
#pragma once

constexpr int kWarp = 32;

// dynamic_smem: the block's dynamic shared memory, as many bytes as the launch asks for. (The host
// build of the kernels, kernels/hostexec, provides it as a per-block heap buffer instead.)
#ifndef CUDAHOST
extern __shared__ __align__(16) unsigned char dynamic_smem[];
#endif
constexpr unsigned kAllLanes = 0xffffffffu;

// block_copy copies len elements from global to shared memory with the whole block.
template <typename T>
__device__ __forceinline__ void block_copy(T* dst, const T* __restrict__ src, long long len) {
    for (long long i = threadIdx.x; i < len; i += blockDim.x) {
        dst[i] = __ldg(src + i);
    }
}

// Math<T>: the math functions in T's precision (float: the f-suffixed functions).
template <typename T>
struct Math;

template <>
struct Math<float> {
    __device__ __forceinline__ static float exp(float v) { return ::expf(v); }
    __device__ __forceinline__ static float log(float v) { return ::logf(v); }
    __device__ __forceinline__ static float expm1(float v) { return ::expm1f(v); }
    // fma is a·b + c rounded once (the build fuses no multiply-add unless the source asks).
    __device__ __forceinline__ static float fma(float a, float b, float c) { return ::fmaf(a, b, c); }
    __device__ __forceinline__ static float nan() { return __int_as_float(0x7fc00000); }
    __device__ __forceinline__ static float inf() { return __int_as_float(0x7f800000); }
    __device__ __forceinline__ static bool finite(float v) { return ::isfinite(v); }
};

template <>
struct Math<double> {
    __device__ __forceinline__ static double exp(double v) { return ::exp(v); }
    __device__ __forceinline__ static double log(double v) { return ::log(v); }
    __device__ __forceinline__ static double expm1(double v) { return ::expm1(v); }
    __device__ __forceinline__ static double fma(double a, double b, double c) { return ::fma(a, b, c); }
    __device__ __forceinline__ static double nan() { return __longlong_as_double(0x7ff8000000000000LL); }
    __device__ __forceinline__ static double inf() { return __longlong_as_double(0x7ff0000000000000LL); }
    __device__ __forceinline__ static bool finite(double v) { return ::isfinite(v); }
};

// warp_sum: butterfly sum over the 32 lanes of a warp; every lane ends with the same bits.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
    for (int o = kWarp / 2; o > 0; o >>= 1) {
        v += __shfl_xor_sync(kAllLanes, v, o);
    }
    return v;
}

// Online: the online log-sum-exp of the warp kernels, Σ_k exp(r_k − m) with m the running max
// and acc the matching weighted sum of gradients; r is warp-uniform, so is the branch. The
// updates are fused multiply-adds.
template <typename T>
struct Online {
    T m, sum;
    bool grow;  // the last term raised the max: acc = acc·f + g; otherwise acc += f·g
    T f;
    __device__ __forceinline__ void init() {
        m = -Math<T>::inf();
        sum = T(0);
    }
    // add adds term r. A term r = −∞ (an overflowing quadratic form) has weight 0 and changes
    // nothing, also while m is still −∞ (where r − m is NaN); a NaN r makes the sum NaN.
    __device__ __forceinline__ void add(T r) {
        grow = r > m;
        if (grow) {
            f = Math<T>::exp(m - r);  // 0 on the first term
            sum = Math<T>::fma(sum, f, T(1));
            m = r;
        } else if (r == -Math<T>::inf()) {
            f = T(0);
        } else {
            f = Math<T>::exp(r - m);
            sum += f;
        }
    }
    // update is acc·f + g or acc + f·g, each fused (one rounding).
    __device__ __forceinline__ T update(T acc, T g) const {
        return grow ? Math<T>::fma(acc, f, g) : Math<T>::fma(f, g, acc);
    }
};

// LseStep: one term r of the branch-free online log-sum-exp of the per-thread kernels. With
// delta = r − m, one exponential e^{−|delta|} is the rescale factor when the max grows (r > m,
// also on the first term, m = −∞) and the new term's weight otherwise; multiplying by 1 is exact,
// so these are the reference's two branches. A term r = −∞ gets weight 0 and scale 1 (its delta
// is NaN while m is still −∞); a NaN r gives NaN. The caller sets sum = sum·scale + w,
// acc = acc·scale + w·g and m = grow ? r : m.
template <typename T>
struct LseStep {
    bool grow;
    T scale, w;
    __device__ __forceinline__ LseStep(T r, T m) {
        const T delta = r - m;
        grow = delta > T(0);
        const T f = Math<T>::exp(grow ? -delta : delta);
        scale = grow ? f : T(1);
        w = grow ? T(1) : (r == -Math<T>::inf() ? T(0) : f);
    }
};

// RowTile: a shared-memory tile of components for the per-thread kernels at a shared level
// (gmm.cu rows_isodiag, chains.cu row variants), padded to the kernel's bound D:
//   mu (tile·D) | lam (tile·L) | c0 (tile),   L = D (diagonal) or 1 (isotropic),
// component kk's a μ and 1/c at mu + kk·D and lam + kk·L (diagonal), coordinates j ≥ d zero. With
// the row's padding coordinates also zero, those coordinates contribute exact zeros to every sum,
// so the hot loop needs no test of j < d, and the bound-D code computes, for d < D, the same bits
// as code for exactly d. The launchers size the tile as tile · (D + L + 1) elements.
template <typename T, int D>
struct RowTile {
    T* mu;
    T* lam;
    T* c0;
    bool iso;

    __device__ __forceinline__ RowTile(T* sm, long long tile, bool iso_)
        : mu(sm), lam(sm + tile * D), c0(sm + tile * D + tile * (iso_ ? 1 : D)), iso(iso_) {}

    // stage copies components [k0, k0 + nk) of the consts table [cst (K) | 1/c (K·l1) | a μ (K·d)]
    // with the whole block (no barrier).
    __device__ __forceinline__ void stage(const T* __restrict__ tab, long long K, long long d,
                                          long long k0, int nk) const {
        const T* inv = tab + K;
        const T* am = inv + K * (iso ? 1 : d);
        for (int i = threadIdx.x; i < nk * D; i += blockDim.x) {
            const int kk = i / D, j = i % D;
            const long long g = (k0 + kk) * d + j;
            mu[i] = j < d ? __ldg(am + g) : T(0);
            if (!iso) {
                lam[i] = j < d ? __ldg(inv + g) : T(0);
            }
        }
        for (int i = threadIdx.x; i < nk; i += blockDim.x) {
            c0[i] = __ldg(tab + k0 + i);
            if (iso) {
                lam[i] = __ldg(inv + k0 + i);
            }
        }
    }
};

// row_term adds component kk of a RowTile to one thread's row, the hot loop of the per-thread
// kernels (gmm.cu rows_isodiag, chains.cu row_eval), which share it so that a fused chain replays
// the score op bit for bit. x holds the row (coordinates j ≥ d zero); with the component's
// a μ_k, 1/c_k and cst_k (docs/math.md §1.1):
//
//   t_j = e_j / c_kj with e_j = x_j − a μ_kj,   q = Σ_j e_j t_j,   r = cst_k − ½ q,   g = −t
//
// then the online log-sum-exp step (LseStep) on (m, sum) and, with vec, acc ← acc·scale − w·t.
// The products are fused where they feed a sum: q's terms as fma(e_j, t_j, ·) and the updates
// as fma(acc, scale, −w t_j), fma(sum, scale, w) — 5 floating-point instructions per coordinate
// and component where the unfused form takes 8, each fused step rounding once instead of twice.
// The terms of q are added sequentially in j, so the padding coordinates add exact zeros at the
// end and the bound-D code gives, at every d ≤ D, the bits exact-d code would (one dependent chain
// of D fused multiply-adds: 16 instructions for D = 16, where a pairwise tree takes 23); double
// at D = 16 keeps the tree of a 16-lane butterfly (pairs j, j + 8, then j, j + 4, …), which also
// gives exact-d bits, for its registers (below). KEEP_T keeps t in registers between q and the
// update; otherwise it is recomputed there from x and the tile (the same bits), which saves
// registers for the widest variants.
// Returns r (the component's logit).
template <typename T, int D, bool KEEP_T>
__device__ __forceinline__ T row_term(const T (&x)[D], const RowTile<T, D>& tl, int kk, bool vec,
                                      T (&acc)[D], T& m, T& sum) {
    static_assert(D <= 16, "per-thread rows stop at d = 16");
    const T* mu = tl.mu + kk * D;
    const T* lam = tl.iso ? tl.lam + kk : tl.lam + kk * D;
    T t[KEEP_T ? D : 1];
    T q = T(0);
    if constexpr (D <= 8 || sizeof(T) == 4) {
#pragma unroll
        for (int j = 0; j < D; ++j) {
            const T e = x[j] - mu[j];
            const T tj = e * (tl.iso ? lam[0] : lam[j]);
            q = Math<T>::fma(e, tj, q);
            if constexpr (KEEP_T) {
                t[j] = tj;
            }
        }
    } else {
        // Double, D = 16: b_i = e_i t_i + e_{i+8} t_{i+8} formed in the order a pairwise tree
        // consumes them, so that at most three partial sums are live (the double chains run short
        // of registers, and the sequential chain makes ptxas spill there).
        static_assert(!KEEP_T, "double rows of 16 recompute t");
        auto pair = [&](int i) {
            const T el = x[i] - mu[i], eh = x[i + 8] - mu[i + 8];
            return Math<T>::fma(el, el * (tl.iso ? lam[0] : lam[i]),
                                eh * (eh * (tl.iso ? lam[0] : lam[i + 8])));
        };
        const T q0 = pair(0) + pair(4);
        const T q02 = q0 + (pair(2) + pair(6));
        const T q1 = pair(1) + pair(5);
        q = q02 + (q1 + (pair(3) + pair(7)));
    }
    const T r = tl.c0[kk] - T(0.5) * q;
    const LseStep<T> st(r, m);
    sum = Math<T>::fma(sum, st.scale, st.w);
    if (vec) {
#pragma unroll
        for (int j = 0; j < D; ++j) {
            T tj;
            if constexpr (KEEP_T) {
                tj = t[j];
            } else {
                tj = (x[j] - mu[j]) * (tl.iso ? lam[0] : lam[j]);
            }
            acc[j] = Math<T>::fma(acc[j], st.scale, -(st.w * tj));
        }
    }
    m = st.grow ? r : m;
    return r;
}

// warp_term adds component kk to the row one warp holds at a shared level — lane l owns
// coordinates l + 32c, c < nv ≤ P — the hot loop of the warp kernels (gmm.cu warp_isodiag,
// chains.cu warp_eval), shared so that a fused chain replays the score op bit for bit. mu, lam
// and c0 are the component's a μ_k, 1/c_k (one entry when iso) and cst_k. As row_term:
// t_j = e_j / c_kj, each lane's part of q = Σ e_j t_j by fma(e_j, t_j, ·), q by the butterfly
// warp_sum (every lane holds the same bits), r = cst_k − ½ q, the Online step and, with vec,
// acc ← update(acc, −t). KEEP_T keeps t between the reduction and the update (P more registers);
// otherwise it is recomputed (the same bits). Returns r.
template <typename T, int P, bool KEEP_T>
__device__ __forceinline__ T warp_term(const T (&x)[P], const T* mu, const T* lam, bool iso, T c0,
                                       int lane, int nv, bool vec, T (&acc)[P], Online<T>& on) {
    const T inv0 = iso ? lam[0] : T(0);
    T t[KEEP_T ? P : 1];
    T part = T(0);
#pragma unroll
    for (int c = 0; c < P; ++c) {
        T tc = T(0);
        if (c < nv) {
            const int j = lane + kWarp * c;
            const T e = x[c] - mu[j];
            tc = e * (iso ? inv0 : lam[j]);
            part = Math<T>::fma(e, tc, part);
        }
        if constexpr (KEEP_T) {
            t[c] = tc;
        }
    }
    part = warp_sum(part);
    const T r = c0 - T(0.5) * part;
    on.add(r);
    if (vec) {
#pragma unroll
        for (int c = 0; c < P; ++c) {
            T tc;
            if constexpr (KEEP_T) {
                tc = t[c];
            } else {
                tc = T(0);
                if (c < nv) {
                    const int j = lane + kWarp * c;
                    tc = (x[c] - mu[j]) * (iso ? inv0 : lam[j]);
                }
            }
            acc[c] = on.update(acc[c], -tc);
        }
    }
    return r;
}
