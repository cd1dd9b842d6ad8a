// Brownian intervals: increments W(s, t) of Brownian paths on [0, T] from a dyadic tree of
// Brownian-bridge splits whose normals are keyed by (seed, site, chain, node) — no stored tree.
// ops/binterval.go is the specification (the construction, the node keying, the grid rounding);
// this kernel performs its operations one for one, fma where it uses math.FMA, in double, so that
// every value is the same bits as the CPU reference.
//
// Kernels (T = float: _f32, T = double: _f64); every parameter is 8 bytes wide:
//
//   binterval_<T>(dst, s, t, paths, q, s_shared, t_shared, horizon, scale, sqrt_t, depth, seed,
//                 site, chain0)
//     dst (paths, q); s, t (double) (paths, q), or (1, q) when s_shared / t_shared ≠ 0. With
//     D = depth, scale = 2^D (exact), k(x) = rint((x / horizon)·scale) and B the standard path
//     of chain chain0 + row on [0, 1] at grid index k (binterval_value),
//       dst[row, j] = sqrt_t · (B(k(t)) − B(k(s)))
//     rounded once to T. The queries are valid (0 ≤ s < t ≤ horizon, finite): the launcher checks
//     them with ops.CheckBrownianQueries first.
//
// Launch: any 1-D grid, grid-stride over the paths·q queries, one thread per query.

#include <cstdint>

#include "normals.cuh"

namespace {

// binterval_block is the Philox block of node pair p: lane uint32(p) of chain at site + (p >> 32).
__device__ __forceinline__ uint4 binterval_block(uint2 key, unsigned long long site,
                                                 unsigned int chain, unsigned long long p) {
    return philox_block(key, site + (p >> 32), chain, static_cast<unsigned int>(p));
}

// binterval_value is B(u_k), k in [0, 2^depth] (ops.BrownianInterval.value without its cache):
// pair 0 gives B(1) = ξ_0 and the root's ξ_1; the node m = 2^l + lo / width at level l covering
// [lo, lo + width] sets its midpoint to fma(σ_l, ξ_m, 0.5 (B(lo) + B(lo + width))),
// σ_l = sqrt(2^(−l−2)), and its children 2m, 2m + 1 take the normals of pair m.
__device__ __forceinline__ double binterval_value(uint2 key, unsigned long long site,
                                                  unsigned int chain, unsigned long long k,
                                                  int depth) {
    if (k == 0) {
        return 0.0;
    }
    double z0, z1;
    box_muller_f64(binterval_block(key, site, chain, 0ull), &z0, &z1);
    unsigned long long lo = 0;
    double bl = 0.0, bh = z0, xi = z1;
    for (int l = 0;; ++l) {
        const unsigned long long width = 1ull << (depth - l);
        if (k == lo) {
            return bl;
        }
        if (k == lo + width) {
            return bh;
        }
        const unsigned long long half = width >> 1;
        const double sigma = sqrt(__longlong_as_double(static_cast<long long>(1023 - 2 - l) << 52));
        const double mid = fma(sigma, xi, 0.5 * (bl + bh));
        if (k == lo + half) {
            return mid;
        }
        const unsigned long long m = (1ull << l) + (lo >> (depth - l));
        box_muller_f64(binterval_block(key, site, chain, m), &z0, &z1);
        if (k > lo + half) {
            lo += half;
            bl = mid;
            xi = z1;
        } else {
            bh = mid;
            xi = z0;
        }
    }
}

template <typename T>
__device__ __forceinline__ void binterval(T* __restrict__ dst, const double* __restrict__ s,
                                          const double* __restrict__ t, long long paths,
                                          long long q, bool s_shared, bool t_shared,
                                          double horizon, double scale, double sqrt_t, int depth,
                                          unsigned long long seed, unsigned long long site,
                                          unsigned long long chain0) {
    if (paths <= 0 || q <= 0) {
        return;
    }
    const uint2 key = philox_key(seed);
    const unsigned long long uq = static_cast<unsigned long long>(q);
    const unsigned long long n = static_cast<unsigned long long>(paths) * uq;
    const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
    for (unsigned long long i = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
         i < n; i += stride) {
        const unsigned long long row = i / uq;
        const unsigned long long col = i - row * uq;
        const double a = s[(s_shared ? 0ull : row * uq) + col];
        const double b = t[(t_shared ? 0ull : row * uq) + col];
        const unsigned long long ka = static_cast<unsigned long long>(rint((a / horizon) * scale));
        const unsigned long long kb = static_cast<unsigned long long>(rint((b / horizon) * scale));
        const unsigned int chain = static_cast<unsigned int>(chain0 + row);
        const double ba = binterval_value(key, site, chain, ka, depth);
        const double bb = binterval_value(key, site, chain, kb, depth);
        dst[i] = static_cast<T>(sqrt_t * (bb - ba));
    }
}

}  // namespace

// binterval_<T>: see the header comment.
extern "C" __global__ void binterval_f32(float* dst, const double* s, const double* t,
                                         long long paths, long long q, long long s_shared,
                                         long long t_shared, double horizon, double scale,
                                         double sqrt_t, long long depth, unsigned long long seed,
                                         unsigned long long site, unsigned long long chain0) {
    binterval<float>(dst, s, t, paths, q, s_shared != 0, t_shared != 0, horizon, scale, sqrt_t,
                     static_cast<int>(depth), seed, site, chain0);
}

extern "C" __global__ void binterval_f64(double* dst, const double* s, const double* t,
                                         long long paths, long long q, long long s_shared,
                                         long long t_shared, double horizon, double scale,
                                         double sqrt_t, long long depth, unsigned long long seed,
                                         unsigned long long site, unsigned long long chain0) {
    binterval<double>(dst, s, t, paths, q, s_shared != 0, t_shared != 0, horizon, scale, sqrt_t,
                      static_cast<int>(depth), seed, site, chain0);
}
