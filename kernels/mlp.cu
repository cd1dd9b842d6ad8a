// Learned denoiser: the residual MLP of ops/mlp.go under EDM preconditioning, and its Tweedie
// score, for a batch of rows. ops.cpuBackend.MLPScore and (*ops.MLP).denoiseRow are the
// specification; for row x at noise (a, s), with σ = √s / a and x̃ = x / a:
//
//   c_skip = σd²/(σ² + σd²), c_out = σ σd/√(σ² + σd²), c_in = 1/√(σ² + σd²), c_noise = ¼ ln σ
//   in = [c_in (x̃ − μ) ; cos(2π f_k c_noise) ; sin(2π f_k c_noise)]             (d + 2F inputs)
//   h  = W_in in + b_in;  per block h ← h + β (W_l φ(h) + b_l)  or  h + β (W_l2 φ(W_l1 φ(h) + b_l1) + b_l2)
//   F  = γ (W_out φ(h)) + b_out,   φ(z) = z / (1 + e^{−z})
//   D  = μ + c_skip (x̃ − μ) + c_out F,   score = (a D − x) / s
//
// One launch evaluates the whole network. A block of 256 threads (32 along units × 8 along rows)
// owns a tile of R rows (32 in float, 16 in double) and carries it through every layer:
//   - the layer's input activations, R × K, sit in shared memory (`act`, row stride
//     max(W, d + 2F)); every thread reads them as warp-wide broadcasts (a warp shares its rows);
//   - each layer is a small GEMM, out (R × n_out) = act (R × K) · Wᵀ (K × n_out): the transposed
//     weights are staged through shared memory in K-slices of KS rows (8 in float, 4 in double),
//     KS × 32⌈n_out/32⌉ values, zero-padded beyond n_out; each thread owns the outputs
//     (rows ty + 8i, i < RM; units tx + 32j, j < ⌈n_out/32⌉ ≤ 8) and accumulates them in registers
//     over k in index order, then adds the bias: the reference's dense(), operation for operation;
//   - the residual stream h of the owned outputs stays in registers for the whole network (every
//     W-wide layer has the same output ownership); φ(h) (or φ of a two-layer block's first layer)
//     is written back over `act` after a barrier, as the next layer's input.
// Per K-slice two barriers (stage, then use); the tile loop and the layer loops are uniform over
// the block, so every thread reaches every barrier. Rows beyond n get zero inputs and store
// nothing.
//
// Precision. The network runs in T (float kernels in float with the weights rounded to float once
// on the host, double kernels in double); the per-row parts — noise level, preconditioning, the
// Fourier features and the epilogue (D and the score) — run in double whatever T, so the f32
// path's only errors are those of the network's float arithmetic and the rounding of the
// parameters and the outputs. The build fuses no multiply-add (IEEE-exact flags) and the sums run
// in the reference's order, so the f64 kernel differs from the reference only where the CUDA math
// library's exp (SiLU), log, cos and sin round differently from Go's.
//
// Parameter table (params, of T; written by the launcher, ops/cuda/mlp.go):
//   [μ (d) | f (F) | W_inᵀ (d+2F × W) | b_in (W) | per hidden layer: W_lᵀ (W × W) | b_l (W) |
//    W_outᵀ (W × d) | b_out (d)]
// i.e. the network's Packed order with every weight transposed (the K-slices are contiguous).
//
// Noise: kind 1 (VE: a = 1, s = σ²), 2 (VP: a = e^{−t}, s = −expm1(−2t)), 3 (affine). A shared
// level arrives as (a, s) computed by the launcher in float64; per-row levels (levels != null, of
// T) are widened and converted in double, as ops.Noise.ScaleVar does. A row whose level is not a
// finite number > 0 gets NaN in every requested output; at σ = 0 (s underflowed) D = x̃, as in the
// reference.
//
// Entry (every parameter 8 bytes wide):
//   mlp_score_<T>(score, den, x, n, d, width, depth, block_layers, fourier, params, sigma_data,
//                 branch, out_mult, noise, levels, a, s)
// score and den may be null (not requested). Launch: 256-thread blocks, any grid (grid-stride over
// the tiles), dynamic shared memory (R · max(W, d + 2F) + KS · 32⌈max(W, d)/32⌉) · sizeof(T).

