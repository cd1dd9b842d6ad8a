// Correlated and heavy-tailed noise (docs/math.md §4.2–§4.4): the Markov approximation of fBM
// (MA-fBM), α-stable variates (Chambers–Mallows–Stuck, Kanter, sub-Gaussian isotropic vectors)
// and Brownian paths restarted as bridges every epoch. The CPU references in ops/mafbm.go,
// ops/stable.go and ops/brownian.go are the specification; every kernel follows their arithmetic
// operation for operation and their draw layout (ops/philox.go, philox.cuh).
//
// Precision. MA-fBM and Brownian accumulate in double whatever the data type (the OU states of
// slow speeds and long running sums would drift by many float ulp otherwise), from the normals of
// the Normal fill computed in the data's precision (box_muller_f32 / box_muller_f64), and round
// each output once. α-stable values form every angle in double — the reduction r = x − n/2 ∈
// [−¼, ¼], n = rint(2x), of ops.sinCosPi is exact there — and evaluate the transcendental
// functions (sincospi, log, pow, sqrt) in the data's precision. So the float kernels differ from
// the reference by the float rounding of those few functions, amplified by the exponents 1/α and
// (1 − α) of the map; the double kernels by a few double ulp.
//
// Kernels (T = float: _f32, T = double: _f64); every parameter is 8 bytes wide (pointers, long
// long, unsigned long long, double); absent optional pointers are null:
//
//   mafbm_<T>(dst, y, table, paths, steps, k, seed, site, stride, chain0)
//     dst (paths, steps), y (paths, k) in/out, table (double): decay[k], weights[k], then the
//     lower factor L[k×k] row-major (ops.MAFBM.Transition). Per path, Y = y's row in double; for
//     s = 0..steps−1 with ξ the Normal fill's columns 0..k−1 at site + s·stride:
//       Y_r = decay_r Y_r + Σ_{j ≤ r} L_rj ξ_j (j ascending),  dst[s] = Σ_r w_r Y_r (r ascending);
//     then y's row = Y. k ≤ 16.
//
//   stable_<T>(dst, rows, dim, alpha, beta, shift, scale, inv_alpha, clamp, counter, seed, site,
//              chain0)
//     The scalar kinds: element (i, j) = cms(t, W) with t the midpoint angle of uniform column
//     2j and W the exponential of uniform column 2j + 1 at site (float: lane j/2, words 2(j%2),
//     2(j%2)+1; double: lane j, words (0, 1), (2, 3)); constants from ops.StableSpec.Constants.
//
//   stable_isotropic_<T>(dst, rows, dim, alpha, inv_alpha, degenerate, clamp, counter, seed,
//                        site, chain0)
//     Row i = sqrt(A_i) · G_i, G = the Normal fill at site, A = the positive map of index alpha
//     (= α/2) on uniform columns 0 and 1 at site + 1 (A = 1 when degenerate ≠ 0, α = 2).
//
//     Both stable kernels: clamp > 0 replaces a value v with |v| > clamp by ±(T)clamp and counts
//     it; counter (unsigned long long, zeroed by the caller) receives the count by one atomicAdd
//     per warp; counter may be null when clamp is 0.
//
//   brownian_<T>(dst, paths, n, tau, sh, increments, seed, site, chain0)
//     dst (paths, n); seg = tau (epochs) or n (tau == 0); per path, in double, with ξ the Normal
//     fill at site: in each segment starting at column e0, l = running sum of ξ from e0,
//     total = the sum of the segment's seg normals (tau > 0 only; they run past n in the last
//     epoch), value at in-segment step m: sh·(l − (m/seg)·total) or sh·l; increments ≠ 0: the
//     difference with the previous value.
//
// Launch. stable kernels: any 1-D grid whose block size is a multiple of 32 (the launcher uses
// 256), grid-stride over (row, Philox lane) items. mafbm and brownian: one thread per path, a
// block of kNoiseWarps warps (128 threads) owning 32 consecutive paths per warp, grid-stride over
// those warps; each thread writes 32 consecutive outputs of its path to a shared tile and the warp
// then stores the tile row by row, 32 consecutive elements per store (coalesced), so a path's
// values go out in order whatever the layout's stride.

