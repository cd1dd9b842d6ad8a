// Fused updates and constraint tests of the diffusion samplers (docs/math.md §5): the multi-term
// update of ops.Backend.Combine and the Metropolis constraint step of ops.Backend.MetropolisStep
// (§5.4). The CPU references in ops/combine.go and ops/domain.go are the specification.
//
// Precision. As in the reference, every combination is evaluated in double whatever the data type
// (float data widen exactly), in the reference's order, and each output is rounded once; the
// IEEE-exact build contracts nothing into FMAs. Combine therefore differs from the reference only
// by its normals ξ, which are computed in the kernel's precision by random.cu's Box–Muller code
// (a few ulp from the reference's), and MetropolisStep not at all: see below.
//
// Random numbers follow the draw layout of ops/philox.go (see philox.cuh): the normals of chain
// c = chain0 + row, coordinate j at site s are the Normal fill's numbers for (seed, s, c, j) in the
// kernel's precision — float: lane j / 4, Box–Muller pairs on words (0, 1) and (2, 3); double:
// lane j / 2, one pair on the 53-bit uniforms of words (0, 1) and (2, 3).
//
// Kernels (T = float: _f32, T = double: _f64); every parameter is 8 bytes wide (pointers, long
// long, unsigned long long, double); unused pointers are null:
//
//   combine_<T>(dst, t0, t1, t2, t3, t4, t5, c0, c1, c2, c3, c4, c5, terms, noise, n, d, seed, site,
//               chain0)
//     dst = Σ_{k < terms} c_k t_k + noise · ξ element by element, the sum formed as
//     ((0 + c_0 t_0) + c_1 t_1) + … + noise ξ. dst may be one of the t_k (each element is read
//     before it is written, by the same thread). noise == 0: no normal is drawn, no noise term is
//     added, and the (n, d) tensors are walked as flat arrays, 16 bytes per thread and step where
//     every pointer is 16-byte aligned. noise != 0: one thread per (row, Philox lane), W = 4
//     (float) or 2 (double) consecutive coordinates of one row, so each block is generated once.
//
//   metropolis_box_<T>(x, prop, rejected, n, d, group, lo, hi)
//   metropolis_ball_<T>(x, prop, rejected, n, d, group, center, radius)
//   metropolis_polytope_<T>(x, prop, rejected, n, d, group, a, b, m)
//     Row by row: if prop_i lies in the domain then x_i ← prop_i, else rejected[i] += 1 (double).
//     Membership as ops.Domain.Contains, in double on the stored values (lo, hi, center, a (m × d,
//     row-major) and b are double arrays):
//       box       lo_j ≤ x_j ≤ hi_j for every j
//       ball      Σ_j (x_j − c_j)² ≤ radius²
//       polytope  Σ_j a_ij x_j ≤ b_i for every i
//     A NaN coordinate is never inside. A group of `group` lanes (a power of two ≤ 32) of one warp
//     owns a row; coordinates are strided over the group.
//
// Exact decisions. The reference sums the ball's and the polytope's terms in coordinate order; a
// group sums them in another order (lane partial sums, then a butterfly), which can differ from
// the reference's sum by at most 2γ_{d−1} Σ_j |t_j| (γ_k = k u / (1 − k u), u = 2^-53, for any
// summation order of the same products t_j, which both compute identically). The group also
// sums |t_j| (A ≥ Σ|t_j| (1 − γ_{d−1})). When |s − threshold| > 4 d u A, with A ≤ 2^1000 so that no
// partial sum of either order can overflow, the reference's sum lies on the same side of the
// threshold and the group's decision is the reference's. Otherwise (a point within rounding of the
// boundary, a NaN or an infinite term) every lane of the group recomputes the sum in the
// reference's order and decides on it. Decisions therefore equal the reference's exactly.
//
// Launch: any 1-D grid whose block size is a multiple of 32 (the launcher uses 256); all loops are
// grid-stride with 64-bit indices. n and d are element counts; rows are contiguous with stride d.

#include "lanes.cuh"

namespace {

constexpr unsigned int kAllLanes = 0xffffffffu;

// kMaxTerms is ops.MaxTerms.
constexpr int kMaxTerms = 6;

// Terms: the pointers and coefficients of one Combine, held in registers (every index into the
// arrays is a compile-time constant after unrolling).
template <typename T>
struct Terms {
    const T* t[kMaxTerms];
    double c[kMaxTerms];
    int count;

    // aligned reports whether every used term is 16-byte aligned.
    __device__ __forceinline__ bool aligned() const {
        bool ok = true;
#pragma unroll
        for (int k = 0; k < kMaxTerms; ++k) {
            if (k < count) {
                ok = ok && aligned16(t[k]);
            }
        }
        return ok;
    }

