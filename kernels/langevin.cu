// Langevin-family steps (docs/math.md §2–§3): the fused linear step of ULA, MALA proposals and
// exponential integrators, the MALA Metropolis correction, one underdamped Langevin step and the
// reverse-transition-kernel Gaussian factor. The CPU reference in ops/langevin_cpu.go is the
// specification; every kernel here follows its arithmetic operation for operation.
//
// Precision. The reference computes in double whatever the data type, rounding once when it stores
// a float result. The kernels do the same: float data are widened (exactly) to double, every
// combination is evaluated in double in the reference's order (the IEEE-exact build contracts
// nothing into FMAs), and each output is rounded once. What differs from the reference is
// therefore only (a) the normals ξ, computed in the kernel's precision by the same Box–Muller code
// as random.cu (a few ulp from the reference, whose transcendental functions round differently),
// and (b) the summation order of the two row reductions (MALA's ‖·‖², the Gaussian factor's
// ‖c − a x‖²), which are accumulated in double for float data too, so that an accept decision
// taken by the kernel is the reference's except when log α lies within a few double ulp of log U.
//
// Random numbers follow the draw layout of ops/philox.go (see philox.cuh): the normals of chain
// c = chain0 + row, coordinate j at site s are the Normal fill's numbers for (seed, s, c, j) in the
// kernel's precision — float: lane j / 4, Box–Muller pairs on words (0, 1) and (2, 3); double:
// lane j / 2, one pair on the 53-bit uniforms of words (0, 1) and (2, 3). The MALA uniform of a
// chain is U64(words 0, 1) of its lane-0 block: column 0 of the f64 Uniform fill.
//
// Kernels (T = float: _f32, T = double: _f64); every parameter is 8 bytes wide (pointers, long
// long, unsigned long long, double); absent optional pointers are null:
//
//   step_<T>(dst, x, score, h, n, d, alpha, beta, gamma, seed, site, chain0)
//     dst = α x + β_i score + γ_i ξ row by row, β_i = β h[i] and γ_i = γ sqrt(h[i]) when h is not
//     null, else β and γ. β == 0: score is not read (may be null) and no β term is added; γ_i == 0:
//     no normal is drawn and no γ term is added. dst may be x (in place).
//     One thread per (row, Philox lane): W = 4 (float) or 2 (double) consecutive coordinates from
//     one Philox block, so each block is generated once.
//
//   mala_accept_<T>(x, logp, score, y, logp_y, score_y, hs, h, accepted, n, d, group, seed, site,
//                   chain0)
//     Per chain, with step h_i = hs[i] (hs not null) or h:
//       log α = (log p(y) − log p(x)) + (‖y − x − h_i s(x)‖² − ‖x − y − h_i s(y)‖²) / (4 h_i)
//     accepted iff log U < log α (so a NaN log α is rejected); an accepted chain copies y, log p(y)
//     and s(y) into (x, logp, score) and adds 1 to accepted[i] (double). With d == 0 the decision
//     rests on the log-densities alone (and still updates logp and accepted), as in the reference.
//     A group of `group` lanes (a power of two ≤ 32) of one warp owns a chain: coordinates are
//     strided over the group, the two sums reduced by a butterfly (every lane ends with the same
//     bits, so every lane takes the same decision without a broadcast).
//
//   uld_step_<T>(x, v, score, n, d, e, cv, cx, cxg, l11, l21, l22, seed, site, chain0)
//     In place, with ξ1 the normals at site and ξ2 at site + 1 (the coefficients are
//     ops.ULDCoefficients' for the step, computed on the host):
//       x' = x + cx v + cxg s + l11 ξ1,   v' = E v + cv s + l21 ξ1 + l22 ξ2
//     One thread per (row, Philox lane), two blocks per thread.
//
//   gaussian_factor_<T>(logp, score, x, center, n, d, group, a, var)
//     Row by row, r = c − a x:  logp += −‖r‖² / (2 var) (logp not null),
//     score += (a r) / var (score not null). One group of lanes per row, as in mala_accept.
//
// Launch: any 1-D grid whose block size is a multiple of 32 (the launcher uses 256); all loops are
// grid-stride with 64-bit indices. n and d are element counts; rows are contiguous with stride d.

#include "lanes.cuh"