#include "gmm.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kTX = 32;     // threads along output units (a warp)
constexpr int kTY = 8;      // threads along rows
constexpr int kMaxCU = 8;   // units per thread: 32 · 8 = 256 = ops.MaxMLPWidth
constexpr int kMaxRows = 32;
constexpr int kMaxFeatures = 128;  // 2 · ops.MaxMLPFourier
constexpr long long kVE = 1;

template <typename T>
struct Tiling;
template <>
struct Tiling<float> {
    static constexpr int RM = 4;  // rows per thread: R = 32
    static constexpr int KS = 8;  // K-slice of the staged weights
};
template <>
struct Tiling<double> {
    static constexpr int RM = 2;  // R = 16
    static constexpr int KS = 4;
};

constexpr double kTwoPi = 6.283185307179586;  // 2π rounded to double, as Go's 2 * math.Pi

// Per-row values of the current tile, in double.
struct RowState {
    double a[kMaxRows], s[kMaxRows], sigma[kMaxRows];
    double c_skip[kMaxRows], c_out[kMaxRows], c_in[kMaxRows], c_noise[kMaxRows];
    int ok[kMaxRows];  // the level is valid
};

template <typename T>
__device__ __forceinline__ T silu(T z) {
    return z / (T(1) + Math<T>::exp(-z));
}

// gemm accumulates acc[i][j] = Σ_k act[row_i][k] · wt[k][unit_j] over k = 0 … K−1 in index order
// (acc starts at 0), for the thread's rows ty + 8i and units tx + 32j, j < cu. wt is K × n_out
// (global, row-major), staged KS rows at a time into ws (KS × 32 cu, zero beyond n_out). Ends with
// the block past a barrier that follows its last read of act.
template <typename T>
__device__ __forceinline__ void gemm(T (&acc)[Tiling<T>::RM][kMaxCU], const T* act, long long lda,
                                     const T* __restrict__ wt, int K, int n_out, int cu, T* ws) {
    constexpr int RM = Tiling<T>::RM, KS = Tiling<T>::KS;
    const int tx = threadIdx.x % kTX, ty = threadIdx.x / kTX;
    const int wpad = kTX * cu;
#pragma unroll
    for (int i = 0; i < RM; ++i) {
#pragma unroll
        for (int j = 0; j < kMaxCU; ++j) {
            acc[i][j] = T(0);
        }
    }
    for (int k0 = 0; k0 < K; k0 += KS) {
        const int ks = min(KS, K - k0);
        __syncthreads();  // the previous slice (or layer) is done with ws and act is written
        // wpad ≤ 256 = kThreads: one pass per slice row, no index division.
        if (threadIdx.x < wpad) {
            const int u = threadIdx.x;
#pragma unroll
            for (int kk = 0; kk < KS; ++kk) {
                ws[kk * wpad + u] = (kk < ks && u < n_out) ? __ldg(wt + static_cast<long long>(k0 + kk) * n_out + u) : T(0);
            }
        }
        __syncthreads();
        for (int kk = 0; kk < ks; ++kk) {
            T av[RM];
#pragma unroll
            for (int i = 0; i < RM; ++i) {
                av[i] = act[(ty + kTY * i) * lda + k0 + kk];
            }
#pragma unroll
            for (int j = 0; j < kMaxCU; ++j) {
                if (j < cu) {
                    const T w = ws[kk * wpad + tx + kTX * j];
#pragma unroll
                    for (int i = 0; i < RM; ++i) {
                        acc[i][j] = acc[i][j] + av[i] * w;
                    }
                }
            }
        }
    }
    __syncthreads();  // every read of act is done: the caller may overwrite it
}

// row_level sets the row's (a, s) in double; false when its level is not a finite number > 0.
template <typename T>
__device__ __forceinline__ bool row_level(const T* levels, long long row, long long noise,
                                          double a0, double s0, double& a, double& s) {
    if (levels == nullptr) {
        a = a0;
        s = s0;
        return true;
    }
    const double t = static_cast<double>(levels[row]);
    if (!(t > 0.0) || isinf(t)) {
        return false;
    }
    if (noise == kVE) {
        a = 1.0;
        s = t * t;
    } else {
        a = exp(-t);
        s = -expm1(-2.0 * t);
    }
    return true;
}

