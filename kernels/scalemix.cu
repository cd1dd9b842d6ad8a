// The exact denoiser of a Gaussian mixture under Gaussian scale-mixture noise (the Lévy–Itō
// model's α-stable noise by a fixed quadrature of its mixing variable). ops/scalemix.go
// (cpuBackend.GMMScaleMixtureDenoise) is the specification; this kernel computes the same sums in
// double, dividing by c where the reference multiplies by its precomputed reciprocal, recomputing
// the log terms where the reference stores them, associating the final sums differently and with
// the device's log and exp: within a few ulp of double of the reference, rounded once to T.
//
// Kernels (T = float: _f32, T = double: _f64); every parameter is 8 bytes wide:
//
//   gmm_scale_mixture_<T>(dst, x, means, lambda, logw, qlogw, qmult, n, d, k, q, diag, v)
//     For every row x_i of x (n, d), with components kk < k (log weights logw, means (k, d),
//     variances lambda: (k) isotropic, diag = 0, or (k, d) diagonal, diag = 1) and nodes qq < q
//     (log weights qlogw, multipliers qmult), c = λ_kj + v·qmult_qq, z_j = x_j − μ_kj:
//       L_kq = logw_k + qlogw_q − Σ_j 0.5 (log c + z_j² / c)
//       mx = max L, s = Σ exp(L − mx) (one online pass: s ← s·exp(mx − L) + 1 at a new maximum)
//       dst_ij = Σ_k (r_k μ_kj + Σ_q r_kq λ_kj / c · z_j),  r_kq = exp(L_kq − mx) / s,  r_k = Σ_q r_kq
//     the second pass once per block of kBlock output coordinates (L recomputed each time, no
//     per-row array of d values), so dst must not be x (the op refuses that). Full covariances are
//     not handled here (the launcher runs the reference on the host).
//
// Launch: any 1-D grid, grid-stride over the rows, one thread per row.

namespace {

constexpr int kBlock = 8;

template <typename T>
__device__ __forceinline__ double log_term(const T* xr, const double* means, const double* lambda,
                                           const double* logw, const double* qlogw,
                                           const double* qmult, long long d, long long kk,
                                           long long qq, bool diag, double v) {
    const double vq = v * qmult[qq];
    double l = logw[kk] + qlogw[qq];
    for (long long j = 0; j < d; ++j) {
        const double lam = diag ? lambda[kk * d + j] : lambda[kk];
        const double c = lam + vq;
        const double z = static_cast<double>(xr[j]) - means[kk * d + j];
        l -= 0.5 * (log(c) + z * z / c);
    }
    return l;
}

template <typename T>
__device__ __forceinline__ void gmm_scale_mixture(T* dst, const T* x, const double* means,
                                                  const double* lambda, const double* logw,
                                                  const double* qlogw, const double* qmult,
                                                  long long n, long long d, long long k,
                                                  long long q, bool diag, double v) {
    const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
    for (unsigned long long row = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
         row < static_cast<unsigned long long>(n); row += stride) {
        const T* xr = x + row * static_cast<unsigned long long>(d);
        T* dr = dst + row * static_cast<unsigned long long>(d);
        double mx = -HUGE_VAL, s = 0.0;
        for (long long kk = 0; kk < k; ++kk) {
            for (long long qq = 0; qq < q; ++qq) {
                const double l = log_term(xr, means, lambda, logw, qlogw, qmult, d, kk, qq, diag, v);
                if (l > mx) {
                    s = s * exp(mx - l) + 1.0;
                    mx = l;
                } else {
                    s += exp(l - mx);
                }
            }
        }
        for (long long jb = 0; jb < d; jb += kBlock) {
            double acc[kBlock], sh[kBlock];
#pragma unroll
            for (int jj = 0; jj < kBlock; ++jj) {
                acc[jj] = 0.0;
            }
            for (long long kk = 0; kk < k; ++kk) {
                double rk = 0.0;
#pragma unroll
                for (int jj = 0; jj < kBlock; ++jj) {
                    sh[jj] = 0.0;
                }
                for (long long qq = 0; qq < q; ++qq) {
                    const double r =
                        exp(log_term(xr, means, lambda, logw, qlogw, qmult, d, kk, qq, diag, v) - mx) / s;
                    rk += r;
                    const double vq = v * qmult[qq];
#pragma unroll
                    for (int jj = 0; jj < kBlock; ++jj) {
                        const long long j = jb + jj;
                        if (j < d) {
                            const double lam = diag ? lambda[kk * d + j] : lambda[kk];
                            const double z = static_cast<double>(xr[j]) - means[kk * d + j];
                            sh[jj] += r * lam / (lam + vq) * z;
                        }
                    }
                }
#pragma unroll
                for (int jj = 0; jj < kBlock; ++jj) {
                    const long long j = jb + jj;
                    if (j < d) {
                        acc[jj] += rk * means[kk * d + j] + sh[jj];
                    }
                }
            }
#pragma unroll
            for (int jj = 0; jj < kBlock; ++jj) {
                if (jb + jj < d) {
                    dr[jb + jj] = static_cast<T>(acc[jj]);
                }
            }
        }
    }
}

}  // namespace

// gmm_scale_mixture_<T>: see the header comment.
extern "C" __global__ void gmm_scale_mixture_f32(float* dst, const float* x, const double* means,
                                                 const double* lambda, const double* logw,
                                                 const double* qlogw, const double* qmult,
                                                 long long n, long long d, long long k, long long q,
                                                 long long diag, double v) {
    gmm_scale_mixture<float>(dst, x, means, lambda, logw, qlogw, qmult, n, d, k, q, diag != 0, v);
}

extern "C" __global__ void gmm_scale_mixture_f64(double* dst, const double* x, const double* means,
                                                 const double* lambda, const double* logw,
                                                 const double* qlogw, const double* qmult,
                                                 long long n, long long d, long long k, long long q,
                                                 long long diag, double v) {
    gmm_scale_mixture<double>(dst, x, means, lambda, logw, qlogw, qmult, n, d, k, q, diag != 0, v);
}