#include <cstdint>

#include "normals.cuh"

namespace {

constexpr unsigned int kAllLanes = 0xffffffffu;
constexpr int kNoiseWarps = 4;  // warps per block of mafbm and brownian (128 threads)
constexpr int kTile = 32;       // outputs per path per tile
constexpr int kMaxStates = 16;  // OU states per path in mafbm

// ---------------------------------------------------------------------------------------------
// Element-type maps.

template <typename T>
struct Fn;

template <>
struct Fn<float> {
    static constexpr double kHalfCell = 0x1p-25;  // half the spacing of the 24-bit uniforms
    __device__ __forceinline__ static void sincospi(float x, float* s, float* c) {
        sincospif(x, s, c);
    }
    __device__ __forceinline__ static float log(float x) { return logf(x); }
    __device__ __forceinline__ static float pow(float x, float y) { return powf(x, y); }
    __device__ __forceinline__ static float sqrt(float x) { return sqrtf(x); }
};

template <>
struct Fn<double> {
    static constexpr double kHalfCell = 0x1p-54;  // half the spacing of the 53-bit uniforms
    __device__ __forceinline__ static void sincospi(double x, double* s, double* c) {
        ::sincospi(x, s, c);
    }
    __device__ __forceinline__ static double log(double x) { return ::log(x); }
    __device__ __forceinline__ static double pow(double x, double y) { return ::pow(x, y); }
    __device__ __forceinline__ static double sqrt(double x) { return ::sqrt(x); }
};

// sin_cos_pi: sin(πx), cos(πx) as ops.sinCosPi computes them: n = rint(2x), r = x − n/2 (exact
// in double), sincospi(r) in T, then the quadrant n mod 4.
template <typename T>
__device__ __forceinline__ void sin_cos_pi(double x, T* s, T* c) {
    const double n = rint(2.0 * x);
    const double r = x - 0.5 * n;
    T sr, cr;
    Fn<T>::sincospi(static_cast<T>(r), &sr, &cr);
    switch (static_cast<long long>(n) & 3) {
        case 0:
            *s = sr;
            *c = cr;
            break;
        case 1:
            *s = cr;
            *c = -sr;
            break;
        case 2:
            *s = -sr;
            *c = -cr;
            break;
        default:
            *s = -cr;
            *c = sr;
            break;
    }
}

// ---------------------------------------------------------------------------------------------
// α-stable maps (ops/stable.go: stableAngle, stableExp, stableCMS).

struct CMS {
    double alpha, beta, shift, scale, inv_alpha;
};

// stable_angle: t = u + 2^-(bits+1) − ½ for the stream uniform u (exact in double).
template <typename T>
__device__ __forceinline__ double stable_angle(double u) {
    return (u - 0.5) + Fn<T>::kHalfCell;
}

// stable_exp: W = −log(1 − u) in T, and 2^-(bits+1) at u = 0.
template <typename T>
__device__ __forceinline__ T stable_exp(T u) {
    if (u == T(0)) {
        return static_cast<T>(Fn<T>::kHalfCell);
    }
    return -Fn<T>::log(T(1) - u);
}

// stable_cms: the Chambers–Mallows–Stuck map of ops.stableCMS.
template <typename T>
__device__ __forceinline__ T stable_cms(double t, T w, const CMS& p) {
    if (p.alpha == 1.0) {
        T s, co;
        sin_cos_pi<T>(t, &s, &co);
        const double q = 1.0 + 2.0 * p.beta * t;
        T x = static_cast<T>(q) * (s / co);
        if (p.beta != 0.0) {
            x -= static_cast<T>(2.0 * p.beta / 3.141592653589793) *
                 Fn<T>::log(w * co / static_cast<T>(q));
        }
        return x;
    }
    const double u = t + p.shift;
    const double a1 = p.alpha * u;
    T sa, ca, s1, c1, s0, c0;
    sin_cos_pi<T>(a1, &sa, &ca);
    if (sa == T(0)) {
        return T(0);
    }
    sin_cos_pi<T>(t - a1, &s1, &c1);
    sin_cos_pi<T>(t, &s0, &c0);
    c1 = c1 > T(0) ? c1 : T(0);
    const T inner = Fn<T>::pow(c1 / w, static_cast<T>(1.0 - p.alpha)) / c0;
    return static_cast<T>(p.scale) * sa * Fn<T>::pow(inner, static_cast<T>(p.inv_alpha));
}

// StablePair: the (t, W) of one scalar element from a Philox block. float: element k ∈ {0, 1} of
// the block uses words (2k, 2k + 1); double: the block's two 53-bit uniforms.
template <typename T>
struct StablePair;

template <>
struct StablePair<float> {
    static constexpr int kPerLane = 2;
    __device__ __forceinline__ static void at(uint4 b, int k, double* t, float* w) {
        const unsigned int a = k == 0 ? b.x : b.z;
        const unsigned int c = k == 0 ? b.y : b.w;
        *t = stable_angle<float>(static_cast<double>(uniform_u32(a)));
        *w = stable_exp<float>(uniform_u32(c));
    }
};

template <>
struct StablePair<double> {
    static constexpr int kPerLane = 1;
    __device__ __forceinline__ static void at(uint4 b, int /*k*/, double* t, double* w) {
        *t = stable_angle<double>(uniform_u64(b.x, b.y));
        *w = stable_exp<double>(uniform_u64(b.z, b.w));
    }
};

// clamp_value applies the clamp of ops.Stable to a stored value: |v| > clamp → ±(T)clamp.
template <typename T>
__device__ __forceinline__ T clamp_value(T v, double clamp, unsigned long long* count) {
    if (clamp > 0.0) {
        const double dv = static_cast<double>(v);
        if (dv > clamp) {
            ++*count;
            return static_cast<T>(clamp);
        }
        if (dv < -clamp) {
            ++*count;
            return -static_cast<T>(clamp);
        }
    }
    return v;
}

// warp_count adds the warp's per-lane counts to *counter with one atomic (every lane of the warp
// must call it).
__device__ __forceinline__ void warp_count(unsigned long long* counter, unsigned long long c) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        c += __shfl_down_sync(kAllLanes, c, o);
    }
    if ((threadIdx.x & 31u) == 0 && c != 0) {
        atomicAdd(counter, c);
    }
}