template <typename T>
__device__ void mlp_score(T* __restrict__ score, T* __restrict__ den, const T* __restrict__ x,
                          long long n, long long d_, long long width, long long depth,
                          long long block_layers, long long fourier, const T* __restrict__ params,
                          double sd, double branch, double out_mult, long long noise,
                          const T* __restrict__ levels, double a0, double s0) {
    constexpr int RM = Tiling<T>::RM;
    constexpr int R = kTY * RM;
    const int d = static_cast<int>(d_), W = static_cast<int>(width), F = static_cast<int>(fourier);
    const int L = static_cast<int>(depth), BL = static_cast<int>(block_layers);
    const int kin = d + 2 * F;
    const long long lda = max(W, kin);
    const int cu = (W + kTX - 1) / kTX, cu_out = (d + kTX - 1) / kTX;
    const int tx = threadIdx.x % kTX, ty = threadIdx.x / kTX;
    const T beta = T(branch), gamma = T(out_mult);

    T* act = reinterpret_cast<T*>(dynamic_smem);  // R × lda
    T* ws = act + R * lda;                         // KS × 32⌈max(W, d)/32⌉
    __shared__ RowState rs;
    __shared__ T emb_shared[kMaxFeatures];  // the Fourier features of a shared level

    const T* mean = params;
    const T* freq = mean + d;
    const T* w_in = freq + F;
    const T* b_in = w_in + static_cast<long long>(kin) * W;
    const T* hidden = b_in + W;  // layer l: W_lᵀ at hidden + l (W² + W), its bias W² later
    const long long layer_stride = static_cast<long long>(W) * W + W;
    const T* w_out = hidden + static_cast<long long>(L) * BL * layer_stride;
    const T* b_out = w_out + static_cast<long long>(W) * d;

    // Shared level: one σ for every row, so one set of Fourier features for the launch.
    bool shared_emb = false;
    if (levels == nullptr) {
        const double sigma = sqrt(s0) / a0;
        shared_emb = sigma > 0.0;
        if (shared_emb) {
            const double c_noise = log(sigma) / 4.0;
            for (int k = threadIdx.x; k < F; k += kThreads) {
                const double arg = kTwoPi * static_cast<double>(freq[k]) * c_noise;
                emb_shared[k] = T(cos(arg));
                emb_shared[F + k] = T(sin(arg));
            }
        }
    }

    T h[RM][kMaxCU];
    T acc[RM][kMaxCU];
    const long long tiles = (n + R - 1) / R;
    for (long long tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const long long row0 = tile * R;
        // Per-row noise and preconditioning.
        if (threadIdx.x < R) {
            const int r = threadIdx.x;
            const long long row = row0 + r;
            double a = 1.0, s = 1.0;
            const bool ok = row < n && row_level(levels, row, noise, a0, s0, a, s);
            const double sigma = ok ? sqrt(s) / a : 0.0;
            const double s2 = sigma * sigma + sd * sd;
            const double rt = sqrt(s2);
            rs.a[r] = a;
            rs.s[r] = s;
            rs.sigma[r] = sigma;
            rs.c_skip[r] = sd * sd / s2;
            rs.c_out[r] = sigma * sd / rt;
            rs.c_in[r] = 1.0 / rt;
            rs.c_noise[r] = sigma > 0.0 ? log(sigma) / 4.0 : 0.0;
            rs.ok[r] = ok;
        }
        __syncthreads();
        // Inputs: rows without a network evaluation (beyond n, bad level, σ = 0) get zeros.
        for (int e = threadIdx.x; e < R * kin; e += kThreads) {
            const int r = e / kin, c = e % kin;
            const long long row = row0 + r;
            T v = T(0);
            if (rs.ok[r] && rs.sigma[r] > 0.0) {
                if (c < d) {
                    const double xt = static_cast<double>(x[row * d + c]) / rs.a[r];
                    v = T(rs.c_in[r] * (xt - static_cast<double>(mean[c])));
                } else if (shared_emb) {
                    v = emb_shared[c - d];
                } else {
                    const int k = (c - d) % F;
                    const double arg = kTwoPi * static_cast<double>(freq[k]) * rs.c_noise[r];
                    v = T(c - d < F ? cos(arg) : sin(arg));
                }
            }
            act[r * lda + c] = v;
        }
        // Input layer: h = W_in in + b_in.
        gemm<T>(acc, act, lda, w_in, kin, W, cu, ws);
#pragma unroll
        for (int j = 0; j < kMaxCU; ++j) {
            if (j < cu) {
                const int u = tx + kTX * j;
                const T b = u < W ? __ldg(b_in + u) : T(0);
#pragma unroll
                for (int i = 0; i < RM; ++i) {
                    h[i][j] = acc[i][j] + b;
                    if (u < W) {
                        act[(ty + kTY * i) * lda + u] = silu(h[i][j]);
                    }
                }
            }
        }
        // Residual blocks.
        for (int l = 0; l < L; ++l) {
            for (int p = 0; p < BL; ++p) {
                const T* wl = hidden + static_cast<long long>(l * BL + p) * layer_stride;
                const T* bl = wl + static_cast<long long>(W) * W;
                gemm<T>(acc, act, lda, wl, W, W, cu, ws);
                const bool last = p == BL - 1;
#pragma unroll
                for (int j = 0; j < kMaxCU; ++j) {
                    if (j < cu) {
                        const int u = tx + kTX * j;
                        const T b = u < W ? __ldg(bl + u) : T(0);
#pragma unroll
                        for (int i = 0; i < RM; ++i) {
                            const T t = acc[i][j] + b;
                            T next;
                            if (last) {
                                h[i][j] = h[i][j] + beta * t;
                                next = silu(h[i][j]);
                            } else {
                                next = silu(t);
                            }
                            if (u < W) {
                                act[(ty + kTY * i) * lda + u] = next;
                            }
                        }
                    }
                }
            }
        }
        // Output layer: F = γ (W_out φ(h)) + b_out, then D and the score in double.
        gemm<T>(acc, act, lda, w_out, W, d, cu_out, ws);
#pragma unroll
        for (int j = 0; j < 2; ++j) {  // d ≤ 64 = 2 · 32
            const int c = tx + kTX * j;
            if (j < cu_out && c < d) {
                const T b = __ldg(b_out + c);
                const double mu = static_cast<double>(mean[c]);
#pragma unroll
                for (int i = 0; i < RM; ++i) {
                    const int r = ty + kTY * i;
                    const long long row = row0 + r;
                    if (row >= n) {
                        continue;
                    }
                    const double f = static_cast<double>(gamma * acc[i][j] + b);
                    const double xv = static_cast<double>(x[row * d + c]);
                    double dv, sv;
                    if (!rs.ok[r]) {
                        dv = sv = Math<double>::nan();
                    } else {
                        const double a = rs.a[r], xt = xv / a;
                        dv = rs.sigma[r] > 0.0 ? mu + rs.c_skip[r] * (xt - mu) + rs.c_out[r] * f : xt;
                        sv = (a * dv - xv) / rs.s[r];
                    }
                    if (score != nullptr) {
                        score[row * d + c] = T(sv);
                    }
                    if (den != nullptr) {
                        den[row * d + c] = T(dv);
                    }
                }
            }
        }
        __syncthreads();  // rs and act are rewritten by the next tile
    }
}

}  // namespace

// mlp_score_<T>: see the header comment.
extern "C" __global__ void __launch_bounds__(kThreads, 2)
    mlp_score_f32(float* score, float* den, const float* x, long long n, long long d,
                  long long width, long long depth, long long block_layers, long long fourier,
                  const float* params, double sigma_data, double branch, double out_mult,
                  long long noise, const float* levels, double a, double s) {
    mlp_score<float>(score, den, x, n, d, width, depth, block_layers, fourier, params, sigma_data,
                     branch, out_mult, noise, levels, a, s);
}

extern "C" __global__ void __launch_bounds__(kThreads, 2)
    mlp_score_f64(double* score, double* den, const double* x, long long n, long long d,
                  long long width, long long depth, long long block_layers, long long fourier,
                  const double* params, double sigma_data, double branch, double out_mult,
                  long long noise, const double* levels, double a, double s) {
    mlp_score<double>(score, den, x, n, d, width, depth, block_layers, fourier, params, sigma_data,
                      branch, out_mult, noise, levels, a, s);
}
