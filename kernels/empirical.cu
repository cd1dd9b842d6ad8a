// Empirical score: the optimal denoiser of a data set {y_1..y_M} ⊂ R^d, its log-density and score,
// for a batch of query rows x (N, d) — docs/math.md §1.2, reference ops.cpuBackend.EmpiricalScore.
// For row x at noise (a, s) and mixture terms (π_q, m_q), v_q = s m_q:
//
//   r_iq  = log π_q − log M − d/2 log(2π v_q) − ‖x − a y_i‖² / (2 v_q)
//   log p = logsumexp r,   w = softmax r
//   D     = Σ w_iq y_i,    ∇log p = Σ w_iq (a y_i − x) / v_q
//
// The per-row constant log M + d/2 log(2π s) and the largest per-term constant are pulled out of
// the softmax (it does not see them) and added back to log p at the end, so the streamed logits
// are  l_iq = A_q − ‖x − a y_i‖² · g · (1/m_q)  with  A_q = log π_q − d/2 log m_q − max_q(…) ≤ 0
// and g = 1/(2s): their size is that of the distance term, not of d log s.
//
// Streaming (flash-attention style). A block of 256 threads (16 × 16, tx fastest) owns BR = 64
// query rows and streams the data through shared memory in tiles of BC points (64 in float, 32 in
// double). Per row it keeps an online softmax over the (point, term) pairs — the running max m and
// the running sum Σ e^{l−m} — and two running vector accumulators,
//   Y = Σ_i P_i y_i            (denoiser: D = Y / Σ),       P_i = Σ_q e^{l_iq − m},
//   Z = Σ_i R_i (a y_i − x)    (score: ∇log p = Z / (s Σ)), R_i = Σ_q e^{l_iq − m} / m_q,
// so a data point enters each vector once, whatever Q. No exponential of an unshifted logit is
// ever formed; when the max grows the state is rescaled by e^{m_old − m_new}. The score is
// accumulated from the differences a y − x (one FMA), not as a Σ R y − x Σ R, which cancels when
// x sits on a data point (late in sampling). One tile is three phases:
//
//  1. Distances. The BR × BC block of ‖x − a y‖² is built from the differences, Σ_j (x_j − a y_j)²
//     with two FMAs per coordinate (never ‖x‖² − 2a x·y + a²‖y‖², which cancels far from the data;
//     the precomputed ‖y‖² of ops.Empirical is for a future expanded path and is not used).
//     Coordinates go through shared memory in slabs of KD (32 float, 16 double), transposed
//     (xs[k][row], ys[k][point]) so that a thread reads its RM = 4 rows and CN points (4 float,
//     2 double) with one or two 16-byte loads. Register blocking: each thread owns an RM × CN
//     block of distances, so per coordinate it loads RM + CN values and issues 2·RM·CN FMAs (32
//     in float, for 3 shared-memory wavefronts per warp: the rows are a broadcast). Each slab is
//     summed into a fresh partial before it is added to the total (blocked summation: the rounding
//     error grows like KD + d/KD, not d). The last slab loops over the coordinates that exist only.
//  2. Softmax. The tile max of each row comes from the row's smallest distance (l is monotone in
//     the distance for every term, so max_q l(d_min) is exactly the largest computed logit); row
//     reductions are butterflies over the 16 lanes that share the row (bit-identical in every
//     lane).
//  3. Accumulation. Y ← Y·e^{m_old − m_new} + P·Y_tile, then Z likewise with R: each a
//     (BR × BC)·(BC × d) product. The weights go to shared memory (ps[point][row]; P, then R in the
//     same buffer), the data in slabs of DW coordinates; each thread owns RM rows × CW coordinates
//     (CW = 4 float, 2 double; 1 when d ≤ 16, so small d does not compute padding) and per data
//     point reads RM weights with one 16-byte load and CW y values, and issues RM·CW FMAs for Y,
//     2·RM·CW for Z. In empirical_score_<T> the accumulators live in global memory (d goes to
//     1024 and beyond) — the caller's output buffers when one block sees all of a row's data, else
//     a scratch slot per split — read and written once per tile per block (8/BC bytes per FMA,
//     served from L2), with a barrier before and after each slab. empirical_score_reg_f32 (float,
//     d ≤ DW = 64, exactly one vector output: the launcher picks it then) keeps that one
//     accumulator in registers for the whole launch and writes it once at the end: no accumulator
//     traffic per tile, and a tile costs 2⌈d/KD⌉ + 2 barriers instead of 2⌈d/KD⌉ + 3 (6 instead of
//     7 at d = 64). Its arithmetic is the same (acc·scale + s), so both entries give the same
//     bits. In double the resident array would spill (RM·CW = 8 doubles on top of the distance
//     block), so double has the global-memory entry only.
// FMAs per (query row, data point) pair: 2d (distance) + d (denoiser, if asked) + 2d (score, if
// asked), plus Q exponentials; mixture terms do not multiply the vector work. Registers: 128 per
// thread (__launch_bounds__(256, 2): two blocks, 16 warps per SM), no spills.
//
// Kernel modes (all parameters are 8 bytes wide):
//   empirical_score_<T>: the block (blockIdx.x = row tile, blockIdx.y = split) streams its share of
//     the data tiles of one chunk of data points (data, count): tiles [split·tps, (split+1)·tps).
//     flags bit 0 (resume): the state (m, Σ per row in `state`; Y, Z in the slots) was left by an
//     earlier launch over earlier chunks and is carried on; otherwise it starts empty. flags bit 1
//     (final, only with one split): after its last tile the block writes the outputs itself;
//     otherwise it writes its per-row state to `state` (the slots are already in global memory). A
//     split with no tile and no state to resume writes the empty state (zero slots).
//   empirical_finalize_<T>: merges the states of `splits` slots per row (w_s = e^{m_s − max m},
//     Σ = Σ_s w_s Σ_s, Y = Σ_s w_s Y_s, Z likewise) and writes the outputs; one thread per output
//     element.
// Slots: slot_y holds Y (null unless the denoiser is asked for), slot_z holds Z (null unless the
// score is). Slot s of a split launch starts at slot + s·slot_stride; rows have stride d. With one
// split the launcher points the slots at the output tensors, which hold the unnormalised
// accumulators until the final step (outputs must not overlap x).
//
// Noise: kind 1 (VE: level σ, a = 1, s = σ²), 2 (VP: level t, a = e^{−t}, s = 1 − e^{−2t}), 3 (affine:
// a = ascale, s = svar). Per-row levels (levels != null) override level. A row whose level is not a
// finite positive number (or an affine (a, s) that is not) gets NaN outputs, as does a row with a
// NaN coordinate. Per-row constants are computed in double whatever T.
//
// Mixture: mix holds Q pairs (A_q, 1/m_q) in double (see above; amax is the max that was
// subtracted, logm = log M of the whole data set).
//
// Precision: IEEE-exact build (no contraction, FMAs only where written), expf/exp and log of the
// CUDA math library. The final normalisation and the split merge are done in double.
//
// Shared memory per block (static): float 35 KiB, double 32 KiB.

