// Gaussian-mixture scores (docs/math.md §1.1), the GPU twin of ops.cpuBackend.GMMScore in
// ops/score_cpu.go, which is the specification. For row x at noise (a, s) component k has mean
// m_k = a μ_k and covariance C_k = U_k diag(c_k) U_kᵀ, c_k = a² λ_k + s; with z_k = U_kᵀ (x − m_k)
// (z = x − m_k when U_k = I):
//
//   r_k = log w_k − ½ (d log 2π + Σ_j log c_kj + Σ_j z_kj² / c_kj)
//   log p = logsumexp_k r_k,  γ_k = e^{r_k − log p},  ∇log p = Σ_k γ_k g_k,  g_k = −U_k (z_k / c_k)
//   D = (x + s ∇log p) / a
//
// One fused pass over the components per row with an online log-sum-exp: running max m, running
// sum Σ e^{r − m} and running weighted gradient Σ e^{r − m} g, rescaled by e^{m_old − m_new} when the
// max grows; e^{r} itself is never formed (|x| = 1e4, σ = 1e-3 stays finite). Responsibilities are
// written as logits r_k during the pass and normalised in place, e^{r_k − log p}, at the end of the
// row, by the thread that wrote them. Every kernel computes in its element type (float kernels in
// float, double kernels in double).
//
// Tables. The launcher uploads once per mixture and dtype the raw parameters
//   params = [log w (K) | λ (K·l1) | μ (K·d) | U (K·d·d, full only)],   l1 = 1 (isotropic) or d,
// and gmm_prep_<dtype> turns them, for one shared noise level, into per-component constants
//   consts = [cst (K) | 1/c (K·l1) | a μ (K·d)],   cst_k = log w_k − ½ (d log 2π + Σ_j log c_kj),
// so that the hot loop spends no log or division per (row, component, coordinate). With per-row
// levels (a, s differ by row) the kernels read the raw table and compute c, 1/c, log c and a μ per
// row: correct, and slower for diagonal mixtures (a log and a division per coordinate). Both tables
// have the same shape, so one staging code serves both.
//
// Kernel variants, chosen by the launcher (ops/cuda/gmm.go) from the covariance kind and d; names
// gmm_score_<variant>_<dt> for a shared level, gmm_score_<variant>lv_<dt> for per-row levels
// (separate entries: the per-row code needs more registers and would lower the shared-level code's
// occupancy). Blocks of 256 threads unless said otherwise.
//   row4, row8, row16     isotropic/diagonal, d ≤ 4 / ≤ 8 / ≤ 16: one thread per row; x and the
//                         gradient accumulator in registers. At a shared level the components are
//                         staged in RowTile tiles padded with zeros to the bound D (gmm.cuh) and
//                         each (row, component) term is row_term, shared with the fused chains: at
//                         d = 16 in float 118 instructions per thread and term for the score
//                         without the logits (sm_90 SASS; the loop has a copy per request, see
//                         tile_terms), 3.7 warp-instructions per (row, component) against 104 for
//                         the warp kernel that served 8 < d ≤ 16 before.
//                         Per-row levels run the unpadded rows_small (a bound of 4, 8 or 16, exact
//                         code for d = 2). All 256 rows read each tile entry as a broadcast. The
//                         online update is branch-free (one exponential e^{−|r − m|} serves as
//                         rescale factor or as weight), as threads disagree on whether the max
//                         grows.
//   rowfull4, rowfull8    the same for full covariances; the tiles also hold U_k (d² per component).
//   warp<P>               isotropic/diagonal, 16 < d ≤ 32·P, P ∈ {1, 2, 4, 8, 16} (d ≤ 512): one warp
//                         per row, lane l owns coordinates l + 32c, c < P, in registers (x, the
//                         accumulator, and for P·sizeof(T) ≤ 32 bytes the component's gradient;
//                         wider variants recompute it from shared memory). The quadratic form is a
//                         butterfly shuffle reduction, so every lane holds the same bits of r_k and
//                         the online-max branch is warp-uniform. The block's 8 rows share tiles of
//                         `tile` components staged in shared memory.
//   wide                  isotropic/diagonal, d > 512: one warp per row; coordinates in a stride-32
//                         loop; tables read through the read-only cache (no block synchronisation);
//                         the gradient accumulator lives in the row's score (or denoiser) output,
//                         touched only by the lane that owns the coordinate.
//   full                  full covariances, d > 8: one warp per row, blockDim.x / 32 rows per block
//                         (the launcher sizes it to fit 48 KiB of shared memory). Per component the
//                         block streams U_k through one 32×32 shared tile (XOR-swizzled: conflict-
//                         free along rows and along columns) twice, shared by its rows:
//                         z = U_kᵀ (x − m_k), the lane owning a column and the e_i arriving by
//                         shuffle from the lane that computed them; t = z / c goes to a per-warp
//                         shared vector; then g = −U_k t, the lane owning a row. The O(d²) products
//                         dwarf the O(d) traffic of keeping x and the accumulator (in the output, as
//                         for wide) in global memory, so d has no compile-time bound.
// Rows advance in grid-stride loops that are uniform over the block, so every thread reaches every
// __syncthreads; threads or warps without a row, or whose row has an invalid level, only help stage
// tiles. The gradient and its accumulator are skipped when neither score nor denoiser is requested.
//
// Noise: kind VE (a = 1, s = σ²), VP (a = e^{−t}, s = −expm1(−2t)) or Affine (a, s given). A shared
// level arrives as (a, s) computed by the launcher in float64; per-row levels (pointer, 0 when
// absent) are converted in the kernel's precision. A row whose level is not a finite number > 0
// gets NaN in every requested output; a NaN in x makes its row NaN only.
//
// Every parameter is 8 bytes wide (pointers, long long, double). Score kernels take
//   (logp, score, den, resp, x, n, d, k, cov, params, consts, noise, levels, a, s, tile)
// with absent outputs as null pointers; cov and noise are the values of ops.CovKind and
// ops.NoiseKind; consts is read only when levels is null; tile (components per shared tile) is read
// by the row and warp variants, whose dynamic shared memory must hold tile · (1 + l1 + d + (full ?
// d² : 0)) elements; full needs (32·32 + warps · 32·⌈d/32⌉) elements, wide none.
// gmm_prep_<dt> takes (consts, params, d, k, cov, a, s), one warp per component.