namespace {

template <typename T>
__device__ __forceinline__ void step_rows(T* dst, const T* x, const T* score, const T* h, long long n,
                                          long long d, double alpha, double beta, double gamma,
                                          unsigned long long seed, unsigned long long site,
                                          unsigned long long chain0) {
    constexpr int W = Lane<T>::W;
    if (n <= 0 || d <= 0) {
        return;
    }
    const unsigned long long udim = static_cast<unsigned long long>(d);
    const bool use_score = beta != 0.0;
    const bool vec = udim % W == 0 && aligned16(dst) && aligned16(x) && (!use_score || aligned16(score));
    const uint2 key = philox_key(seed);
    for (LaneWalk it(n, d, W); it.more(); it.next()) {
        double beta_i = beta, gamma_i = gamma;
        if (h != nullptr) {
            const double hi = static_cast<double>(h[it.row]);
            beta_i = beta * hi;
            gamma_i = gamma * sqrt(hi);
        }
        const unsigned long long j = it.lane * W;
        const unsigned long long off = it.row * udim + j;
        const int cnt = static_cast<int>(udim - j < W ? udim - j : W);
        double v[W], s[W];
        load_lane<T>(x + off, cnt, vec, v);
#pragma unroll
        for (int k = 0; k < W; ++k) {
            v[k] = alpha * v[k];
        }
        if (use_score) {
            load_lane<T>(score + off, cnt, vec, s);
#pragma unroll
            for (int k = 0; k < W; ++k) {
                v[k] = v[k] + beta_i * s[k];
            }
        }
        if (gamma_i != 0.0) {  // NaN γ_i adds NaN, as in the reference
            double z[W];
            const uint4 b = philox_block(key, site, static_cast<unsigned int>(chain0 + it.row),
                                         static_cast<unsigned int>(it.lane));
            Lane<T>::normals(b, cnt, z);
#pragma unroll
            for (int k = 0; k < W; ++k) {
                v[k] = v[k] + gamma_i * z[k];
            }
        }
        store_lane<T>(dst + off, cnt, vec, v);
    }
}

template <typename T>
__device__ __forceinline__ void uld_rows(T* x, T* v, const T* score, long long n, long long d, double e,
                                         double cv, double cx, double cxg, double l11, double l21,
                                         double l22, unsigned long long seed, unsigned long long site,
                                         unsigned long long chain0) {
    constexpr int W = Lane<T>::W;
    if (n <= 0 || d <= 0) {
        return;
    }
    const unsigned long long udim = static_cast<unsigned long long>(d);
    const bool vec = udim % W == 0 && aligned16(x) && aligned16(v) && aligned16(score);
    const uint2 key = philox_key(seed);
    for (LaneWalk it(n, d, W); it.more(); it.next()) {
        const unsigned long long j = it.lane * W;
        const unsigned long long off = it.row * udim + j;
        const int cnt = static_cast<int>(udim - j < W ? udim - j : W);
        const unsigned int chain = static_cast<unsigned int>(chain0 + it.row);
        const unsigned int lane = static_cast<unsigned int>(it.lane);
        double xi1[W], xi2[W];
        Lane<T>::normals(philox_block(key, site, chain, lane), cnt, xi1);
        Lane<T>::normals(philox_block(key, site + 1, chain, lane), cnt, xi2);
        double xr[W], vr[W], sr[W];
        load_lane<T>(x + off, cnt, vec, xr);
        load_lane<T>(v + off, cnt, vec, vr);
        load_lane<T>(score + off, cnt, vec, sr);
#pragma unroll
        for (int k = 0; k < W; ++k) {
            const double xn = xr[k] + cx * vr[k] + cxg * sr[k] + l11 * xi1[k];
            vr[k] = e * vr[k] + cv * sr[k] + l21 * xi1[k] + l22 * xi2[k];
            xr[k] = xn;
        }
        store_lane<T>(x + off, cnt, vec, xr);
        store_lane<T>(v + off, cnt, vec, vr);
    }
}

template <typename T>
__device__ __forceinline__ void mala_rows(T* x, T* logp, T* score, const T* y, const T* logp_y,
                                          const T* score_y, const T* hs, double h, double* accepted,
                                          long long n, long long d, long long group,
                                          unsigned long long seed, unsigned long long site,
                                          unsigned long long chain0) {
    if (n <= 0 || d < 0) {  // d == 0 still decides on log p alone, as the reference does
        return;
    }
    const unsigned long long un = static_cast<unsigned long long>(n);
    const unsigned long long udim = static_cast<unsigned long long>(d);
    const uint2 key = philox_key(seed);
    GroupWalk gw(group);
    const int g = gw.g;
    for (unsigned long long base = gw.base; base < un; base += gw.step) {  // uniform over the warp
        const unsigned long long row = base + gw.slot;
        const bool active = row < un;
        const unsigned long long off = active ? row * udim : 0;
        double step = h;
        double fwd = 0.0, bwd = 0.0;
        double lp_x = 0.0, lp_y = 0.0;
        if (active) {
            if (hs != nullptr) {
                step = static_cast<double>(hs[row]);
            }
            // Read before the group's leader may overwrite logp[row] (see the __syncwarp below).
            lp_x = static_cast<double>(logp[row]);
            lp_y = static_cast<double>(logp_y[row]);
#pragma unroll 4
            for (unsigned long long j = gw.sub; j < udim; j += g) {
                const double xj = x[off + j], sxj = score[off + j];
                const double yj = y[off + j], syj = score_y[off + j];
                const double f = yj - xj - step * sxj;  // y − x − h s(x)
                const double r = xj - yj - step * syj;  // x − y − h s(y)
                fwd = fwd + f * f;
                bwd = bwd + r * r;
            }
        }
        fwd = group_sum(fwd, g);
        bwd = group_sum(bwd, g);
        // Every lane of the group has read logp[row] before the leader writes it below: the writes
        // of one lane must not reach another lane's reads (a lane seeing the new log p would take
        // a different decision).
        __syncwarp();
        if (active) {
            const double log_alpha = lp_y - lp_x + (fwd - bwd) / (4.0 * step);
            const uint4 b = philox_block(key, site, static_cast<unsigned int>(chain0 + row), 0u);
            const double u = uniform_u64(b.x, b.y);
            if (log(u) < log_alpha) {  // false for a NaN log α: rejected
                for (unsigned long long j = gw.sub; j < udim; j += g) {
                    x[off + j] = y[off + j];
                    score[off + j] = score_y[off + j];
                }
                if (gw.sub == 0) {
                    logp[row] = logp_y[row];
                    accepted[row] = accepted[row] + 1.0;
                }
            }
        }
    }
}

template <typename T>
__device__ __forceinline__ void gaussian_factor_rows(T* logp, T* score, const T* x, const T* center,
                                                     long long n, long long d, long long group, double a,
                                                     double var) {
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
        double q = 0.0;
        if (active) {
            for (unsigned long long j = gw.sub; j < udim; j += g) {
                const double r = static_cast<double>(center[off + j]) - a * static_cast<double>(x[off + j]);
                q = q + r * r;
                if (score != nullptr) {
                    score[off + j] = static_cast<T>(static_cast<double>(score[off + j]) + a * r / var);
                }
            }
        }
        if (logp == nullptr) {  // uniform over the grid: no shuffle skipped by part of a warp
            continue;
        }
        q = group_sum(q, g);
        if (active && gw.sub == 0) {
            logp[row] = static_cast<T>(static_cast<double>(logp[row]) - q / (2.0 * var));
        }
    }
}

}  // namespace