    // accumulate sets v to ((0 + c_0 t_0[off..]) + c_1 t_1[off..]) + … over the cnt values at off.
    __device__ __forceinline__ void accumulate(unsigned long long off, int cnt, bool vec,
                                               double (&v)[Lane<T>::W]) const {
        constexpr int W = Lane<T>::W;
#pragma unroll
        for (int q = 0; q < W; ++q) {
            v[q] = 0.0;
        }
#pragma unroll
        for (int k = 0; k < kMaxTerms; ++k) {
            if (k < count) {
                double s[W];
                load_lane<T>(t[k] + off, cnt, vec, s);
#pragma unroll
                for (int q = 0; q < W; ++q) {
                    v[q] = v[q] + c[k] * s[q];
                }
            }
        }
    }
};

// combine_flat: noise == 0, the (n, d) tensors as flat arrays of total elements, W per step.
template <typename T>
__device__ __forceinline__ void combine_flat(T* dst, const Terms<T>& terms, unsigned long long total) {
    constexpr int W = Lane<T>::W;
    const bool aligned = aligned16(dst) && terms.aligned();
    const unsigned long long chunks = (total + W - 1) / W;
    const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
    for (unsigned long long q = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
         q < chunks; q += stride) {
        const unsigned long long off = q * W;
        const int cnt = static_cast<int>(total - off < W ? total - off : W);
        const bool vec = aligned && cnt == W;
        double v[W];
        terms.accumulate(off, cnt, vec, v);
        store_lane<T>(dst + off, cnt, vec, v);
    }
}

// combine_rows: noise != 0, one thread per (row, Philox lane).
template <typename T>
__device__ __forceinline__ void combine_rows(T* dst, const Terms<T>& terms, double noise, long long n,
                                             long long d, unsigned long long seed, unsigned long long site,
                                             unsigned long long chain0) {
    constexpr int W = Lane<T>::W;
    const unsigned long long udim = static_cast<unsigned long long>(d);
    const bool vec = udim % W == 0 && aligned16(dst) && terms.aligned();
    const uint2 key = philox_key(seed);
    for (LaneWalk it(n, d, W); it.more(); it.next()) {
        const unsigned long long j = it.lane * W;
        const unsigned long long off = it.row * udim + j;
        const int cnt = static_cast<int>(udim - j < W ? udim - j : W);
        double v[W], z[W];
        terms.accumulate(off, cnt, vec, v);
        const uint4 b = philox_block(key, site, static_cast<unsigned int>(chain0 + it.row),
                                     static_cast<unsigned int>(it.lane));
        Lane<T>::normals(b, cnt, z);
#pragma unroll
        for (int q = 0; q < W; ++q) {
            v[q] = v[q] + noise * z[q];
        }
        store_lane<T>(dst + off, cnt, vec, v);
    }
}

template <typename T>
__device__ __forceinline__ void combine(T* dst, const T* t0, const T* t1, const T* t2, const T* t3,
                                        const T* t4, const T* t5, double c0, double c1, double c2, double c3,
                                        double c4, double c5, long long count, double noise, long long n,
                                        long long d, unsigned long long seed, unsigned long long site,
                                        unsigned long long chain0) {
    if (n <= 0 || d <= 0 || count < 1 || count > kMaxTerms) {
        return;
    }
    const Terms<T> terms = {{t0, t1, t2, t3, t4, t5}, {c0, c1, c2, c3, c4, c5}, static_cast<int>(count)};
    if (noise == 0.0) {
        combine_flat<T>(dst, terms, static_cast<unsigned long long>(n) * static_cast<unsigned long long>(d));
    } else {
        combine_rows<T>(dst, terms, noise, n, d, seed, site, chain0);
    }
}

// group_all: the logical AND of ok over the g lanes of a group, the same in every lane.
__device__ __forceinline__ bool group_all(bool ok, int g) {
    int v = ok ? 1 : 0;
    for (int o = g >> 1; o > 0; o >>= 1) {
        v = v & __shfl_xor_sync(kAllLanes, v, o);
    }
    return v != 0;
}

// certain reports whether a group's sum s of d terms, whose magnitudes sum to abs_sum, lies on the
// same side of threshold as the sum of the same terms in any other order (see the header).
__device__ __forceinline__ bool certain(double s, double abs_sum, double threshold, long long d) {
    if (!(abs_sum <= 0x1p1000)) {  // NaN or near overflow: decide in the reference's order
        return false;
    }
    const double bound = abs_sum * (static_cast<double>(d) * 0x1p-51);
    return fabs(s - threshold) > bound;
}

// Box: every lane checks its coordinates; the group ANDs the answers (exact in any order).
struct BoxDomain {
    const double* lo;
    const double* hi;

    template <typename T>
    __device__ __forceinline__ bool contains(const T* p, unsigned long long d, int sub, int g,
                                             bool active) const {
        bool ok = true;
        if (active) {
            for (unsigned long long j = sub; j < d; j += g) {
                const double v = static_cast<double>(p[j]);
                ok = ok && (lo[j] <= v && v <= hi[j]);
            }
        }
        return group_all(ok, g);
    }
};

// Ball: Σ (x_j − c_j)² ≤ radius², the terms summed as described in the header.
struct BallDomain {
    const double* center;
    double radius;