#include "gmm.cuh"

namespace {

constexpr int kBlock = 256;
constexpr int kWarpsPerBlock = kBlock / kWarp;
constexpr int kTile = 32;  // U tiles are kTile × kTile

// The values of ops.CovKind and ops.NoiseKind.
constexpr long long kIsotropic = 1;
constexpr long long kFull = 3;
constexpr long long kVE = 1;

// log(2π), rounded to T.
template <typename T>
__device__ __forceinline__ T log_2pi() {
    return T(1.83787706640934548356065947281123527);
}

// Launch arguments, unpacked once per thread.
template <typename T>
struct Args {
    T* logp;
    T* score;
    T* den;
    T* resp;
    const T* x;
    long long n, d, k;
    long long l1;     // entries of λ (and 1/c) per component: 1 (isotropic) or d
    long long cov;    // ops.CovKind
    long long noise;  // ops.NoiseKind
    long long tile;   // components per shared-memory tile (row and isotropic/diagonal warp kernels)
    const T* tab;     // [c0 (K) | v1 (K·l1) | v2 (K·d)]: consts (shared level) or params (per row)
    const T* u;       // full: U (K·d·d); null otherwise
    const T* levels;  // per-row levels or null
    T a, s;           // the shared level's (a, s)
    bool vec;         // the gradient accumulator is needed (score or denoiser requested)

