// Brownian intervals: increments W(s, t) of Brownian paths on [0, T] from a dyadic tree of
// Brownian-bridge splits whose normals are keyed by (seed, site, chain, node) — no stored tree.
// ops/binterval.go is the specification (the construction, the node keying, the grid rounding);
// this kernel performs its operations one for one, fma where it uses math.FMA, in double, so that
// every value is the same bits as the CPU reference.
//
// Kernels (T = float: _f32, T = double: _f64); every parameter is 8 bytes wide:
//
//   binterval_<T>(dst, s, t, paths, q, s_shared, t_shared, horizon, scale, sqrt_t, depth, bad,
//                 seed, site, chain0)
//     dst (paths, q); s, t (double) (paths, q), or (1, q) when s_shared / t_shared ≠ 0. With
//     D = depth, scale = 2^D (exact), k(x) = rint((x / horizon)·scale) and B the standard path
//     of chain chain0 + row on [0, 1] at grid index k (binterval_value),
//       dst[row, j] = sqrt_t · (B(k(t)) − B(k(s)))
//     rounded once to T. A query that is not 0 ≤ s < t ≤ horizon (NaN and infinities included)
//     writes nothing and adds 1 to *bad (unsigned long long, zeroed by the caller), which the
//     launcher reads back to report the first bad query as ops.CheckBrownianQueries does.
//     B(k(s)) and B(k(t)) share the descent from the root down to the node where k(s) and k(t)
//     part (binterval_pair): about D + log2(k(t) − k(s)) Philox blocks per query instead of 2D.
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

// BNode is one tree node on a descent: level l, grid range [lo, lo + 2^(depth − l)], end values
// bl, bh, its own normal xi.
struct BNode {
    unsigned long long lo;
    double bl, bh, xi;
    int l;
};

// binterval_root is the root: pair 0 gives B(1) = ξ_0 and the root's normal ξ_1.
__device__ __forceinline__ BNode binterval_root(uint2 key, unsigned long long site,
                                                unsigned int chain) {
    double z0, z1;
    box_muller_f64(binterval_block(key, site, chain, 0ull), &z0, &z1);
    return BNode{0ull, 0.0, z0, z1, 0};
}

// binterval_mid is the node's midpoint value fma(σ_l, ξ, 0.5 (bl + bh)), σ_l = sqrt(2^(−l−2)).
__device__ __forceinline__ double binterval_mid(const BNode& n) {
    const double sigma = sqrt(__longlong_as_double(static_cast<long long>(1023 - 2 - n.l) << 52));
    return fma(sigma, n.xi, 0.5 * (n.bl + n.bh));
}

// binterval_child is the child of n (midpoint value mid) on the side of grid index k: the children
// 2m, 2m + 1 of node m = 2^l + lo / width take the normals of pair m.
__device__ __forceinline__ BNode binterval_child(const BNode& n, double mid, unsigned long long k,
                                                 uint2 key, unsigned long long site,
                                                 unsigned int chain, int depth) {
    const unsigned long long half = 1ull << (depth - n.l - 1);
    const unsigned long long m = (1ull << n.l) + (n.lo >> (depth - n.l));
    double z0, z1;
    box_muller_f64(binterval_block(key, site, chain, m), &z0, &z1);
    if (k > n.lo + half) {
        return BNode{n.lo + half, mid, n.bh, z1, n.l + 1};
    }
    return BNode{n.lo, n.bl, mid, z0, n.l + 1};
}

// binterval_value is B(u_k) for k in n's closed range (ops.BrownianInterval.value resumed at n):
// an end of the range, the midpoint, or the value below in the child on k's side.
__device__ __forceinline__ double binterval_value(BNode n, unsigned long long k, uint2 key,
                                                  unsigned long long site, unsigned int chain,
                                                  int depth) {
    for (;;) {
        const unsigned long long width = 1ull << (depth - n.l);
        if (k == n.lo) {
            return n.bl;
        }
        if (k == n.lo + width) {
            return n.bh;
        }
        const double mid = binterval_mid(n);
        if (k == n.lo + (width >> 1)) {
            return mid;
        }
        n = binterval_child(n, mid, k, key, site, chain, depth);
    }
}

// binterval_pair sets *va, *vb to B(u_ka), B(u_kb): one descent while both grid indices lie
// strictly inside the same child, then one each from the node where they part (the values are
// those of two descents from the root: the same nodes, the same operations).
__device__ __forceinline__ void binterval_pair(unsigned long long ka, unsigned long long kb,
                                               uint2 key, unsigned long long site,
                                               unsigned int chain, int depth, double* va,
                                               double* vb) {
    BNode n = binterval_root(key, site, chain);
    for (;;) {
        const unsigned long long width = 1ull << (depth - n.l);
        const unsigned long long midk = n.lo + (width >> 1);
        if (ka <= n.lo || kb <= n.lo || ka >= n.lo + width || kb >= n.lo + width || ka == midk ||
            kb == midk || (ka > midk) != (kb > midk)) {
            break;
        }
        n = binterval_child(n, binterval_mid(n), ka, key, site, chain, depth);
    }
    *va = binterval_value(n, ka, key, site, chain, depth);
    *vb = binterval_value(n, kb, key, site, chain, depth);
}

template <typename T>
__device__ __forceinline__ void binterval(T* __restrict__ dst, const double* __restrict__ s,
                                          const double* __restrict__ t, long long paths,
                                          long long q, bool s_shared, bool t_shared,
                                          double horizon, double scale, double sqrt_t, int depth,
                                          unsigned long long* __restrict__ bad,
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
        // 0 ≤ a < b ≤ horizon (false for NaN, and it leaves both finite): ops' checkQuery.
        if (!(a >= 0.0 && a < b && b <= horizon)) {
            atomicAdd(bad, 1ull);
            continue;
        }
        const unsigned long long ka = static_cast<unsigned long long>(rint((a / horizon) * scale));
        const unsigned long long kb = static_cast<unsigned long long>(rint((b / horizon) * scale));
        double ba, bb;
        binterval_pair(ka, kb, key, site, static_cast<unsigned int>(chain0 + row), depth, &ba, &bb);
        dst[i] = static_cast<T>(sqrt_t * (bb - ba));
    }
}

}  // namespace

// binterval_<T>: see the header comment.
extern "C" __global__ void binterval_f32(float* dst, const double* s, const double* t,
                                         long long paths, long long q, long long s_shared,
                                         long long t_shared, double horizon, double scale,
                                         double sqrt_t, long long depth, unsigned long long* bad,
                                         unsigned long long seed, unsigned long long site,
                                         unsigned long long chain0) {
    binterval<float>(dst, s, t, paths, q, s_shared != 0, t_shared != 0, horizon, scale, sqrt_t,
                     static_cast<int>(depth), bad, seed, site, chain0);
}

extern "C" __global__ void binterval_f64(double* dst, const double* s, const double* t,
                                         long long paths, long long q, long long s_shared,
                                         long long t_shared, double horizon, double scale,
                                         double sqrt_t, long long depth, unsigned long long* bad,
                                         unsigned long long seed, unsigned long long site,
                                         unsigned long long chain0) {
    binterval<double>(dst, s, t, paths, q, s_shared != 0, t_shared != 0, horizon, scale, sqrt_t,
                      static_cast<int>(depth), bad, seed, site, chain0);
}