    template <typename T>
    __device__ __forceinline__ bool contains(const T* p, unsigned long long d, int sub, int g,
                                             bool active) const {
        const double r2 = radius * radius;
        double s = 0.0;
        if (active) {
            for (unsigned long long j = sub; j < d; j += g) {
                const double r = static_cast<double>(p[j]) - center[j];
                s = s + r * r;
            }
        }
        s = group_sum(s, g);  // every term is ≥ 0 (or NaN): s is also the sum of magnitudes
        if (g == 1 || certain(s, s, r2, static_cast<long long>(d))) {
            return s <= r2;
        }
        s = 0.0;
        for (unsigned long long j = 0; j < d; ++j) {
            const double r = static_cast<double>(p[j]) - center[j];
            s = s + r * r;
        }
        return s <= r2;
    }
};

// Polytope: for each constraint i, Σ_j a_ij x_j ≤ b_i, the terms summed as described in the header.
// Every lane runs all m constraints (the loop is uniform over the warp).
struct PolytopeDomain {
    const double* a;
    const double* b;
    long long m;

    template <typename T>
    __device__ __forceinline__ bool contains(const T* p, unsigned long long d, int sub, int g,
                                             bool active) const {
        bool inside = true;
        for (long long i = 0; i < m; ++i) {
            const double* ai = a + static_cast<unsigned long long>(i) * d;
            double s = 0.0, abs_sum = 0.0;
            if (active) {
                for (unsigned long long j = sub; j < d; j += g) {
                    const double t = ai[j] * static_cast<double>(p[j]);
                    s = s + t;
                    abs_sum = abs_sum + fabs(t);
                }
            }
            s = group_sum(s, g);
            abs_sum = group_sum(abs_sum, g);
            if (!active || !inside) {
                continue;
            }
            const double bi = b[i];
            if (g == 1 || certain(s, abs_sum, bi, static_cast<long long>(d))) {
                inside = s <= bi;
                continue;
            }
            s = 0.0;
            for (unsigned long long j = 0; j < d; ++j) {
                s = s + ai[j] * static_cast<double>(p[j]);
            }
            inside = s <= bi;
        }
        return inside;
    }
};

template <typename T, typename Domain>
__device__ __forceinline__ void metropolis_rows(T* x, const T* prop, double* rejected, long long n,
                                                long long d, long long group, const Domain& dom) {
    if (n <= 0 || d <= 0) {
        return;
    }
    const unsigned long long un = static_cast<unsigned long long>(n);
    const unsigned long long udim = static_cast<unsigned long long>(d);
    GroupWalk gw(group);
    const int g = gw.g;
    for (unsigned long long base = gw.base; base < un; base += gw.step) {  // uniform over the warp
        const unsigned long long row = base + gw.slot;
        const bool active = row < un;
        const unsigned long long off = active ? row * udim : 0;
        const bool inside = dom.contains(prop + off, udim, gw.sub, g, active);
        if (!active) {
            continue;
        }
        if (inside) {
            for (unsigned long long j = gw.sub; j < udim; j += g) {
                x[off + j] = prop[off + j];
            }
        } else if (gw.sub == 0) {
            rejected[row] = rejected[row] + 1.0;
        }
    }
}

}  // namespace

#define DIFFUSION_KERNELS(T, SUFFIX)                                                                       \
    extern "C" __global__ void combine_##SUFFIX(                                                          \
        T* dst, const T* t0, const T* t1, const T* t2, const T* t3, const T* t4, const T* t5, double c0,  \
        double c1, double c2, double c3, double c4, double c5, long long terms, double noise, long long n, \
        long long d, unsigned long long seed, unsigned long long site, unsigned long long chain0) {       \
        combine<T>(dst, t0, t1, t2, t3, t4, t5, c0, c1, c2, c3, c4, c5, terms, noise, n, d, seed, site,   \
                   chain0);                                                                               \
    }                                                                                                     \
    extern "C" __global__ void __launch_bounds__(256) metropolis_box_##SUFFIX(                            \
        T* x, const T* prop, double* rejected, long long n, long long d, long long group,                 \
        const double* lo, const double* hi) {                                                             \
        metropolis_rows<T>(x, prop, rejected, n, d, group, BoxDomain{lo, hi});                            \
    }                                                                                                     \
    extern "C" __global__ void __launch_bounds__(256) metropolis_ball_##SUFFIX(                           \
        T* x, const T* prop, double* rejected, long long n, long long d, long long group,                 \
        const double* center, double radius) {                                                            \
        metropolis_rows<T>(x, prop, rejected, n, d, group, BallDomain{center, radius});                   \
    }                                                                                                     \
    extern "C" __global__ void __launch_bounds__(256) metropolis_polytope_##SUFFIX(                       \
        T* x, const T* prop, double* rejected, long long n, long long d, long long group,                 \
        const double* a, const double* b, long long m) {                                                  \
        metropolis_rows<T>(x, prop, rejected, n, d, group, PolytopeDomain{a, b, m});                      \
    }

DIFFUSION_KERNELS(float, f32)
DIFFUSION_KERNELS(double, f64)

#undef DIFFUSION_KERNELS