// Walk: the flat items (row, lane) of a (rows, lanes) grid, grid-stride, in steps that keep a
// warp's 32 items consecutive; the loop runs while the warp's first item is in range, so every
// lane of a warp takes part in every iteration (and in the shuffles after the loop).
struct Walk {
    unsigned long long t, total, stride, row, lane, lanes, drow, dlane;

    __device__ __forceinline__ Walk(unsigned long long rows, unsigned long long lanes_) {
        lanes = lanes_;
        total = rows * lanes;
        stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
        t = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
        row = t / lanes;
        lane = t - row * lanes;
        drow = stride / lanes;
        dlane = stride - drow * lanes;
    }
    __device__ __forceinline__ bool warp_more() const { return t - (threadIdx.x & 31u) < total; }
    __device__ __forceinline__ bool valid() const { return t < total; }
    __device__ __forceinline__ void next() {
        t += stride;
        lane += dlane;
        row += drow;
        if (lane >= lanes) {
            lane -= lanes;
            ++row;
        }
    }
};

template <typename T>
__device__ __forceinline__ void stable_scalar(T* __restrict__ dst, long long rows, long long dim,
                                              const CMS& p, double clamp,
                                              unsigned long long* counter, unsigned long long seed,
                                              unsigned long long site,
                                              unsigned long long chain0) {
    constexpr int E = StablePair<T>::kPerLane;
    if (rows <= 0 || dim <= 0) {
        return;
    }
    const unsigned long long udim = static_cast<unsigned long long>(dim);
    const uint2 key = philox_key(seed);
    unsigned long long count = 0;
    for (Walk w(static_cast<unsigned long long>(rows), (udim + E - 1) / E); w.warp_more(); w.next()) {
        if (!w.valid()) {
            continue;
        }
        const uint4 b = philox_block(key, site, static_cast<unsigned int>(chain0 + w.row),
                                     static_cast<unsigned int>(w.lane));
        const unsigned long long j0 = w.lane * E;
        T* out = dst + w.row * udim + j0;
#pragma unroll
        for (int k = 0; k < E; ++k) {
            if (j0 + k < udim) {
                double t;
                T wv;
                StablePair<T>::at(b, k, &t, &wv);
                out[k] = clamp_value(stable_cms<T>(t, wv, p), clamp, &count);
            }
        }
    }
    if (counter != nullptr) {
        warp_count(counter, count);
    }
}