namespace {

constexpr int TX = 16;               // threads along points / coordinates
constexpr int TY = 16;               // threads along rows
constexpr int THREADS = TX * TY;     // block size: the launcher uses the same
constexpr int RM = 4;                // rows per thread
constexpr int BR = TY * RM;          // rows per block
constexpr int MIN_BLOCKS = 2;        // resident blocks per SM the register budget is cut for
constexpr int PAD = 4;               // keeps transposed shared rows 16-byte aligned, eases conflicts

template <typename T>
struct Tiling;

template <>
struct Tiling<float> {
    static constexpr int CN = 4;   // points per thread (distance phase)
    static constexpr int KD = 32;  // coordinates per distance slab
    static constexpr int CW = 4;   // coordinates per thread (accumulation phase)
};

template <>
struct Tiling<double> {
    static constexpr int CN = 2;
    static constexpr int KD = 16;
    static constexpr int CW = 2;
};

template <typename T>
struct Shared {
    static constexpr int CN = Tiling<T>::CN, KD = Tiling<T>::KD, CW = Tiling<T>::CW;
    static constexpr int BC = TX * CN;  // points per tile
    static constexpr int DW = TX * CW;  // coordinates per accumulation slab
    union {
        struct {
            T xs[KD][BR + PAD];
            T ys[KD][BC + PAD];
        } dist;
        T yv[BC][DW];
        struct {
            double s[BR], bp[BR];
            int ok[BR];
        } fin;
    } u;
    T ps[BC][BR + PAD];  // P, then R, of the current tile
    // Per row: the online-softmax state (max, Σ e^{l−m}) and the noise (a, 1/(2s)).
    T m[BR], sum[BR], a[BR], g[BR];
};

// Math of T: the IEEE-accurate library functions (never the __expf-style intrinsics).
__device__ __forceinline__ float fma_(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fma_(double a, double b, double c) { return fma(a, b, c); }
__device__ __forceinline__ float exp_(float v) { return expf(v); }
__device__ __forceinline__ double exp_(double v) { return exp(v); }
__device__ __forceinline__ float min_(float a, float b) { return fminf(a, b); }
__device__ __forceinline__ double min_(double a, double b) { return fmin(a, b); }
__device__ __forceinline__ float max_(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double max_(double a, double b) { return fmax(a, b); }

template <typename T>
__device__ __forceinline__ T inf_() {
    return T(1) / T(0);
}

// lowest_ is T's most negative finite value.
__device__ __forceinline__ float lowest_(float) { return -3.40282346638528859811704183484516925e38f; }
__device__ __forceinline__ double lowest_(double) { return -1.79769313486231570814527423731704357e308; }

// Loads of 1, 2 or 4 and stores of 4 consecutive values in shared memory (aligned to their size).
__device__ __forceinline__ void lds(float (&v)[4], const float* p) {
    const float4 w = *reinterpret_cast<const float4*>(p);
    v[0] = w.x;
    v[1] = w.y;
    v[2] = w.z;
    v[3] = w.w;
}
template <typename T>
__device__ __forceinline__ void lds(T (&v)[1], const T* p) {
    v[0] = *p;
}
__device__ __forceinline__ void lds(double (&v)[2], const double* p) {
    const double2 w = *reinterpret_cast<const double2*>(p);
    v[0] = w.x;
    v[1] = w.y;
}
__device__ __forceinline__ void lds(double (&v)[4], const double* p) {
    const double2 w0 = reinterpret_cast<const double2*>(p)[0];
    const double2 w1 = reinterpret_cast<const double2*>(p)[1];
    v[0] = w0.x;
    v[1] = w0.y;
    v[2] = w1.x;
    v[3] = w1.y;
}
__device__ __forceinline__ void sts(float* p, float v0, float v1, float v2, float v3) {
    *reinterpret_cast<float4*>(p) = make_float4(v0, v1, v2, v3);
}
__device__ __forceinline__ void sts(double* p, double v0, double v1, double v2, double v3) {
    reinterpret_cast<double2*>(p)[0] = make_double2(v0, v1);
    reinterpret_cast<double2*>(p)[1] = make_double2(v2, v3);
}

// Butterfly reductions over the 16 lanes of a half-warp (the threads that share a row). Every lane
// ends with the same bits: each step combines the same two values in either order, and + , min and
// max are commutative.
template <typename T>
__device__ __forceinline__ T row_sum(T v) {
#pragma unroll
    for (int o = 1; o < TX; o <<= 1) {
        v = v + __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}
template <typename T>
__device__ __forceinline__ T row_min(T v) {
#pragma unroll
    for (int o = 1; o < TX; o <<= 1) {
        v = min_(v, __shfl_xor_sync(0xffffffffu, v, o));
    }
    return v;
}

// The noise (a, s) of row r, in double; false when the level (or the affine pair) is not a finite
// positive number.
template <typename T>
__device__ __forceinline__ bool row_noise(const T* __restrict__ levels, double level, long long kind,
                                          double ascale, double svar, long long r, double* a,
                                          double* s) {
    if (kind == 3) {
        *a = ascale;
        *s = svar;
        return ascale > 0 && svar > 0 && ascale < HUGE_VAL && svar < HUGE_VAL;
    }
    const double l = levels != nullptr ? static_cast<double>(levels[r]) : level;
    if (!(l > 0) || !(l < HUGE_VAL)) {
        return false;
    }
    if (kind == 1) {
        *a = 1;
        *s = l * l;
        return true;
    }
    if (kind == 2) {
        *a = exp(-l);
        *s = -expm1(-2 * l);
        return true;
    }
    return false;
}

// log p and the vector outputs of one row from its merged state (m, Σ = Σ e^{l−m}) and
// accumulators y = Σ P y_j, z = Σ R (a y_j − x_j), in double.
struct RowResult {
    double m, sum, s, bp;
    bool ok;
    __device__ __forceinline__ static double nan() { return __longlong_as_double(0x7ff8000000000000LL); }
    __device__ __forceinline__ double logp() const { return ok ? m + log(sum) - bp : nan(); }
    __device__ __forceinline__ double denoiser(double y) const { return ok ? y / sum : nan(); }
    __device__ __forceinline__ double score(double z) const { return ok ? z / (s * sum) : nan(); }
};

// The offset taken out of the logits of a row: log M + d/2 log(2π s) − amax.
__device__ __forceinline__ double row_offset(double logm, long long d, double s, double amax) {
    const double log2pi = 1.8378770664093454835606594728112;
    return logm + 0.5 * static_cast<double>(d) * (log2pi + log(s)) - amax;
}

// Phase 3 building blocks. stage_y copies coordinates [j0, j0 + DW) of the tile's points into
// sm.u.yv (zeros past d and past the tile's valid points); THREADS is a multiple of DW, so a thread
// always copies coordinate sj = tid % DW of points tid / DW + i·THREADS/DW. Offsets are 32-bit: the
// launcher keeps BR·d and BC·d below 2^31.
template <typename T, int CW>
__device__ __forceinline__ void stage_y(Shared<T>& sm, const T* __restrict__ yt, int cvalid, int d, int j0,
                                        int tid) {
    constexpr int BC = Shared<T>::BC, DW = TX * CW;
    static_assert(DW <= Shared<T>::DW, "the slab must fit the shared y buffer");
    constexpr int YI = BC * DW / THREADS, CSTEP = THREADS / DW;
    static_assert(BC * DW % THREADS == 0 && THREADS % DW == 0, "staging must tile the block");
    T (*const yv)[DW] = reinterpret_cast<T (*)[DW]>(&sm.u.yv[0][0]);
    const int sj = tid % DW, sc = tid / DW;
    const bool jin = j0 + sj < d;
    const T* const ysrc = yt + sc * d + sj + j0;
#pragma unroll
    for (int i = 0; i < YI; ++i) {
        const int c = sc + i * CSTEP;
        yv[c][sj] = (jin && c < cvalid) ? ysrc[i * CSTEP * d] : T(0);
    }
}

// slab_product is the tile's contribution to one accumulator slab, from the staged y values and
// the weights W (P or R) in sm.ps:
//   SCORE false: s = Σ_c W_c y_c            (the denoiser's Y)
//   SCORE true:  s = Σ_c W_c (a y_c − x)    (the score's Z; nx holds −x)
// The score is accumulated in difference form, one FMA for a y − x and one for the product: the
// expanded a Σ R y − x Σ R cancels when x sits on a data point (late in sampling), this does not.
template <typename T, bool SCORE, int CW>
__device__ __forceinline__ void slab_product(const Shared<T>& sm, const T (&a)[RM], const T (&nx)[RM][CW],
                                             T (&s)[RM][CW], int tx, int ty) {
    constexpr int BC = Shared<T>::BC, DW = TX * CW;
    const T (*const yv)[DW] = reinterpret_cast<const T (*)[DW]>(&sm.u.yv[0][0]);
#pragma unroll
    for (int i = 0; i < RM; ++i) {
#pragma unroll
        for (int k = 0; k < CW; ++k) {
            s[i][k] = T(0);
        }
    }
#pragma unroll 8
    for (int c = 0; c < BC; ++c) {
        T y[CW], w[RM];
        lds(y, &yv[c][tx * CW]);
        lds(w, &sm.ps[c][ty * RM]);
#pragma unroll
        for (int i = 0; i < RM; ++i) {
#pragma unroll
            for (int k = 0; k < CW; ++k) {
                s[i][k] = SCORE ? fma_(w[i], fma_(a[i], y[k], nx[i][k]), s[i][k]) : fma_(w[i], y[k], s[i][k]);
            }
        }
    }
}

// load_nx puts −x of the thread's rows and slab coordinates in nx (0 outside the block's rows or d).
template <typename T, int CW>
__device__ __forceinline__ void load_nx(T (&nx)[RM][CW], const T* __restrict__ xb, int d, int nrows, int j0,
                                        int tx, int ty) {
#pragma unroll
    for (int i = 0; i < RM; ++i) {
        const int r = ty * RM + i;
#pragma unroll
        for (int k = 0; k < CW; ++k) {
            const int j = j0 + tx * CW + k;
            nx[i][k] = r < nrows && j < d ? -xb[r * d + j] : T(0);
        }
    }
}

// Phase 3 for one tile and one accumulator held in global memory (d above the register-resident
// range), in slabs of DW coordinates: acc ← acc·scale + s slab by slab, with the weights already
// in sm.ps. yt: the tile's first data point; xb, acc: the block's first row; fresh: acc holds
// nothing yet (not read).
template <typename T, bool SCORE, int CW>
__device__ __forceinline__ void accumulate(Shared<T>& sm, const T* __restrict__ yt, int cvalid,
                                           const T* __restrict__ xb, int d, int nrows, T* acc,
                                           const T (&scale)[RM], bool fresh, int tx, int ty, int tid) {
    constexpr int DW = TX * CW;
    // The previous accumulator values are loaded before the product loop (their latency hidden
    // behind it) in float; after it in double, where the registers are not there.
    constexpr bool PREFETCH = sizeof(T) == 4;
    T a[RM];
#pragma unroll
    for (int i = 0; i < RM; ++i) {
        a[i] = sm.a[ty * RM + i];
    }
    for (int j0 = 0; j0 < d; j0 += DW) {
        stage_y<T, CW>(sm, yt, cvalid, d, j0, tid);
        T old[RM][CW], nx[RM][CW];
        auto load_old = [&] {
#pragma unroll
            for (int i = 0; i < RM; ++i) {
                const int r = ty * RM + i;
#pragma unroll
                for (int k = 0; k < CW; ++k) {
                    const int j = j0 + tx * CW + k;
                    old[i][k] = !fresh && r < nrows && j < d ? acc[r * d + j] : T(0);
                }
            }
        };
        if (PREFETCH) {
            load_old();
        }
        if (SCORE) {
            load_nx(nx, xb, d, nrows, j0, tx, ty);
        }
        __syncthreads();
        T s[RM][CW];
        slab_product<T, SCORE, CW>(sm, a, nx, s, tx, ty);
        if (!PREFETCH) {
            load_old();
        }
#pragma unroll
        for (int i = 0; i < RM; ++i) {
            const int r = ty * RM + i;
#pragma unroll
            for (int k = 0; k < CW; ++k) {
                const int j = j0 + tx * CW + k;
                if (r < nrows && j < d) {
                    acc[r * d + j] = fma_(old[i][k], scale[i], s[i][k]);
                }
            }
        }
        __syncthreads();
    }
}

// The register-resident accumulators (d ≤ DW: one slab holds every coordinate). Thread (tx, ty)
// holds rows ty·RM + i and coordinates tx·CWX + k; arrays are sized for the widest slab (CWA) and
// a narrower one (CWX = 1 when d ≤ TX) uses their first columns.
template <typename T, int CWX, int CWA>
__device__ __forceinline__ void load_resident(T (&acc)[RM][CWA], const T* src, int d, int nrows, int tx, int ty) {
    static_assert(CWX <= CWA, "the slab must fit the register arrays");
#pragma unroll
    for (int i = 0; i < RM; ++i) {
        const int r = ty * RM + i;
#pragma unroll
        for (int k = 0; k < CWA; ++k) {
            const int j = tx * CWX + k;
            acc[i][k] = src != nullptr && k < CWX && r < nrows && j < d ? src[r * d + j] : T(0);
        }
    }
}

template <typename T, int CWX, int CWA>
__device__ __forceinline__ void store_resident(const T (&acc)[RM][CWA], T* dst, int d, int nrows, int tx, int ty) {
    static_assert(CWX <= CWA, "the slab must fit the register arrays");
#pragma unroll
    for (int i = 0; i < RM; ++i) {
        const int r = ty * RM + i;
#pragma unroll
        for (int k = 0; k < CWX; ++k) {
            const int j = tx * CWX + k;
            if (r < nrows && j < d) {
                dst[r * d + j] = acc[i][k];
            }
        }
    }
}

// One product of a tile into register-resident accumulators: acc ← acc·scale + s, with the y slab
// staged and the weights in sm.ps (the same arithmetic as accumulate, so the results do not
// depend on where the accumulators live). xb: the block's first row (read for the score only).
template <typename T, bool SCORE, int CWX, int CWA>
__device__ __forceinline__ void resident_product(const Shared<T>& sm, const T (&a)[RM], T (&acc)[RM][CWA],
                                                 const T (&scale)[RM], int tx, int ty,
                                                 const T* __restrict__ xb, int d, int nrows) {
    static_assert(CWX <= CWA, "the slab must fit the register arrays");
    T nx[RM][CWX], s[RM][CWX];
    if (SCORE) {
        load_nx(nx, xb, d, nrows, 0, tx, ty);
    }
    slab_product<T, SCORE, CWX>(sm, a, nx, s, tx, ty);
#pragma unroll
    for (int i = 0; i < RM; ++i) {
#pragma unroll
        for (int k = 0; k < CWX; ++k) {
            acc[i][k] = fma_(acc[i][k], scale[i], s[i][k]);
        }
    }
}

template <typename T, bool RES>
__device__ __forceinline__ void empirical_score(
    const T* __restrict__ x, const T* __restrict__ levels, double level, long long kind,
    double ascale, double svar, const T* __restrict__ data, long long count,
    long long tiles_per_split, long long n, long long dl, const double* __restrict__ mix,
    long long nq, double logm, double amax, T* slot_y, T* slot_z, long long slot_stride,
    T* __restrict__ state, long long flags, T* out_logp, T* out_score, T* out_den) {
    constexpr int CN = Tiling<T>::CN, KD = Tiling<T>::KD, CW = Tiling<T>::CW;
    constexpr int BC = Shared<T>::BC;
    __shared__ __align__(16) Shared<T> sm;

    const int tid = threadIdx.x, tx = tid % TX, ty = tid / TX;
    const int d = static_cast<int>(dl);
    const long long row0 = static_cast<long long>(blockIdx.x) * BR;
    const int nrows = n - row0 < BR ? static_cast<int>(n - row0) : BR;
    const long long split = blockIdx.y;
    const bool resume = (flags & 1) != 0;
    const bool finish = (flags & 2) != 0 && gridDim.y == 1;
    const T* const xb = x + row0 * dl;
    T* const sy = slot_y != nullptr ? slot_y + split * slot_stride + row0 * dl : nullptr;
    T* const sz = slot_z != nullptr ? slot_z + split * slot_stride + row0 * dl : nullptr;
    T* const st = state != nullptr ? state + (split * n + row0) * 2 : nullptr;
    const T inf = inf_<T>();

    // The block's rows: noise and online-softmax state (empty, or resumed from an earlier launch).
    for (int r = tid; r < BR; r += THREADS) {
        double ad = 0, sd = 1;
        const bool ok = r < nrows && row_noise(levels, level, kind, ascale, svar, row0 + r, &ad, &sd);
        sm.a[r] = ok ? static_cast<T>(ad) : T(0);
        sm.g[r] = ok ? static_cast<T>(0.5 / sd) : T(0);
        const bool load = resume && st != nullptr && r < nrows;
        sm.m[r] = load ? st[r * 2] : -inf;
        sm.sum[r] = load ? st[r * 2 + 1] : T(0);
    }
    __syncthreads();

    // The launcher keeps count below 2^31 (one chunk), so tile indices fit in int.
    const int tiles = static_cast<int>((count + BC - 1) / BC);
    const long long t0l = split * tiles_per_split;
    const int t0 = t0l < tiles ? static_cast<int>(t0l) : tiles;
    const int t1 = tiles - t0 > tiles_per_split ? t0 + static_cast<int>(tiles_per_split) : tiles;
    const int cnt = static_cast<int>(count);
    const int q_n = static_cast<int>(nq);
    // Staging of the distance phase: THREADS is a multiple of KD, so a thread always copies
    // coordinate sk = tid % KD of rows (and points) sr + i·THREADS/KD.
    constexpr int XI = BR * KD / THREADS, YI = BC * KD / THREADS, RSTEP = THREADS / KD;
    static_assert(BR * KD % THREADS == 0 && BC * KD % THREADS == 0 && THREADS % KD == 0,
                  "staging must tile the block");
    const int sk = tid % KD, sr = tid / KD;
    const T* const xsrc = xb + sr * d + sk;
    bool fresh = !resume;
    // Register-resident accumulator (empirical_score_reg: d ≤ DW and exactly one vector output,
    // which the launcher guarantees): racc holds Y or Z, whichever is asked for; else the
    // accumulators live in global memory (the slots), read and written once per tile.
    const bool resident = RES && (sy != nullptr || sz != nullptr);
    T* const sres = sy != nullptr ? sy : sz;
    T racc[RM][CW];
    if (d <= TX) {
        load_resident<T, 1>(racc, resume && resident ? sres : nullptr, d, nrows, tx, ty);
    } else {
        load_resident<T, CW>(racc, resume && resident ? sres : nullptr, d, nrows, tx, ty);
    }
    for (int t = t0; t < t1; ++t) {
        const T* const yt = data + static_cast<long long>(t) * BC * dl;
        const int cvalid = cnt - t * BC < BC ? cnt - t * BC : BC;

        // Phase 1: distances.
        T a[RM];
#pragma unroll
        for (int i = 0; i < RM; ++i) {
            a[i] = sm.a[ty * RM + i];
        }
        T dist[RM][CN];
#pragma unroll
        for (int i = 0; i < RM; ++i) {
#pragma unroll
            for (int j = 0; j < CN; ++j) {
                dist[i][j] = T(0);
            }
        }
        const T* const ysrc = yt + sr * d + sk;
        for (int k0 = 0; k0 < d; k0 += KD) {
            __syncthreads();
            const bool kin = k0 + sk < d;
#pragma unroll
            for (int i = 0; i < XI; ++i) {
                const int r = sr + i * RSTEP;
                sm.u.dist.xs[sk][r] = (kin && r < nrows) ? xsrc[i * RSTEP * d + k0] : T(0);
            }
#pragma unroll
            for (int i = 0; i < YI; ++i) {
                const int c = sr + i * RSTEP;
                sm.u.dist.ys[sk][c] = (kin && c < cvalid) ? ysrc[i * RSTEP * d + k0] : T(0);
            }
            __syncthreads();
            T part[RM][CN];
#pragma unroll
            for (int i = 0; i < RM; ++i) {
#pragma unroll
                for (int j = 0; j < CN; ++j) {
                    part[i][j] = T(0);
                }
            }
            auto step = [&](int k) {
                T xv[RM], yv[CN];
                lds(xv, &sm.u.dist.xs[k][ty * RM]);
                lds(yv, &sm.u.dist.ys[k][tx * CN]);
#pragma unroll
                for (int i = 0; i < RM; ++i) {
#pragma unroll
                    for (int j = 0; j < CN; ++j) {
                        const T diff = fma_(-a[i], yv[j], xv[i]);
                        part[i][j] = fma_(diff, diff, part[i][j]);
                    }
                }
            };
            if (d - k0 >= KD) {
#pragma unroll
                for (int k = 0; k < KD; ++k) {
                    step(k);
                }
            } else {  // the last, partial slab: only the coordinates that exist
                const int klen = d - k0;
#pragma unroll 4
                for (int k = 0; k < klen; ++k) {
                    step(k);
                }
            }
#pragma unroll
            for (int i = 0; i < RM; ++i) {
#pragma unroll
                for (int j = 0; j < CN; ++j) {
                    dist[i][j] = dist[i][j] + part[i][j];
                }
            }
        }

        // Phase 2: online softmax over the tile's (point, term) pairs. The 16 lanes of a row hold
        // bit-identical copies of its reductions; lane 0 writes the row state.
        bool valid[CN];
#pragma unroll
        for (int j = 0; j < CN; ++j) {
            valid[j] = tx * CN + j < cvalid;
        }
        T g[RM], mnew[RM], scale[RM];
#pragma unroll
        for (int i = 0; i < RM; ++i) {
            g[i] = sm.g[ty * RM + i];
            T dmin = inf;
#pragma unroll
            for (int j = 0; j < CN; ++j) {
                if (valid[j]) {
                    dmin = min_(dmin, dist[i][j]);
                }
            }
            dmin = row_min(dmin);
            T tmax = -inf;
            for (int q = 0; q < q_n; ++q) {
                const T A = static_cast<T>(mix[2 * q]), im = static_cast<T>(mix[2 * q + 1]);
                tmax = max_(tmax, fma_(-dmin, g[i] * im, A));
            }
            // The running max is kept finite: while every logit so far is −∞ (distances that
            // overflowed) it is T's lowest value, so the rescale factor and the weights are
            // e^{−∞} = 0 rather than e^{−∞ + ∞} = NaN, and a later finite logit takes over.
            const T mold = sm.m[ty * RM + i];
            mnew[i] = max_(max_(mold, tmax), lowest_(T(0)));
            scale[i] = exp_(mold - mnew[i]);
        }
        T P[RM][CN], R[RM][CN];
#pragma unroll
        for (int i = 0; i < RM; ++i) {
#pragma unroll
            for (int j = 0; j < CN; ++j) {
                P[i][j] = T(0);
                R[i][j] = T(0);
            }
        }
        for (int q = 0; q < q_n; ++q) {
            const T A = static_cast<T>(mix[2 * q]), im = static_cast<T>(mix[2 * q + 1]);
#pragma unroll
            for (int i = 0; i < RM; ++i) {
                const T h = g[i] * im;
#pragma unroll
                for (int j = 0; j < CN; ++j) {
                    const T p = exp_(fma_(-dist[i][j], h, A) - mnew[i]);
                    P[i][j] = P[i][j] + p;
                    if (sz != nullptr) {
                        R[i][j] = fma_(p, im, R[i][j]);
                    }
                }
            }
        }
#pragma unroll
        for (int i = 0; i < RM; ++i) {
            T rowp = T(0);
#pragma unroll
            for (int j = 0; j < CN; ++j) {
                if (!valid[j]) {
                    P[i][j] = T(0);
                    R[i][j] = T(0);
                }
                rowp = rowp + P[i][j];
            }
            rowp = row_sum(rowp);
            __syncwarp();  // every lane of the row has read its state above
            if (tx == 0) {
                const int r = ty * RM + i;
                sm.sum[r] = sm.sum[r] * scale[i] + rowp;
                sm.m[r] = mnew[i];
            }
        }

        // Phase 3: vector accumulators, the denoiser's then the score's, through the same shared
        // weights buffer.
        if (resident) {
            // One slab holds every coordinate: the product folds into the registers,
            // racc ← racc·scale + s.
#pragma unroll
            for (int j = 0; j < CN; ++j) {
                if (sy != nullptr) {
                    sts(&sm.ps[tx * CN + j][ty * RM], P[0][j], P[1][j], P[2][j], P[3][j]);
                } else {
                    sts(&sm.ps[tx * CN + j][ty * RM], R[0][j], R[1][j], R[2][j], R[3][j]);
                }
            }
            __syncthreads();  // the distance phase is done with the shared union
            if (d <= TX) {
                stage_y<T, 1>(sm, yt, cvalid, d, 0, tid);
            } else {
                stage_y<T, CW>(sm, yt, cvalid, d, 0, tid);
            }
            __syncthreads();
            if (sy != nullptr) {
                if (d <= TX) {
                    resident_product<T, false, 1>(sm, a, racc, scale, tx, ty, xb, d, nrows);
                } else {
                    resident_product<T, false, CW>(sm, a, racc, scale, tx, ty, xb, d, nrows);
                }
            } else if (d <= TX) {
                resident_product<T, true, 1>(sm, a, racc, scale, tx, ty, xb, d, nrows);
            } else {
                resident_product<T, true, CW>(sm, a, racc, scale, tx, ty, xb, d, nrows);
            }
            // The next tile's first barrier orders these reads of ps and yv before its writes.
        } else {
            if (sy != nullptr) {
#pragma unroll
                for (int j = 0; j < CN; ++j) {
                    sts(&sm.ps[tx * CN + j][ty * RM], P[0][j], P[1][j], P[2][j], P[3][j]);
                }
                __syncthreads();
                accumulate<T, false, CW>(sm, yt, cvalid, xb, d, nrows, sy, scale, fresh, tx, ty, tid);
            }
            if (sz != nullptr) {
#pragma unroll
                for (int j = 0; j < CN; ++j) {
                    sts(&sm.ps[tx * CN + j][ty * RM], R[0][j], R[1][j], R[2][j], R[3][j]);
                }
                __syncthreads();
                accumulate<T, true, CW>(sm, yt, cvalid, xb, d, nrows, sz, scale, fresh, tx, ty, tid);
            }
        }
        fresh = false;
    }
    __syncthreads();  // row state complete; the shared union is free

    if (resident) {
        // The registers go to the slot (the output itself with one split): zeros when the block
        // saw no tile and had no state to resume.
        if (d <= TX) {
            store_resident<T, 1>(racc, sres, d, nrows, tx, ty);
        } else {
            store_resident<T, CW>(racc, sres, d, nrows, tx, ty);
        }
        __syncthreads();  // the fused final step below reads what other threads stored
    } else if (fresh) {
        // A split with no tile and no earlier state: its slots must still read as empty (zeros).
        for (int e = tid; e < nrows * d; e += THREADS) {
            if (sy != nullptr) {
                sy[e] = T(0);
            }
            if (sz != nullptr) {
                sz[e] = T(0);
            }
        }
    }

    if (!finish) {
        if (st != nullptr) {
            for (int r = tid; r < nrows; r += THREADS) {
                st[r * 2] = sm.m[r];
                st[r * 2 + 1] = sm.sum[r];
            }
        }
        return;
    }

    // Fused final step (one split): normalise this block's rows.
    for (int r = tid; r < BR; r += THREADS) {
        double ad = 0, sd = 1;
        const bool ok = r < nrows && row_noise(levels, level, kind, ascale, svar, row0 + r, &ad, &sd);
        sm.u.fin.ok[r] = ok;
        sm.u.fin.s[r] = sd;
        sm.u.fin.bp[r] = ok ? row_offset(logm, dl, sd, amax) : 0.0;
    }
    __syncthreads();
    if (out_logp != nullptr) {
        for (int r = tid; r < nrows; r += THREADS) {
            const RowResult rr{static_cast<double>(sm.m[r]), static_cast<double>(sm.sum[r]), sm.u.fin.s[r],
                               sm.u.fin.bp[r], sm.u.fin.ok[r] != 0};
            out_logp[row0 + r] = static_cast<T>(rr.logp());
        }
    }
    if (out_score != nullptr || out_den != nullptr) {
        T* const db = out_den != nullptr ? out_den + row0 * dl : nullptr;
        T* const gb = out_score != nullptr ? out_score + row0 * dl : nullptr;
        for (int e = tid; e < nrows * d; e += THREADS) {
            const int r = e / d;
            const RowResult rr{static_cast<double>(sm.m[r]), static_cast<double>(sm.sum[r]), sm.u.fin.s[r],
                               sm.u.fin.bp[r], sm.u.fin.ok[r] != 0};
            // Read the accumulators before writing: the slots are the outputs themselves.
            const double yv = sy != nullptr ? static_cast<double>(sy[e]) : 0.0;
            const double zv = sz != nullptr ? static_cast<double>(sz[e]) : 0.0;
            if (db != nullptr) {
                db[e] = static_cast<T>(rr.denoiser(yv));
            }
            if (gb != nullptr) {
                gb[e] = static_cast<T>(rr.score(zv));
            }
        }
    }
}

// Merges `splits` states per row and writes the outputs: one thread per (row, coordinate), or per
// row when only log p is asked for; grid-stride over any 1-D launch. In double: with w_s =
// e^{m_s − m*}, Σ = Σ_s w_s Σ_s and each accumulator Σ_s w_s acc_s.
template <typename T>
__device__ __forceinline__ void empirical_finalize(
    const T* __restrict__ levels, double level, long long kind, double ascale, double svar,
    long long n, long long d, double logm, double amax, const T* __restrict__ slot_y,
    const T* __restrict__ slot_z, long long slot_stride, const T* __restrict__ state,
    long long splits, T* out_logp, T* out_score, T* out_den) {
    const long long width = (out_score != nullptr || out_den != nullptr) ? d : 1;
    const long long total = n * width;
    const long long stride = static_cast<long long>(gridDim.x) * blockDim.x;
    for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += stride) {
        const long long r = e / width, j = e - r * width;
        double ad = 0, sd = 1;
        const bool ok = row_noise(levels, level, kind, ascale, svar, r, &ad, &sd);
        double mstar = -HUGE_VAL;
        for (long long s = 0; s < splits; ++s) {
            mstar = fmax(mstar, static_cast<double>(state[(s * n + r) * 2]));
        }
        double sum = 0, yv = 0, zv = 0;
        const long long idx = r * d + j;
        for (long long s = 0; s < splits; ++s) {
            const T* st = state + (s * n + r) * 2;
            const double w = exp(static_cast<double>(st[0]) - mstar);
            sum += w * static_cast<double>(st[1]);
            if (width == d) {
                if (slot_y != nullptr) {
                    yv += w * static_cast<double>(slot_y[s * slot_stride + idx]);
                }
                if (slot_z != nullptr) {
                    zv += w * static_cast<double>(slot_z[s * slot_stride + idx]);
                }
            }
        }
        const RowResult rr{mstar, sum, sd, ok ? row_offset(logm, d, sd, amax) : 0.0, ok};
        if (j == 0 && out_logp != nullptr) {
            out_logp[r] = static_cast<T>(rr.logp());
        }
        if (width == d) {
            if (out_den != nullptr) {
                out_den[idx] = static_cast<T>(rr.denoiser(yv));
            }
            if (out_score != nullptr) {
                out_score[idx] = static_cast<T>(rr.score(zv));
            }
        }
    }
}

}  // namespace

// empirical_score_<T> keeps the accumulators in global memory (any d); empirical_score_reg_f32 keeps
// its one accumulator in registers (float, d ≤ 64, one vector output; see above). Two entries rather
// than a branch: the register array would otherwise be live (and spill) in the global path too.
#define EMPIRICAL_ENTRY(T, NAME, RES)                                                               \
    extern "C" __global__ void __launch_bounds__(THREADS, MIN_BLOCKS) NAME(                         \
        const T* x, const T* levels, double level, long long kind, double ascale, double svar,     \
        const T* data, long long count, long long tiles_per_split, long long n, long long d,       \
        const double* mix, long long nq, double logm, double amax, T* slot_y, T* slot_z,           \
        long long slot_stride, T* state, long long flags, T* out_logp, T* out_score, T* out_den) { \
        empirical_score<T, RES>(x, levels, level, kind, ascale, svar, data, count, tiles_per_split, \
                                n, d, mix, nq, logm, amax, slot_y, slot_z, slot_stride, state,     \
                                flags, out_logp, out_score, out_den);                              \
    }

#define EMPIRICAL_SCORE(T, SUFFIX)                                                                  \
    EMPIRICAL_ENTRY(T, empirical_score_##SUFFIX, false)                                             \
    extern "C" __global__ void empirical_finalize_##SUFFIX(                                         \
        const T* levels, double level, long long kind, double ascale, double svar, long long n,    \
        long long d, double logm, double amax, const T* slot_y, const T* slot_z,                   \
        long long slot_stride, const T* state, long long splits, T* out_logp, T* out_score,        \
        T* out_den) {                                                                              \
        empirical_finalize<T>(levels, level, kind, ascale, svar, n, d, logm, amax, slot_y, slot_z, \
                              slot_stride, state, splits, out_logp, out_score, out_den);           \
    }

EMPIRICAL_SCORE(float, f32)
EMPIRICAL_SCORE(double, f64)
EMPIRICAL_ENTRY(float, empirical_score_reg_f32, true)