#define LANGEVIN_KERNELS(T, SUFFIX)                                                                        \
    extern "C" __global__ void __launch_bounds__(256) step_##SUFFIX(                                      \
        T* dst, const T* x, const T* score, const T* h, long long n, long long d, double alpha,           \
        double beta, double gamma, unsigned long long seed, unsigned long long site,                      \
        unsigned long long chain0) {                                                                      \
        step_rows<T>(dst, x, score, h, n, d, alpha, beta, gamma, seed, site, chain0);                     \
    }                                                                                                     \
    extern "C" __global__ void __launch_bounds__(256) mala_accept_##SUFFIX(                               \
        T* x, T* logp, T* score, const T* y, const T* logp_y, const T* score_y, const T* hs, double h,    \
        double* accepted, long long n, long long d, long long group, unsigned long long seed,             \
        unsigned long long site, unsigned long long chain0) {                                             \
        mala_rows<T>(x, logp, score, y, logp_y, score_y, hs, h, accepted, n, d, group, seed, site,        \
                     chain0);                                                                             \
    }                                                                                                     \
    extern "C" __global__ void __launch_bounds__(256) uld_step_##SUFFIX(                                  \
        T* x, T* v, const T* score, long long n, long long d, double e, double cv, double cx, double cxg, \
        double l11, double l21, double l22, unsigned long long seed, unsigned long long site,             \
        unsigned long long chain0) {                                                                      \
        uld_rows<T>(x, v, score, n, d, e, cv, cx, cxg, l11, l21, l22, seed, site, chain0);                \
    }                                                                                                     \
    extern "C" __global__ void __launch_bounds__(256) gaussian_factor_##SUFFIX(                           \
        T* logp, T* score, const T* x, const T* center, long long n, long long d, long long group,        \
        double a, double var) {                                                                           \
        gaussian_factor_rows<T>(logp, score, x, center, n, d, group, a, var);                             \
    }

LANGEVIN_KERNELS(float, f32)
LANGEVIN_KERNELS(double, f64)

#undef LANGEVIN_KERNELS