// NormalLane: the Normal fill's values of one Philox block, in T (float: 4 per block, pairs on
// words (x, y) and (z, w); double: 2 per block on the 53-bit uniforms of (x, y) and (z, w)).
template <typename T>
struct NormalLane;

template <>
struct NormalLane<float> {
    static constexpr int W = 4;
    float v0, v1, v2, v3;
    __device__ __forceinline__ void make(uint4 b, bool second_pair) {
        normals_f32(b, second_pair, &v0, &v1, &v2, &v3);
    }
    __device__ __forceinline__ float at(int k) const {
        return k == 0 ? v0 : k == 1 ? v1 : k == 2 ? v2 : v3;
    }
};

template <>
struct NormalLane<double> {
    static constexpr int W = 2;
    double v0, v1;
    __device__ __forceinline__ void make(uint4 b, bool /*second_pair*/) {
        normals_f64(b, &v0, &v1);
    }
    __device__ __forceinline__ double at(int k) const { return k == 0 ? v0 : v1; }
};

template <typename T>
__device__ __forceinline__ void stable_isotropic(T* __restrict__ dst, long long rows,
                                                 long long dim, double alpha, double inv_alpha,
                                                 bool degenerate, double clamp,
                                                 unsigned long long* counter,
                                                 unsigned long long seed, unsigned long long site,
                                                 unsigned long long chain0) {
    constexpr int W = NormalLane<T>::W;
    if (rows <= 0 || dim <= 0) {
        return;
    }
    const unsigned long long udim = static_cast<unsigned long long>(dim);
    const uint2 key = philox_key(seed);
    const CMS pos{alpha, 0.0, 0.5, 1.0, inv_alpha};
    const unsigned int lane_id = threadIdx.x & 31u;
    unsigned long long count = 0;
    for (Walk w(static_cast<unsigned long long>(rows), (udim + W - 1) / W); w.warp_more(); w.next()) {
        const bool valid = w.valid();
        // sqrt(A) of the row: computed by the warp lane holding the row's first item in this
        // warp (its lane 0 or its Philox lane 0), then shuffled to the row's other lanes.
        T scale = T(1);
        if (valid && !degenerate && (lane_id == 0 || w.lane == 0)) {
            const uint4 a = philox_block(key, site + 1, static_cast<unsigned int>(chain0 + w.row), 0u);
            double t;
            T wv;
            StablePair<T>::at(a, 0, &t, &wv);
            scale = Fn<T>::sqrt(stable_cms<T>(t, wv, pos));
        }
        const unsigned int back = valid ? static_cast<unsigned int>(
                                              w.lane < lane_id ? w.lane : lane_id)
                                        : 0u;
        scale = __shfl_sync(kAllLanes, scale, lane_id - back);
        if (!valid) {
            continue;
        }
        const unsigned long long j0 = w.lane * W;
        NormalLane<T> g;
        g.make(philox_block(key, site, static_cast<unsigned int>(chain0 + w.row),
                            static_cast<unsigned int>(w.lane)),
               j0 + 2 < udim);
        T* out = dst + w.row * udim + j0;
#pragma unroll
        for (int k = 0; k < W; ++k) {
            if (j0 + k < udim) {
                out[k] = clamp_value(static_cast<T>(scale * g.at(k)), clamp, &count);
            }
        }
    }
    if (counter != nullptr) {
        warp_count(counter, count);
    }
}

// ---------------------------------------------------------------------------------------------
// Per-path kernels with a shared output tile.

// NormalStream reads the Normal fill of one chain column by column, one Philox block per lane.
template <typename T>
struct NormalStream {
    uint2 key;
    unsigned long long site;
    unsigned int chain;
    long long lane;
    NormalLane<T> cur;