    __device__ __forceinline__ const T* c0() const { return tab; }
    __device__ __forceinline__ const T* v1() const { return tab + k; }
    __device__ __forceinline__ const T* v2() const { return tab + k + k * l1; }
};

template <typename T>
__device__ __forceinline__ Args<T> make_args(T* logp, T* score, T* den, T* resp, const T* x,
                                             long long n, long long d, long long k, long long cov,
                                             const T* params, const T* consts, long long noise,
                                             const T* levels, double a, double s, long long tile) {
    Args<T> A;
    A.logp = logp;
    A.score = score;
    A.den = den;
    A.resp = resp;
    A.x = x;
    A.n = n;
    A.d = d;
    A.k = k;
    A.l1 = cov == kIsotropic ? 1 : d;
    A.cov = cov;
    A.noise = noise;
    A.tile = tile;
    A.tab = levels != nullptr ? params : consts;
    A.u = cov == kFull ? params + k + k * A.l1 + k * d : nullptr;
    A.levels = levels;
    A.a = T(a);
    A.s = T(s);
    A.vec = score != nullptr || den != nullptr;
    return A;
}

// row_noise sets (a, s) of a row; false when its per-row level is not a finite number > 0.
template <typename T>
__device__ __forceinline__ bool row_noise(const Args<T>& A, long long row, T& a, T& s) {
    if (A.levels == nullptr) {
        a = A.a;
        s = A.s;
        return true;
    }
    const T t = A.levels[row];
    if (!(t > T(0)) || !Math<T>::finite(t)) {
        return false;
    }
    if (A.noise == kVE) {
        a = T(1);
        s = t * t;
    } else {
        a = Math<T>::exp(-t);
        s = -Math<T>::expm1(T(-2) * t);
    }
    return true;
}

// level_coef returns 1/c and log c for c = a² λ + s, the constants one variance λ needs at a
// per-row level. Out of line on purpose: per-row paths call it per coordinate, and inlining its
// division and logarithm into every unrolled copy would multiply the module's JIT time.
template <typename T>
struct Coef {
    T inv, logc;
};

template <typename T>
__device__ __noinline__ Coef<T> level_coef(T a, T s, T lam) {
    const T c = a * a * lam + s;
    Coef<T> r;
    r.inv = T(1) / c;
    r.logc = Math<T>::log(c);
    return r;
}

template <typename T>
__device__ __noinline__ T level_inv(T a, T s, T lam) {
    return T(1) / (a * a * lam + s);
}

// stage copies the table rows of components [k0, k0 + nk) (and their U when su is not null) into
// shared memory: sc0 (nk), sv1 (nk·l1), sv2 (nk·d), su (nk·d·d).
template <typename T>
__device__ __forceinline__ void stage(const Args<T>& A, long long k0, long long nk, T* sc0, T* sv1,
                                      T* sv2, T* su) {
    block_copy(sc0, A.c0() + k0, nk);
    block_copy(sv1, A.v1() + k0 * A.l1, nk * A.l1);
    block_copy(sv2, A.v2() + k0 * A.d, nk * A.d);
    if (su != nullptr) {
        block_copy(su, A.u + k0 * A.d * A.d, nk * A.d * A.d);
    }
}

// U tiles: element (ii, jj) of a kTile × kTile tile sits at ii·32 + (jj ^ ii). A warp reading a
// tile row (fixed ii, jj = lane) or a tile column (ii = lane, fixed jj) touches 32 distinct banks.
__device__ __forceinline__ int swz(int ii, int jj) { return ii * kTile + (jj ^ ii); }

// load_tile stages U_k[32 bi + ii][32 bj + jj] (zero outside d × d) with the whole block.
template <typename T>
__device__ __forceinline__ void load_tile(T* su, const T* __restrict__ uk, long long d, int bi,
                                          int bj) {
    for (int e = threadIdx.x; e < kTile * kTile; e += blockDim.x) {
        const int ii = e / kTile, jj = e % kTile;
        const long long i = static_cast<long long>(bi) * kTile + ii;
        const long long j = static_cast<long long>(bj) * kTile + jj;
        su[swz(ii, jj)] = (i < d && j < d) ? __ldg(uk + i * d + j) : T(0);
    }
}

// nan_row writes NaN to every requested output of row; the callers' threads split the work as
// lane, lane + step, ….
template <typename T>
__device__ void nan_row(const Args<T>& A, long long row, int lane, int step) {
    const T nan = Math<T>::nan();
    if (lane == 0 && A.logp != nullptr) {
        A.logp[row] = nan;
    }
    for (long long j = lane; j < A.d; j += step) {
        if (A.score != nullptr) {
            A.score[row * A.d + j] = nan;
        }
        if (A.den != nullptr) {
            A.den[row * A.d + j] = nan;
        }
    }
    if (A.resp != nullptr) {
        for (long long c = lane; c < A.k; c += step) {
            A.resp[row * A.k + c] = nan;
        }
    }
}

// finish_resp turns the logits of row (component c written by the thread with c ≡ lane mod step,
// which is the one that normalises it) into responsibilities.
template <typename T>
__device__ __forceinline__ void finish_resp(const Args<T>& A, long long row, T lse, int lane,
                                            int step) {
    if (A.resp == nullptr) {
        return;
    }
    T* r = A.resp + row * A.k;
    for (long long c = lane; c < A.k; c += step) {
        r[c] = Math<T>::exp(r[c] - lse);
    }
}

// store_coord writes coordinate j of row's score and denoiser from the accumulated gradient.
template <typename T>
__device__ __forceinline__ void store_coord(const Args<T>& A, long long row, long long j, T x,
                                            T acc, T sum, T a, T s) {
    const T sc = acc / sum;
    if (A.score != nullptr) {
        A.score[row * A.d + j] = sc;
    }
    if (A.den != nullptr) {
        A.den[row * A.d + j] = (x + s * sc) / a;
    }
}

// finish_row writes the outputs of a per-thread kernel's row from its online log-sum-exp state
// (m, sum) and gradient accumulator: log p, the d = dd ≤ D coordinates of the score and denoiser,
// and the responsibilities.
template <typename T, int D>
__device__ __forceinline__ void finish_row(const Args<T>& A, long long row, int dd, const T (&x)[D],
                                           const T (&acc)[D], T m, T sum, T a, T s) {
    const T lse = m + Math<T>::log(sum);
    if (A.logp != nullptr) {
        A.logp[row] = lse;
    }
    if (A.vec) {
#pragma unroll
        for (int j = 0; j < D; ++j) {
            if (j < dd) {
                store_coord(A, row, j, x[j], acc[j], sum, a, s);
            }
        }
    }
    finish_resp(A, row, lse, 0, 1);
}

// ---------------------------------------------------------------------------------------------
// One thread per row with the unpadded tables: per-row levels (d ≤ 16) and full covariances
// (d ≤ 8); shared-level isotropic and diagonal mixtures run rows_isodiag below. D is the number of
// coordinates held in registers: d itself when EXACT, otherwise a bound on d (coordinates j ≥ d
// are zero and skipped).

template <typename T, int D, bool EXACT, bool PERROW, bool FULL>
__device__ void rows_small(const Args<T>& A, T* sm) {
    static_assert(PERROW || FULL, "shared-level isotropic and diagonal rows run rows_isodiag");
    const long long K = A.k, TK = A.tile, l1 = A.l1;
    const int dd = EXACT ? D : static_cast<int>(A.d);
    const bool iso = A.cov == kIsotropic;
    T* sc0 = sm;
    T* sv1 = sc0 + TK;
    T* sv2 = sv1 + TK * l1;
    T* su = FULL ? sv2 + TK * dd : nullptr;
    const T half = T(0.5), l2pi = log_2pi<T>(), dT = T(dd);
    const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
    for (long long base = static_cast<long long>(blockIdx.x) * blockDim.x; base < A.n;
         base += stride) {
        const long long row = base + threadIdx.x;
        const bool live = row < A.n;
        T a = T(1), s = T(0);
        const bool ok = live && row_noise(A, row, a, s);
        T x[D], acc[D];
#pragma unroll
        for (int j = 0; j < D; ++j) {
            x[j] = live && j < dd ? A.x[row * dd + j] : T(0);
            acc[j] = T(0);
        }
        T m = -Math<T>::inf(), sum = T(0);
        for (long long k0 = 0; k0 < K; k0 += TK) {
            const long long nk = K - k0 < TK ? K - k0 : TK;
            __syncthreads();
            stage(A, k0, nk, sc0, sv1, sv2, su);
            __syncthreads();
            if (!ok) {
                continue;
            }
            for (int kk = 0; kk < nk; ++kk) {
                const T* mu = sv2 + kk * dd;
                const T* U = FULL ? su + kk * dd * dd : nullptr;  // U[i·d + j]: component i of vector j
                T r;
                T v[D];  // the gradient g, or for full covariances t = z / c (then g = −U t)
                if (!FULL && iso) {  // per-row levels (the static_assert)
                    const Coef<T> cf = level_coef(a, s, sv1[kk]);
                    const T inv = cf.inv;
                    const T cst = sc0[kk] - half * (dT * (l2pi + cf.logc));
                    T q = T(0);
#pragma unroll
                    for (int j = 0; j < D; ++j) {
                        T e = T(0);
                        if (j < dd) {
                            e = x[j] - a * mu[j];
                        }
                        q += e * e;
                        v[j] = -e * inv;
                    }
                    r = cst - half * (q * inv);
                } else {
                    const T* lam = sv1 + kk * dd;
                    T part = T(0);
                    T e[D];
#pragma unroll
                    for (int j = 0; j < D; ++j) {
                        e[j] = j < dd ? x[j] - (PERROW ? a * mu[j] : mu[j]) : T(0);
                    }
#pragma unroll
                    for (int j = 0; j < D; ++j) {
                        v[j] = T(0);
                        if (j < dd) {
                            T w = e[j];  // diagonal: e_j; full: z_j = Σ_i U_ij e_i
                            if (FULL) {
                                w = T(0);
#pragma unroll
                                for (int i = 0; i < D; ++i) {
                                    if (i < dd) {
                                        w += U[i * dd + j] * e[i];
                                    }
                                }
                            }
                            T inv;
                            if (PERROW) {
                                const Coef<T> cf = level_coef(a, s, lam[j]);
                                inv = cf.inv;
                                part += cf.logc;
                            } else {
                                inv = lam[j];
                            }
                            part += w * w * inv;
                            v[j] = FULL ? w * inv : -w * inv;
                        }
                    }
                    r = PERROW ? sc0[kk] - half * (dT * l2pi + part) : sc0[kk] - half * part;
                }
                // Online log-sum-exp without divergence (LseStep, gmm.cuh).
                const LseStep<T> st(r, m);
                const T scale = st.scale;
                const T p = st.w;
                const bool grow = st.grow;
                sum = sum * scale + p;
                if (A.vec) {
#pragma unroll
                    for (int i = 0; i < D; ++i) {
                        T g = v[i];
                        if (FULL) {
                            T gi = T(0);
#pragma unroll
                            for (int j = 0; j < D; ++j) {
                                if (i < dd && j < dd) {
                                    gi += U[i * dd + j] * v[j];
                                }
                            }
                            g = -gi;
                        }
                        acc[i] = acc[i] * scale + p * g;
                    }
                }
                m = grow ? r : m;
                if (A.resp != nullptr) {
                    A.resp[row * K + k0 + kk] = r;
                }
            }
        }
        if (!live) {
            continue;
        }
        if (!ok) {
            nan_row(A, row, 0, 1);
            continue;
        }
        finish_row<T, D>(A, row, dd, x, acc, m, sum, a, s);
    }
}

// tile_terms adds the nk components of the staged tile to one thread's row by row_term, compiled
// once per (VEC, RESP): the component loop then tests neither whether the gradient is wanted nor
// whether the logits are stored (about 6 of its ~130 instructions per term for d = 16).
template <typename T, int D, bool VEC, bool RESP>
__device__ __forceinline__ void tile_terms(const Args<T>& A, const RowTile<T, D>& tl, long long row,
                                           long long k0, int nk, const T (&x)[D], T (&acc)[D],
                                           T& m, T& sum) {
    constexpr bool kKeepT = D * sizeof(T) <= 64;
    T* resp = RESP ? A.resp + row * A.k + k0 : nullptr;
    for (int kk = 0; kk < nk; ++kk) {
        const T r = row_term<T, D, kKeepT>(x, tl, kk, VEC, acc, m, sum);
        if constexpr (RESP) {
            resp[kk] = r;
        }
    }
}

// d ≤ 16, isotropic or diagonal at a shared level: one thread per row, the row's x and gradient
// accumulator in registers padded with zeros to the bound D, the components in RowTile<T, D> tiles,
// each (row, component) term by row_term (gmm.cuh, shared with the fused chains).
template <typename T, int D>
__device__ void rows_isodiag(const Args<T>& A, T* sm) {
    const long long K = A.k, TK = A.tile;
    const int dd = static_cast<int>(A.d);  // ≤ D
    const RowTile<T, D> tl(sm, TK, A.cov == kIsotropic);
    const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
    for (long long base = static_cast<long long>(blockIdx.x) * blockDim.x; base < A.n;
         base += stride) {
        const long long row = base + threadIdx.x;
        const bool live = row < A.n;
        T x[D], acc[D];
#pragma unroll
        for (int j = 0; j < D; ++j) {
            x[j] = live && j < dd ? A.x[row * dd + j] : T(0);
            acc[j] = T(0);
        }
        T m = -Math<T>::inf(), sum = T(0);
        for (long long k0 = 0; k0 < K; k0 += TK) {
            const int nk = static_cast<int>(K - k0 < TK ? K - k0 : TK);
            __syncthreads();
            tl.stage(A.tab, K, A.d, k0, nk);
            __syncthreads();
            if (!live) {
                continue;
            }
            if (A.vec) {
                if (A.resp != nullptr) {
                    tile_terms<T, D, true, true>(A, tl, row, k0, nk, x, acc, m, sum);
                } else {
                    tile_terms<T, D, true, false>(A, tl, row, k0, nk, x, acc, m, sum);
                }
            } else if (A.resp != nullptr) {
                tile_terms<T, D, false, true>(A, tl, row, k0, nk, x, acc, m, sum);
            } else {
                tile_terms<T, D, false, false>(A, tl, row, k0, nk, x, acc, m, sum);
            }
        }
        if (live) {
            finish_row<T, D>(A, row, dd, x, acc, m, sum, A.a, A.s);
        }
    }
}

// Instantiations. Small d gets its own entries so that the hot 2-D and 3-D code is not held to the
// register count of d = 8: for d ≤ 4, exact code per d with a shared level, and exact code for
// d = 2 with a bound of 4 otherwise for per-row levels (that path is dominated by its
// per-coordinate logarithms and divisions); for 5 ≤ d ≤ 8 a bound of 8. Fewer instantiations also
// keep the module's JIT time down.
template <typename T, bool PERROW, bool FULL>
__device__ __forceinline__ void rows_upto4(const Args<T>& A, T* sm) {
    if constexpr (PERROW) {
        if (A.d == 2) {
            rows_small<T, 2, true, true, FULL>(A, sm);
        } else {
            rows_small<T, 4, false, true, FULL>(A, sm);
        }
    } else if constexpr (FULL) {
        switch (A.d) {
            case 1: rows_small<T, 1, true, false, true>(A, sm); break;
            case 2: rows_small<T, 2, true, false, true>(A, sm); break;
            case 3: rows_small<T, 3, true, false, true>(A, sm); break;
            default: rows_small<T, 4, true, false, true>(A, sm); break;  // the launcher sends d ≤ 4
        }
    } else {
        switch (A.d) {
            case 1: rows_isodiag<T, 1>(A, sm); break;
            case 2: rows_isodiag<T, 2>(A, sm); break;
            case 3: rows_isodiag<T, 3>(A, sm); break;
            default: rows_isodiag<T, 4>(A, sm); break;  // the launcher sends d ≤ 4
        }
    }
}

// 4 < d ≤ 8 and 8 < d ≤ 16: a bound D of 8 or 16 (RowTile's zero padding makes it exact code).
template <typename T, int D, bool PERROW>
__device__ __forceinline__ void rows_bound(const Args<T>& A, T* sm) {
    if constexpr (PERROW) {
        rows_small<T, D, false, true, false>(A, sm);
    } else {
        rows_isodiag<T, D>(A, sm);
    }
}

// ---------------------------------------------------------------------------------------------
// 16 < d ≤ 32·P: one warp per row, P coordinates per lane in registers.

// KEEP_G: the gradient of the current component stays in registers between the reduction and the
// accumulator update (P more registers); otherwise it is recomputed from shared memory, which keeps
// the widest variants (P·sizeof(T) > 32 bytes) at a useful occupancy.
template <typename T, int P, bool PERROW>
__device__ void warp_isodiag(const Args<T>& A, T* sm) {
    constexpr bool kKeepG = P * sizeof(T) <= 32;
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const long long K = A.k, TK = A.tile, l1 = A.l1;
    const int d = static_cast<int>(A.d);               // ≤ 32·P ≤ 512
    const int nv = lane < d ? (d - lane + kWarp - 1) / kWarp : 0;  // coordinates lane + 32c, c < nv
    const bool iso = A.cov == kIsotropic;
    T* sc0 = sm;
    T* sv1 = sc0 + TK;
    T* sv2 = sv1 + TK * l1;
    const T half = T(0.5), l2pi = log_2pi<T>(), dT = T(d);
    const long long stride = static_cast<long long>(gridDim.x) * kWarpsPerBlock;
    for (long long base = static_cast<long long>(blockIdx.x) * kWarpsPerBlock; base < A.n;
         base += stride) {
        const long long row = base + warp;
        const bool live = row < A.n;
        T a = T(1), s = T(0);
        const bool ok = live && row_noise(A, row, a, s);
        T x[P], acc[P];
#pragma unroll
        for (int c = 0; c < P; ++c) {
            x[c] = live && c < nv ? A.x[row * d + lane + kWarp * c] : T(0);
            acc[c] = T(0);
        }
        Online<T> on;
        on.init();
        for (long long k0 = 0; k0 < K; k0 += TK) {
            const long long nk = K - k0 < TK ? K - k0 : TK;
            __syncthreads();
            stage<T>(A, k0, nk, sc0, sv1, sv2, nullptr);
            __syncthreads();
            if (!ok) {
                continue;
            }
            for (int kk = 0; kk < nk; ++kk) {
                const T* mu = sv2 + kk * d;
                const T* lam = sv1 + kk * l1;
                const long long kc = k0 + kk;
                if constexpr (!PERROW) {
                    const T r = warp_term<T, P, kKeepG>(x, mu, lam, iso, sc0[kk], lane, nv, A.vec,
                                                        acc, on);
                    if (A.resp != nullptr && lane == (kc % kWarp)) {
                        A.resp[row * K + kc] = r;
                    }
                    continue;
                }
                T inv0 = T(0), cst = sc0[kk];
                if (iso) {
                    if (PERROW) {
                        const Coef<T> cf = level_coef(a, s, lam[0]);
                        inv0 = cf.inv;
                        cst = cst - half * (dT * (l2pi + cf.logc));
                    } else {
                        inv0 = lam[0];
                    }
                }
                T g[kKeepG ? P : 1];
                T part = T(0);
#pragma unroll
                for (int c = 0; c < P; ++c) {
                    if (kKeepG) {
                        g[c] = T(0);
                    }
                    if (c < nv) {
                        const int j = lane + kWarp * c;
                        const T e = x[c] - (PERROW ? a * mu[j] : mu[j]);
                        T inv = inv0;
                        if (!iso) {
                            if (PERROW) {
                                const Coef<T> cf = level_coef(a, s, lam[j]);
                                inv = cf.inv;
                                part += cf.logc;
                            } else {
                                inv = lam[j];
                            }
                        }
                        part += iso ? e * e : e * e * inv;
                        if (kKeepG) {
                            g[c] = -e * inv;
                        }
                    }
                }
                part = warp_sum(part);
                const T r = iso ? cst - half * (part * inv0)
                                : (PERROW ? cst - half * (dT * l2pi + part) : cst - half * part);
                on.add(r);
                if (A.vec) {
#pragma unroll
                    for (int c = 0; c < P; ++c) {
                        T gc;
                        if (kKeepG) {
                            gc = g[c];
                        } else {
                            gc = T(0);
                            if (c < nv) {
                                const int j = lane + kWarp * c;
                                const T e = x[c] - (PERROW ? a * mu[j] : mu[j]);
                                const T inv = iso ? inv0 : (PERROW ? level_inv(a, s, lam[j]) : lam[j]);
                                gc = -e * inv;
                            }
                        }
                        acc[c] = on.update(acc[c], gc);
                    }
                }
                if (A.resp != nullptr && lane == (kc % kWarp)) {
                    A.resp[row * K + kc] = r;
                }
            }
        }
        if (!live) {
            continue;
        }
        if (!ok) {
            nan_row(A, row, lane, kWarp);
            continue;
        }
        const T lse = on.m + Math<T>::log(on.sum);
        if (lane == 0 && A.logp != nullptr) {
            A.logp[row] = lse;
        }
        if (A.vec) {
#pragma unroll
            for (int c = 0; c < P; ++c) {
                if (c < nv) {
                    store_coord(A, row, lane + kWarp * c, x[c], acc[c], on.sum, a, s);
                }
            }
        }
        finish_resp(A, row, lse, lane, kWarp);
    }
}

// ---------------------------------------------------------------------------------------------
// d > 512, isotropic or diagonal: one warp per row, coordinates in a stride-32 loop, the gradient
// accumulator in the output row.

// wide_coef returns, for coordinate j of component k, e_j = x_j − a μ_kj and 1/c_kj (isotropic:
// inv0), adding log c_kj to *logc when the level is per row.
template <typename T, bool PERROW>
__device__ __forceinline__ T wide_coef(const Args<T>& A, bool iso, long long k, long long j, T xj,
                                       T a, T s, T inv0, T* inv, T* logc) {
    const T mu = __ldg(A.v2() + k * A.d + j);
    const T e = xj - (PERROW ? a * mu : mu);
    if (iso) {
        *inv = inv0;
    } else if (PERROW) {
        const Coef<T> cf = level_coef(a, s, __ldg(A.v1() + k * A.d + j));
        *inv = cf.inv;
        if (logc != nullptr) {
            *logc += cf.logc;
        }
    } else {
        *inv = __ldg(A.v1() + k * A.d + j);
    }
    return e;
}

template <typename T, bool PERROW>
__device__ void wide_isodiag(const Args<T>& A) {
    const int lane = threadIdx.x % kWarp;
    const long long K = A.k, d = A.d;
    const bool iso = A.cov == kIsotropic;
    const T half = T(0.5), l2pi = log_2pi<T>(), dT = T(d);
    T* accv = A.score != nullptr ? A.score : A.den;
    const long long warps = static_cast<long long>(gridDim.x) * (blockDim.x / kWarp);
    for (long long row = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
         row < A.n; row += warps) {
        T a, s;
        if (!row_noise(A, row, a, s)) {
            nan_row(A, row, lane, kWarp);
            continue;
        }
        const T* xr = A.x + row * d;
        T* ar = A.vec ? accv + row * d : nullptr;
        if (A.vec) {
            for (long long j = lane; j < d; j += kWarp) {
                ar[j] = T(0);
            }
        }
        Online<T> on;
        on.init();
        for (long long k = 0; k < K; ++k) {
            T inv0 = T(0), cst = __ldg(A.c0() + k);
            if (iso) {
                if (PERROW) {
                    const Coef<T> cf = level_coef(a, s, __ldg(A.v1() + k));
                    inv0 = cf.inv;
                    cst = cst - half * (dT * (l2pi + cf.logc));
                } else {
                    inv0 = __ldg(A.v1() + k);
                }
            }
            T part = T(0), logc = T(0);
            for (long long j = lane; j < d; j += kWarp) {
                T inv;
                const T e = wide_coef<T, PERROW>(A, iso, k, j, xr[j], a, s, inv0, &inv, &logc);
                part += iso ? e * e : e * e * inv;
            }
            T r;
            if (iso) {
                r = cst - half * (warp_sum(part) * inv0);
            } else {
                part = warp_sum(part + logc);
                r = PERROW ? cst - half * (dT * l2pi + part) : cst - half * part;
            }
            on.add(r);
            if (A.vec) {
                for (long long j = lane; j < d; j += kWarp) {
                    T inv;
                    const T e = wide_coef<T, PERROW>(A, iso, k, j, xr[j], a, s, inv0, &inv, nullptr);
                    ar[j] = on.update(ar[j], -e * inv);
                }
            }
            if (A.resp != nullptr && lane == (k % kWarp)) {
                A.resp[row * K + k] = r;
            }
        }
        const T lse = on.m + Math<T>::log(on.sum);
        if (lane == 0 && A.logp != nullptr) {
            A.logp[row] = lse;
        }
        if (A.vec) {
            for (long long j = lane; j < d; j += kWarp) {
                store_coord(A, row, j, xr[j], ar[j], on.sum, a, s);
            }
        }
        finish_resp(A, row, lse, lane, kWarp);
    }
}

// ---------------------------------------------------------------------------------------------
// d > 8, full covariances: one warp per row, blockDim.x / 32 rows per block. Per component the block
// streams U_k through one 32×32 shared tile twice; the O(d²) products dwarf the O(d) traffic of
// keeping x and the gradient accumulator in global memory (the accumulator in the row's score or
// denoiser output, touched only by its lane), so no coordinate lives in registers and d has no
// compile-time bound. Per warp, shared memory holds t = z / c (32·⌈d/32⌉ elements).

template <typename T, bool PERROW>
__device__ void full_rows(const Args<T>& A, T* sm) {
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int warps = blockDim.x / kWarp;
    const long long K = A.k, d = A.d;
    const int nb = static_cast<int>((d + kTile - 1) / kTile);
    T* su = sm;
    T* tb = sm + kTile * kTile + static_cast<long long>(warp) * kTile * nb;
    const T half = T(0.5), l2pi = log_2pi<T>(), dT = T(d);
    T* accv = A.score != nullptr ? A.score : A.den;
    const long long stride = static_cast<long long>(gridDim.x) * warps;
    for (long long base = static_cast<long long>(blockIdx.x) * warps; base < A.n; base += stride) {
        const long long row = base + warp;
        const bool live = row < A.n;
        T a = T(1), s = T(0);
        const bool ok = live && row_noise(A, row, a, s);
        const T* xr = A.x + row * d;
        T* ar = ok && A.vec ? accv + row * d : nullptr;
        if (ar != nullptr) {
            for (long long j = lane; j < d; j += kWarp) {
                ar[j] = T(0);
            }
        }
        Online<T> on;
        on.init();
        for (long long k = 0; k < K; ++k) {
            const T* uk = A.u + k * d * d;
            const T* lam = A.v1() + k * d;
            const T* mu = A.v2() + k * d;
            T part = T(0);
            // z_j = Σ_i U_ij e_i, e = x − m_k: the lane owns column j = 32 bj + lane; lane ii
            // supplies e_i, i = 32 bi + ii, through a shuffle.
            for (int bj = 0; bj < nb; ++bj) {
                T z = T(0);
                for (int bi = 0; bi < nb; ++bi) {
                    const long long i = static_cast<long long>(bi) * kTile + lane;
                    T e = T(0);
                    if (ok && i < d) {
                        e = xr[i] - (PERROW ? a * __ldg(mu + i) : __ldg(mu + i));
                    }
                    __syncthreads();
                    load_tile(su, uk, d, bi, bj);
                    __syncthreads();
                    if (ok) {
#pragma unroll 8
                        for (int ii = 0; ii < kTile; ++ii) {
                            z += su[swz(ii, lane)] * __shfl_sync(kAllLanes, e, ii);
                        }
                    }
                }
                const long long j = static_cast<long long>(bj) * kTile + lane;
                if (ok) {
                    T t = T(0);
                    if (j < d) {
                        T inv;
                        if (PERROW) {
                            const Coef<T> cf = level_coef(a, s, __ldg(lam + j));
                            inv = cf.inv;
                            part += cf.logc;
                        } else {
                            inv = __ldg(lam + j);
                        }
                        part += z * z * inv;
                        t = z * inv;
                    }
                    tb[j] = t;
                }
            }
            part = warp_sum(part);
            const T r = PERROW ? A.c0()[k] - half * (dT * l2pi + part) : A.c0()[k] - half * part;
            if (ok) {
                on.add(r);
                if (A.resp != nullptr && lane == (k % kWarp)) {
                    A.resp[row * K + k] = r;
                }
            }
            if (!A.vec) {
                continue;
            }
            // g_i = −Σ_j U_ij t_j: the lane owns row i = 32 bi + lane.
            for (int bi = 0; bi < nb; ++bi) {
                T gi = T(0);
                for (int bj = 0; bj < nb; ++bj) {
                    __syncthreads();
                    load_tile(su, uk, d, bi, bj);
                    __syncthreads();
                    if (ok) {
                        const T* t = tb + bj * kTile;
#pragma unroll 8
                        for (int jj = 0; jj < kTile; ++jj) {
                            gi += su[swz(lane, jj)] * t[jj];
                        }
                    }
                }
                const long long i = static_cast<long long>(bi) * kTile + lane;
                if (ok && i < d) {
                    ar[i] = on.update(ar[i], -gi);
                }
            }
        }
        if (!live) {
            continue;
        }
        if (!ok) {
            nan_row(A, row, lane, kWarp);
            continue;
        }
        const T lse = on.m + Math<T>::log(on.sum);
        if (lane == 0 && A.logp != nullptr) {
            A.logp[row] = lse;
        }
        if (A.vec) {
            for (long long j = lane; j < d; j += kWarp) {
                store_coord(A, row, j, xr[j], ar[j], on.sum, a, s);
            }
        }
        finish_resp(A, row, lse, lane, kWarp);
    }
}

// ---------------------------------------------------------------------------------------------
// Per-component constants of one shared level: one warp per component.

template <typename T>
__device__ void prep(T* consts, const T* params, long long d, long long K, long long cov, double ad,
                     double sd) {
    const int lane = threadIdx.x % kWarp;
    const long long l1 = cov == kIsotropic ? 1 : d;
    const T a = T(ad), s = T(sd), half = T(0.5), l2pi = log_2pi<T>(), dT = T(d);
    const T* logw = params;
    const T* lam = params + K;
    const T* mu = lam + K * l1;
    T* cst = consts;
    T* inv = consts + K;
    T* am = inv + K * l1;
    const long long warps = static_cast<long long>(gridDim.x) * (blockDim.x / kWarp);
    for (long long k = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
         k < K; k += warps) {
        if (cov == kIsotropic) {
            if (lane == 0) {
                const T c = a * a * lam[k] + s;
                inv[k] = T(1) / c;
                cst[k] = logw[k] - half * (dT * (l2pi + Math<T>::log(c)));
            }
        } else {
            T logdet = T(0);
            for (long long j = lane; j < d; j += kWarp) {
                const T c = a * a * lam[k * d + j] + s;
                inv[k * d + j] = T(1) / c;
                logdet += Math<T>::log(c);
            }
            logdet = warp_sum(logdet);
            if (lane == 0) {
                cst[k] = logw[k] - half * (dT * l2pi + logdet);
            }
        }
        for (long long j = lane; j < d; j += kWarp) {
            am[k * d + j] = a * mu[k * d + j];
        }
    }
}

}  // namespace

