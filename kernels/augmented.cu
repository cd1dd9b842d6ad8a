// The per-coordinate affine map of the augmented state of generative fractional diffusion
// (docs/math.md §5.5): one fused pass per reverse-time step reads the state, the denoiser's value
// and draws the step's normals, writes the new state and the projection the next denoiser call
// reads. ops/augmented.go (AugmentedMap.Apply, cpuBackend.AugmentedStep) is the specification;
// this kernel performs its operations one for one, fma where it uses math.FMA, in the same order,
// and draws the Normal fill's double normals (normals.cuh), which are the reference's bits: every
// value is the reference's bits.
//
// Kernels, one per number of components M ∈ [1, 6] (ops.MaxAugmentedComponents), everything
// double; every parameter is 8 bytes wide; unused pointers are null:
//
//   augmented_m<M>(dst, x, y, den, u, coef, n, d, r, mask, q, seed, site, chain0)
//     For every coordinate e = (i, j) of the (n, d) batch, with planes x[a·n·d + e] (a < M):
//       rv    = x_e − Phi·den_e                          (mask & HAS_C)
//       dst_e = A x_e + C rv + Bias·den_e + B y_e + L ξ_e  (each term only when its bit is set;
//                                                          L ξ_e when r > 0)
//       u_e   = (Wᵀ dst_e) / q                           (mask & HAS_W)
//     each output component accumulated as v = fma(coef, value, v) from v = 0 in the order written,
//     the residual as fma(−Phi_c, den_e, x_c), the projection as acc = fma(W_c, dst_c, acc).
//     coef is the packed map (ops.AugmentedMap.Packed): A (M²), C (M²), Phi (M), Bias (M), B (M²),
//     L (M·r), W (M), row-major. ξ_e: columns j·r … j·r + r − 1 of row i of the draw's (n, d·r)
//     double normals — Philox lane col / 2 of chain chain0 + i, element col % 2. dst may be x or y
//     (a thread reads all of its coordinate's components before writing any).
//
// Launch: any 1-D grid, grid-stride over the n·d coordinates, one thread per coordinate.

#include "normals.cuh"

namespace {

constexpr long long kHasA = 1;
constexpr long long kHasC = 2;
constexpr long long kHasBias = 4;
constexpr long long kHasB = 8;
constexpr long long kHasW = 16;

template <int M>
__device__ __forceinline__ void augmented(double* dst, const double* x, const double* y,
                                          const double* den, double* u,
                                          const double* __restrict__ coef, long long n, long long d,
                                          long long r, long long mask, double q,
                                          unsigned long long seed, unsigned long long site,
                                          unsigned long long chain0) {
    if (n <= 0 || d <= 0) {
        return;
    }
    const double* A = coef;
    const double* C = A + M * M;
    const double* Phi = C + M * M;
    const double* Bias = Phi + M;
    const double* B = Bias + M;
    const double* L = B + M * M;
    const double* W = L + M * r;
    const bool has_a = (mask & kHasA) != 0;
    const bool has_c = (mask & kHasC) != 0;
    const bool has_bias = (mask & kHasBias) != 0;
    const bool has_b = (mask & kHasB) != 0;
    const bool has_w = (mask & kHasW) != 0;
    const uint2 key = philox_key(seed);
    const unsigned long long ud = static_cast<unsigned long long>(d);
    const unsigned long long plane = static_cast<unsigned long long>(n) * ud;
    const unsigned long long ur = static_cast<unsigned long long>(r);
    const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
    for (unsigned long long e = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
         e < plane; e += stride) {
        double xv[M], yv[M], rv[M], xi[M], out[M];
#pragma unroll
        for (int a = 0; a < M; ++a) {
            xv[a] = x[a * plane + e];
            yv[a] = has_b ? y[a * plane + e] : 0.0;
            xi[a] = 0.0;
        }
        const double dn = (has_c || has_bias) ? den[e] : 0.0;
        if (ur > 0) {
            const unsigned long long row = e / ud;
            const unsigned long long j = e - row * ud;
            const unsigned int chain = static_cast<unsigned int>(chain0 + row);
            double z0 = 0.0, z1 = 0.0;
#pragma unroll
            for (int c = 0; c < M; ++c) {
                if (static_cast<unsigned long long>(c) < ur) {
                    const unsigned long long col = j * ur + c;
                    if (c == 0 || (col & 1ull) == 0) {
                        const uint4 blk = philox_block(key, site, chain, static_cast<unsigned int>(col >> 1));
                        normals_f64(blk, &z0, &z1);
                    }
                    xi[c] = (col & 1ull) ? z1 : z0;
                }
            }
        }
        if (has_c) {
#pragma unroll
            for (int c = 0; c < M; ++c) {
                rv[c] = fma(-Phi[c], dn, xv[c]);
            }
        }
#pragma unroll
        for (int a = 0; a < M; ++a) {
            double v = 0.0;
            if (has_a) {
#pragma unroll
                for (int c = 0; c < M; ++c) {
                    v = fma(A[a * M + c], xv[c], v);
                }
            }
            if (has_c) {
#pragma unroll
                for (int c = 0; c < M; ++c) {
                    v = fma(C[a * M + c], rv[c], v);
                }
            }
            if (has_bias) {
                v = fma(Bias[a], dn, v);
            }
            if (has_b) {
#pragma unroll
                for (int c = 0; c < M; ++c) {
                    v = fma(B[a * M + c], yv[c], v);
                }
            }
#pragma unroll
            for (int c = 0; c < M; ++c) {
                if (static_cast<unsigned long long>(c) < ur) {
                    v = fma(L[a * ur + c], xi[c], v);
                }
            }
            out[a] = v;
        }
#pragma unroll
        for (int a = 0; a < M; ++a) {
            dst[a * plane + e] = out[a];
        }
        if (has_w) {
            double acc = 0.0;
#pragma unroll
            for (int c = 0; c < M; ++c) {
                acc = fma(W[c], out[c], acc);
            }
            u[e] = acc / q;
        }
    }
}

}  // namespace

#define AUGMENTED_ENTRY(M)                                                                          \
    extern "C" __global__ void augmented_m##M(double* dst, const double* x, const double* y,       \
                                              const double* den, double* u, const double* coef,    \
                                              long long n, long long d, long long r, long long mask, \
                                              double q, unsigned long long seed,                   \
                                              unsigned long long site, unsigned long long chain0) { \
        augmented<M>(dst, x, y, den, u, coef, n, d, r, mask, q, seed, site, chain0);                \
    }

// augmented_m<M>: see the header comment.
AUGMENTED_ENTRY(1)
AUGMENTED_ENTRY(2)
AUGMENTED_ENTRY(3)
AUGMENTED_ENTRY(4)
AUGMENTED_ENTRY(5)
AUGMENTED_ENTRY(6)