    __device__ __forceinline__ NormalStream(uint2 k, unsigned long long s, unsigned int c)
        : key(k), site(s), chain(c), lane(-1) {}
    __device__ __forceinline__ double at(long long j) {
        constexpr int W = NormalLane<T>::W;
        const long long l = j / W;
        if (l != lane) {
            lane = l;
            cur.make(philox_block(key, site, chain, static_cast<unsigned int>(l)), true);
        }
        return static_cast<double>(cur.at(static_cast<int>(j - l * W)));
    }
};

// TileWriter: the warp's tile of 32 paths × 32 outputs (padded against bank conflicts) and its
// coalesced store.
template <typename T>
struct Tile {
    T v[kTile][kTile + 1];
};

// store_tile writes columns c0 .. c0 + cols − 1 of the warp's 32 paths row0 .. row0 + 31 (those
// below paths) from the tile: lane l stores column c0 + l of each path in turn.
template <typename T>
__device__ __forceinline__ void store_tile(T* __restrict__ dst, const Tile<T>& tile,
                                           unsigned long long row0, unsigned long long paths,
                                           unsigned long long width, unsigned long long c0,
                                           unsigned long long cols, unsigned int lane) {
    __syncwarp();
#pragma unroll 4
    for (int r = 0; r < kTile; ++r) {
        const unsigned long long row = row0 + r;
        if (row < paths && lane < cols) {
            dst[row * width + c0 + lane] = tile.v[r][lane];
        }
    }
    __syncwarp();
}

template <typename T>
__device__ __forceinline__ void brownian_paths(T* __restrict__ dst, long long paths, long long n,
                                               long long tau, double sh, bool increments,
                                               unsigned long long seed, unsigned long long site,
                                               unsigned long long chain0) {
    __shared__ Tile<T> tiles[kNoiseWarps];
    if (paths <= 0 || n <= 0) {
        return;
    }
    const unsigned int lane = threadIdx.x & 31u;
    const unsigned int warp = threadIdx.x >> 5;
    Tile<T>& tile = tiles[warp];
    const unsigned long long upaths = static_cast<unsigned long long>(paths);
    const unsigned long long un = static_cast<unsigned long long>(n);
    const long long seg = tau > 0 ? tau : n;
    const uint2 key = philox_key(seed);
    const unsigned long long warps = static_cast<unsigned long long>(gridDim.x) * kNoiseWarps;
    for (unsigned long long row0 = (static_cast<unsigned long long>(blockIdx.x) * kNoiseWarps + warp) * kTile;
         row0 < upaths; row0 += warps * kTile) {
        const unsigned long long row = row0 + lane;
        const bool active = row < upaths;
        const unsigned int chain = static_cast<unsigned int>(chain0 + row);
        NormalStream<T> xi(key, site, chain);
        double l = 0.0, total = 0.0, prev = 0.0;
        long long m = seg;  // in-segment step of the previous column
        for (unsigned long long c0 = 0; c0 < un; c0 += kTile) {
            const unsigned long long cols = un - c0 < kTile ? un - c0 : kTile;
            if (active) {
                for (unsigned int q = 0; q < cols; ++q) {
                    const long long k = static_cast<long long>(c0 + q);
                    if (m == seg) {  // a new segment starts at column k
                        m = 0;
                        l = 0.0;
                        if (tau > 0) {
                            NormalStream<T> ahead(key, site, chain);
                            total = 0.0;
                            for (long long j = 0; j < seg; ++j) {
                                total += ahead.at(k + j);
                            }
                        }
                    }
                    ++m;
                    l += xi.at(k);
                    double v = l;
                    if (tau > 0) {
                        v = l - static_cast<double>(m) / static_cast<double>(seg) * total;
                    }
                    v *= sh;
                    double out = v;
                    if (increments) {
                        out = v - prev;
                        prev = v;
                    }
                    tile.v[lane][q] = static_cast<T>(out);
                }
            }
            store_tile(dst, tile, row0, upaths, un, c0, cols, lane);
        }
    }
}