#define GMM_SCORE_PARAMS(T)                                                                       \
    T *logp, T *score, T *den, T *resp, const T *x, long long n, long long d, long long k,        \
        long long cov, const T *params, const T *consts, long long noise, const T *levels,        \
        double a, double s, long long tile
#define GMM_SCORE_ARGS logp, score, den, resp, x, n, d, k, cov, params, consts, noise, levels, a, s, tile

// __launch_bounds__(256, MINB): with an explicit minimum of resident blocks ptxas (11.8) allocates
// up to 65536 / (256·MINB) registers without spilling; left to itself it picked smaller counts
// with spills for several entries. MINB is 2 (≤ 128 registers), 4 for the float small-d entries,
// 5 for the float shared-level row8 entry (≤ 48 registers: 40 warps per SM; at 2 ptxas took 55,
// 4 blocks), 3 for the float row16 entry (≤ 80 registers: 24 warps per SM), 1 for the double row16
// entries.
#define GMM_SCORE_ENTRY(NAME, T, MINB, BODY)                                                      \
    extern "C" __global__ void __launch_bounds__(kBlock, MINB) NAME(GMM_SCORE_PARAMS(T)) {       \
        const Args<T> A = make_args<T>(GMM_SCORE_ARGS);                                           \
        BODY;                                                                                     \
    }