// mafbm_path_block runs the MA-fBM recursion for the warp's 32 paths with at most KMAX states.
template <typename T, int KMAX>
__device__ __forceinline__ void mafbm_paths(T* __restrict__ dst, T* __restrict__ y,
                                            const double* tbl, Tile<T>& tile, long long paths,
                                            long long steps, int K, unsigned long long seed,
                                            unsigned long long site, unsigned long long stride,
                                            unsigned long long chain0) {
    constexpr int W = NormalLane<T>::W;
    const double* decay = tbl;
    const double* weight = tbl + K;
    const double* chol = tbl + 2 * K;
    const unsigned int lane = threadIdx.x & 31u;
    const unsigned int warp = threadIdx.x >> 5;
    const unsigned long long upaths = static_cast<unsigned long long>(paths);
    const unsigned long long usteps = static_cast<unsigned long long>(steps);
    const uint2 key = philox_key(seed);
    const unsigned long long warps = static_cast<unsigned long long>(gridDim.x) * kNoiseWarps;
    for (unsigned long long row0 = (static_cast<unsigned long long>(blockIdx.x) * kNoiseWarps + warp) * kTile;
         row0 < upaths; row0 += warps * kTile) {
        const unsigned long long row = row0 + lane;
        const bool active = row < upaths;
        const unsigned int chain = static_cast<unsigned int>(chain0 + row);
        double state[KMAX];
#pragma unroll
        for (int r = 0; r < KMAX; ++r) {
            state[r] = (active && r < K) ? static_cast<double>(y[row * K + r]) : 0.0;
        }
        for (unsigned long long c0 = 0; c0 < usteps; c0 += kTile) {
            const unsigned long long cols = usteps - c0 < kTile ? usteps - c0 : kTile;
            if (active) {
                for (unsigned int q = 0; q < cols; ++q) {
                    const unsigned long long s_site = site + (c0 + q) * stride;
                    double xi[KMAX];
#pragma unroll
                    for (int l0 = 0; l0 < KMAX; l0 += W) {
                        if (l0 < K) {
                            NormalLane<T> g;
                            g.make(philox_block(key, s_site, chain, static_cast<unsigned int>(l0 / W)),
                                   l0 + 2 < K);
#pragma unroll
                            for (int k = 0; k < W; ++k) {
                                xi[l0 + k] = static_cast<double>(g.at(k));
                            }
                        } else {
#pragma unroll
                            for (int k = 0; k < W; ++k) {
                                xi[l0 + k] = 0.0;
                            }
                        }
                    }
                    double out = 0.0;
#pragma unroll
                    for (int r = 0; r < KMAX; ++r) {
                        if (r < K) {
                            double acc = 0.0;
#pragma unroll
                            for (int j = 0; j <= r; ++j) {
                                acc += chol[r * K + j] * xi[j];
                            }
                            state[r] = decay[r] * state[r] + acc;
                        }
                    }
#pragma unroll
                    for (int r = 0; r < KMAX; ++r) {
                        if (r < K) {
                            out += weight[r] * state[r];
                        }
                    }
                    tile.v[lane][q] = static_cast<T>(out);
                }
            }
            store_tile(dst, tile, row0, upaths, usteps, c0, cols, lane);
        }
        if (active) {
#pragma unroll
            for (int r = 0; r < KMAX; ++r) {
                if (r < K) {
                    y[row * K + r] = static_cast<T>(state[r]);
                }
            }
        }
    }
}

template <typename T>
__device__ __forceinline__ void mafbm(T* __restrict__ dst, T* __restrict__ y,
                                      const double* __restrict__ table, long long paths,
                                      long long steps, long long k, unsigned long long seed,
                                      unsigned long long site, unsigned long long stride,
                                      unsigned long long chain0) {
    __shared__ double tbl[2 * kMaxStates + kMaxStates * kMaxStates];
    __shared__ Tile<T> tiles[kNoiseWarps];
    if (paths <= 0 || k < 1 || k > kMaxStates) {
        return;
    }
    const int K = static_cast<int>(k);
    for (int i = threadIdx.x; i < 2 * K + K * K; i += blockDim.x) {
        tbl[i] = table[i];
    }
    __syncthreads();
    Tile<T>& tile = tiles[threadIdx.x >> 5];
    if (K <= 4) {
        mafbm_paths<T, 4>(dst, y, tbl, tile, paths, steps, K, seed, site, stride, chain0);
    } else if (K <= 8) {
        mafbm_paths<T, 8>(dst, y, tbl, tile, paths, steps, K, seed, site, stride, chain0);
    } else {
        mafbm_paths<T, 16>(dst, y, tbl, tile, paths, steps, K, seed, site, stride, chain0);
    }
}

}  // namespace