// The score entries of one dtype, for a shared level (LV empty, levels must be null) or per-row
// levels (LV = lv, levels must be set): separate entries so that the per-row code, which needs
// more registers, does not lower the occupancy of the shared-level code.
//   gmm_score_row4, _row8, _row16:           d ≤ 4, ≤ 8, ≤ 16; isotropic or diagonal; thread per row
//   gmm_score_rowfull4, gmm_score_rowfull8:  the same for full covariances
//   gmm_score_warp<P>, P ∈ {1, 2, 4, 8, 16}:  16 < d ≤ 32·P; isotropic or diagonal; warp per row
//   gmm_score_wide:                          d > 512; isotropic or diagonal; warp per row
//   gmm_score_full:                          d > 8; full covariances; warp per row
#define GMM_SM(T) reinterpret_cast<T*>(dynamic_smem)
#define GMM_SCORE_ENTRIES(T, DT, LV, PERROW, SMALLB, ROW8B, ROW16B)                               \
    GMM_SCORE_ENTRY(gmm_score_row4##LV##_##DT, T, SMALLB,                                         \
                    (rows_upto4<T, PERROW, false>(A, GMM_SM(T))))                                 \
    GMM_SCORE_ENTRY(gmm_score_row8##LV##_##DT, T, ROW8B,                                          \
                    (rows_bound<T, 8, PERROW>(A, GMM_SM(T))))                                     \
    GMM_SCORE_ENTRY(gmm_score_row16##LV##_##DT, T, ROW16B, (rows_bound<T, 16, PERROW>(A, GMM_SM(T))))  \
    GMM_SCORE_ENTRY(gmm_score_rowfull4##LV##_##DT, T, SMALLB,                                     \
                    (rows_upto4<T, PERROW, true>(A, GMM_SM(T))))                                  \
    GMM_SCORE_ENTRY(gmm_score_rowfull8##LV##_##DT, T, 2,                                          \
                    (rows_small<T, 8, false, PERROW, true>(A, GMM_SM(T))))                        \
    GMM_SCORE_ENTRY(gmm_score_warp1##LV##_##DT, T, 2, (warp_isodiag<T, 1, PERROW>(A, GMM_SM(T)))) \
    GMM_SCORE_ENTRY(gmm_score_warp2##LV##_##DT, T, 2, (warp_isodiag<T, 2, PERROW>(A, GMM_SM(T)))) \
    GMM_SCORE_ENTRY(gmm_score_warp4##LV##_##DT, T, 2, (warp_isodiag<T, 4, PERROW>(A, GMM_SM(T)))) \
    GMM_SCORE_ENTRY(gmm_score_warp8##LV##_##DT, T, 2, (warp_isodiag<T, 8, PERROW>(A, GMM_SM(T)))) \
    GMM_SCORE_ENTRY(gmm_score_warp16##LV##_##DT, T, 2,                                            \
                    (warp_isodiag<T, 16, PERROW>(A, GMM_SM(T))))                                  \
    GMM_SCORE_ENTRY(gmm_score_wide##LV##_##DT, T, 2, (wide_isodiag<T, PERROW>(A)))                \
    GMM_SCORE_ENTRY(gmm_score_full##LV##_##DT, T, 2, (full_rows<T, PERROW>(A, GMM_SM(T))))

// gmm_prep_<dt>: consts = [cst (K) | 1/c (K·l1) | a μ (K·d)] for one shared (a, s).
#define GMM_PREP_ENTRY(T, DT)                                                                     \
    extern "C" __global__ void gmm_prep_##DT(T* consts, const T* params, long long d, long long k, \
                                             long long cov, double a, double s) {                 \
        prep<T>(consts, params, d, k, cov, a, s);                                                 \
    }

GMM_PREP_ENTRY(float, f32)
GMM_PREP_ENTRY(double, f64)
GMM_SCORE_ENTRIES(float, f32, , false, 4, 5, 3)
GMM_SCORE_ENTRIES(float, f32, lv, true, 4, 2, 2)
GMM_SCORE_ENTRIES(double, f64, , false, 2, 2, 1)
GMM_SCORE_ENTRIES(double, f64, lv, true, 2, 2, 1)