// mafbm_<T>: see the header comment. Block size kNoiseWarps·32 = 128.
extern "C" __global__ void __launch_bounds__(128) mafbm_f32(float* dst, float* y, const double* table,
                                                            long long paths, long long steps, long long k,
                                                            unsigned long long seed, unsigned long long site,
                                                            unsigned long long stride,
                                                            unsigned long long chain0) {
    mafbm<float>(dst, y, table, paths, steps, k, seed, site, stride, chain0);
}

extern "C" __global__ void __launch_bounds__(128) mafbm_f64(double* dst, double* y, const double* table,
                                                            long long paths, long long steps, long long k,
                                                            unsigned long long seed, unsigned long long site,
                                                            unsigned long long stride,
                                                            unsigned long long chain0) {
    mafbm<double>(dst, y, table, paths, steps, k, seed, site, stride, chain0);
}

// stable_<T>: the scalar kinds (symmetric, skewed, positive).
extern "C" __global__ void stable_f32(float* dst, long long rows, long long dim, double alpha,
                                      double beta, double shift, double scale, double inv_alpha,
                                      double clamp, unsigned long long* counter,
                                      unsigned long long seed, unsigned long long site,
                                      unsigned long long chain0) {
    stable_scalar<float>(dst, rows, dim, CMS{alpha, beta, shift, scale, inv_alpha}, clamp, counter,
                         seed, site, chain0);
}

extern "C" __global__ void stable_f64(double* dst, long long rows, long long dim, double alpha,
                                      double beta, double shift, double scale, double inv_alpha,
                                      double clamp, unsigned long long* counter,
                                      unsigned long long seed, unsigned long long site,
                                      unsigned long long chain0) {
    stable_scalar<double>(dst, rows, dim, CMS{alpha, beta, shift, scale, inv_alpha}, clamp, counter,
                          seed, site, chain0);
}

// stable_isotropic_<T>: sub-Gaussian isotropic vectors, one per row.
extern "C" __global__ void stable_isotropic_f32(float* dst, long long rows, long long dim,
                                                double alpha, double inv_alpha, long long degenerate,
                                                double clamp, unsigned long long* counter,
                                                unsigned long long seed, unsigned long long site,
                                                unsigned long long chain0) {
    stable_isotropic<float>(dst, rows, dim, alpha, inv_alpha, degenerate != 0, clamp, counter, seed,
                            site, chain0);
}

extern "C" __global__ void stable_isotropic_f64(double* dst, long long rows, long long dim,
                                                double alpha, double inv_alpha, long long degenerate,
                                                double clamp, unsigned long long* counter,
                                                unsigned long long seed, unsigned long long site,
                                                unsigned long long chain0) {
    stable_isotropic<double>(dst, rows, dim, alpha, inv_alpha, degenerate != 0, clamp, counter, seed,
                             site, chain0);
}

// brownian_<T>: Brownian paths, bridges per epoch, or their increments. Block size 128.
extern "C" __global__ void __launch_bounds__(128) brownian_f32(float* dst, long long paths, long long n,
                                                               long long tau, double sh, long long increments,
                                                               unsigned long long seed, unsigned long long site,
                                                               unsigned long long chain0) {
    brownian_paths<float>(dst, paths, n, tau, sh, increments != 0, seed, site, chain0);
}

extern "C" __global__ void __launch_bounds__(128) brownian_f64(double* dst, long long paths, long long n,
                                                               long long tau, double sh, long long increments,
                                                               unsigned long long seed, unsigned long long site,
                                                               unsigned long long chain0) {
    brownian_paths<double>(dst, paths, n, tau, sh, increments != 0, seed, site, chain0);
}
