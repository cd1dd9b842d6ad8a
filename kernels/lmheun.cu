// Reversible Heun steps, and their discrete adjoint, of the overdamped Langevin SDE
// dX = s(X) dt + √2 ∘ dW of an isotropic Gaussian mixture with learnable means and logits
// (docs/math.md §4.8). ops/lmheun.go is the specification (LangevinMixture.Score, ScoreVJP,
// lmHeunForward, lmHeunInverse, lmHeunAdjoint); this kernel performs its operations one for one,
// fma where it uses math.FMA, in double whatever T. Only exp differs (the device's against Go's),
// so the values are the reference's to a few ulp of double per step.
//
// Kernels (T = float: _f32, T = double: _f64); every parameter is 8 bytes wide:
//
//   lmheun_<T>(y, z, work, dw, means, logits, vars, lognorm, n, d, k, q, h, inverse)
//     y, z (n, d) of T, in place; dw (n·d, q) of double, row c·d + j the increments of coordinate
//     j of chain c; the mixture's means (k, d), logits (k), variances (k) and −(d/2) log v (k).
//     Forward (inverse == 0): f = s(z), then per step k = 0 … q−1
//       z_j = fma(√2, w_j, fma(f_j, h, 2y_j − z_j)),  f' = s(z),
//       y_j = fma(√2, w_j, fma(0.5 (f_j + f'_j), h, y_j)),  f = f'
//     inverse (inverse ≠ 0): f' = s(z), then per step k = q−1 … 0
//       z_j = fma(−√2, w_j, fma(−f'_j, h, 2y_j − z_j)),  f = s(z),
//       y_j = fma(−√2, w_j, fma(−0.5 (f_j + f'_j), h, y_j)),  f' = f
//     with w_j = dw[c·d + j, k].
//
//   lmheun_adjoint_<T>(y, z, ay, az, grad, work, dw, means, logits, vars, lognorm, n, d, k, q, h)
//     Per step k = q−1 … 0 (ops.LangevinMixture.lmHeunAdjoint), h̄ = 0.5 h:
//       v = h̄ ay, ã = az + vᵀ∂s/∂x at z', grad += vᵀ∂s/∂θ at z'; the inverse step above;
//       v = h̄ ay + h ã, dx = vᵀ∂s/∂x at z, grad += vᵀ∂s/∂θ at z; ay += 2ã, az = dx − ã.
//     ay, az (n, d) of double in and out; grad (k·d + k, n) of double, column c chain c's
//     cotangent of the means (k·d, row-major) then the logits (k), added into.
//
//   work: double scratch of (4d + k, n) (forward) or (7d + 2k, n) (adjoint), column c chain c's
//   vectors (y, z, f, f', then v, ã, dx; r; then c), so a warp's accesses are coalesced.
//
// Score at x: ℓ_k = (α_k − q_k/(2v_k)) + lognorm_k, q_k = Σ_j (x_j − μ_kj)² in j order; mx = max ℓ
// (NaN if any is NaN); r_k = exp(ℓ_k − mx), S = Σ_k r_k in k order, r_k /= S;
// s_j = Σ_k (r_k / v_k)·(μ_kj − x_j) in k order from 0.
//
// Launch: any 1-D grid, grid-stride over the chains, one thread per chain.

namespace {

constexpr double kSqrt2 = 1.41421356237309504880168872420969808;

// A chain's vector in the work array: element j at p[j·s].
struct Col {
    double* p;
    unsigned long long s;
    __device__ __forceinline__ double& operator[](long long j) const { return p[static_cast<unsigned long long>(j) * s]; }
};

struct Mixture {
    const double* means;
    const double* logits;
    const double* vars;
    const double* lognorm;
    long long d, k;
};

// responsibilities writes r = softmax(ℓ) at x (ops.LangevinMixture.Responsibilities).
__device__ __forceinline__ void responsibilities(const Mixture& m, const Col& x, const Col& r) {
    double top = -HUGE_VAL;
    for (long long kk = 0; kk < m.k; ++kk) {
        const double* mu = m.means + kk * m.d;
        double q = 0.0;
        for (long long j = 0; j < m.d; ++j) {
            const double e = x[j] - mu[j];
            q += e * e;
        }
        const double l = m.logits[kk] - q / (2.0 * m.vars[kk]) + m.lognorm[kk];
        r[kk] = l;
        top = (l > top || l != l || top != top) ? (top != top ? top : l) : top;
    }
    double sum = 0.0;
    for (long long kk = 0; kk < m.k; ++kk) {
        r[kk] = exp(r[kk] - top);
        sum += r[kk];
    }
    for (long long kk = 0; kk < m.k; ++kk) {
        r[kk] = r[kk] / sum;
    }
}

// score writes s(x) into dst (ops.LangevinMixture.Score).
__device__ __forceinline__ void score(const Mixture& m, const Col& dst, const Col& x, const Col& r) {
    responsibilities(m, x, r);
    for (long long j = 0; j < m.d; ++j) {
        dst[j] = 0.0;
    }
    for (long long kk = 0; kk < m.k; ++kk) {
        const double* mu = m.means + kk * m.d;
        const double w = r[kk] / m.vars[kk];
        for (long long j = 0; j < m.d; ++j) {
            dst[j] = dst[j] + w * (mu[j] - x[j]);
        }
    }
}

// score_vjp adds uᵀ∂s/∂x into dx and uᵀ∂s/∂θ into dp (ops.LangevinMixture.ScoreVJP).
__device__ __forceinline__ void score_vjp(const Mixture& m, const Col& dx, const Col& dp,
                                          const Col& u, const Col& x, const Col& r, const Col& c) {
    responsibilities(m, x, r);
    double cbar = 0.0;
    for (long long kk = 0; kk < m.k; ++kk) {
        const double* mu = m.means + kk * m.d;
        double ck = 0.0;
        for (long long j = 0; j < m.d; ++j) {
            ck += u[j] * (mu[j] - x[j]);
        }
        c[kk] = ck / m.vars[kk];
        cbar += r[kk] * c[kk];
    }
    const long long kd = m.k * m.d;
    for (long long kk = 0; kk < m.k; ++kk) {
        const double* mu = m.means + kk * m.d;
        const double beta = r[kk] * (c[kk] - cbar);
        const double rv = r[kk] / m.vars[kk];
        for (long long j = 0; j < m.d; ++j) {
            const double e = (mu[j] - x[j]) / m.vars[kk];
            dx[j] = dx[j] + (beta * e - rv * u[j]);
            dp[kk * m.d + j] = dp[kk * m.d + j] + (rv * u[j] - beta * e);
        }
        dp[kd + kk] = dp[kd + kk] + beta;
    }
}

// inverse_step is one inverse step with f1 = s(z) on entry and f = s(z) at the new z on return.
__device__ __forceinline__ void inverse_step(const Mixture& m, const Col& y, const Col& z,
                                             const Col& f, const Col& f1, const Col& r,
                                             const double* w, unsigned long long q,
                                             unsigned long long k, double h) {
    for (long long j = 0; j < m.d; ++j) {
        z[j] = fma(-kSqrt2, w[j * q + k], fma(-f1[j], h, 2.0 * y[j] - z[j]));
    }
    score(m, f, z, r);
    for (long long j = 0; j < m.d; ++j) {
        y[j] = fma(-kSqrt2, w[j * q + k], fma(-0.5 * (f[j] + f1[j]), h, y[j]));
    }
}

template <typename T>
__device__ __forceinline__ void load(const Col& dst, const T* src, long long d) {
    for (long long j = 0; j < d; ++j) {
        dst[j] = static_cast<double>(src[j]);
    }
}

template <typename T>
__device__ __forceinline__ void store(T* dst, const Col& src, long long d) {
    for (long long j = 0; j < d; ++j) {
        dst[j] = static_cast<T>(src[j]);
    }
}

template <typename T>
__device__ __forceinline__ void lmheun(T* __restrict__ y, T* __restrict__ z,
                                       double* __restrict__ work, const double* __restrict__ dw,
                                       const Mixture& m, long long n, long long q, double h,
                                       bool inverse) {
    if (n <= 0 || m.d <= 0 || q <= 0) {
        return;
    }
    const unsigned long long un = static_cast<unsigned long long>(n);
    const unsigned long long ud = static_cast<unsigned long long>(m.d);
    const unsigned long long uq = static_cast<unsigned long long>(q);
    const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
    for (unsigned long long c = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
         c < un; c += stride) {
        const Col cy{work + c, un}, cz{work + ud * un + c, un};
        Col f{work + 2 * ud * un + c, un}, f1{work + 3 * ud * un + c, un};
        const Col r{work + 4 * ud * un + c, un};
        const double* w = dw + c * ud * uq;
        load(cy, y + c * ud, m.d);
        load(cz, z + c * ud, m.d);
        if (inverse) {
            score(m, f1, cz, r);
            for (unsigned long long k = uq; k-- > 0;) {
                inverse_step(m, cy, cz, f, f1, r, w, uq, k, h);
                const Col t = f;
                f = f1;
                f1 = t;
            }
        } else {
            score(m, f, cz, r);
            for (unsigned long long k = 0; k < uq; ++k) {
                for (long long j = 0; j < m.d; ++j) {
                    cz[j] = fma(kSqrt2, w[j * uq + k], fma(f[j], h, 2.0 * cy[j] - cz[j]));
                }
                score(m, f1, cz, r);
                for (long long j = 0; j < m.d; ++j) {
                    cy[j] = fma(kSqrt2, w[j * uq + k], fma(0.5 * (f[j] + f1[j]), h, cy[j]));
                }
                const Col t = f;
                f = f1;
                f1 = t;
            }
        }
        store(y + c * ud, cy, m.d);
        store(z + c * ud, cz, m.d);
    }
}

template <typename T>
__device__ __forceinline__ void lmheun_adjoint(T* __restrict__ y, T* __restrict__ z,
                                               double* __restrict__ ay, double* __restrict__ az,
                                               double* __restrict__ grad,
                                               double* __restrict__ work,
                                               const double* __restrict__ dw, const Mixture& m,
                                               long long n, long long q, double h) {
    if (n <= 0 || m.d <= 0 || q <= 0) {
        return;
    }
    const unsigned long long un = static_cast<unsigned long long>(n);
    const unsigned long long ud = static_cast<unsigned long long>(m.d);
    const unsigned long long uk = static_cast<unsigned long long>(m.k);
    const unsigned long long uq = static_cast<unsigned long long>(q);
    const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
    const double hh = 0.5 * h;
    for (unsigned long long c = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
         c < un; c += stride) {
        const Col cy{work + c, un}, cz{work + ud * un + c, un};
        Col f{work + 2 * ud * un + c, un}, f1{work + 3 * ud * un + c, un};
        const Col vf{work + 4 * ud * un + c, un}, azt{work + 5 * ud * un + c, un};
        const Col dx{work + 6 * ud * un + c, un};
        const Col r{work + 7 * ud * un + c, un}, cc{work + (7 * ud + uk) * un + c, un};
        const Col a{ay + c * ud, 1}, b{az + c * ud, 1}, dp{grad + c, un};
        const double* w = dw + c * ud * uq;
        load(cy, y + c * ud, m.d);
        load(cz, z + c * ud, m.d);
        score(m, f1, cz, r);
        for (unsigned long long k = uq; k-- > 0;) {
            for (long long j = 0; j < m.d; ++j) {
                vf[j] = hh * a[j];
                azt[j] = b[j];
            }
            score_vjp(m, azt, dp, vf, cz, r, cc);
            inverse_step(m, cy, cz, f, f1, r, w, uq, k, h);
            for (long long j = 0; j < m.d; ++j) {
                vf[j] = hh * a[j] + h * azt[j];
                dx[j] = 0.0;
            }
            score_vjp(m, dx, dp, vf, cz, r, cc);
            for (long long j = 0; j < m.d; ++j) {
                a[j] = a[j] + 2.0 * azt[j];
                b[j] = dx[j] - azt[j];
            }
            const Col t = f;
            f = f1;
            f1 = t;
        }
        store(y + c * ud, cy, m.d);
        store(z + c * ud, cz, m.d);
    }
}

}  // namespace

// lmheun_<T>: see the header comment.
extern "C" __global__ void lmheun_f32(float* y, float* z, double* work, const double* dw,
                                      const double* means, const double* logits,
                                      const double* vars, const double* lognorm, long long n,
                                      long long d, long long k, long long q, double h,
                                      long long inverse) {
    lmheun<float>(y, z, work, dw, Mixture{means, logits, vars, lognorm, d, k}, n, q, h, inverse != 0);
}

extern "C" __global__ void lmheun_f64(double* y, double* z, double* work, const double* dw,
                                      const double* means, const double* logits,
                                      const double* vars, const double* lognorm, long long n,
                                      long long d, long long k, long long q, double h,
                                      long long inverse) {
    lmheun<double>(y, z, work, dw, Mixture{means, logits, vars, lognorm, d, k}, n, q, h, inverse != 0);
}

// lmheun_adjoint_<T>: see the header comment.
extern "C" __global__ void lmheun_adjoint_f32(float* y, float* z, double* ay, double* az,
                                              double* grad, double* work, const double* dw,
                                              const double* means, const double* logits,
                                              const double* vars, const double* lognorm,
                                              long long n, long long d, long long k, long long q,
                                              double h) {
    lmheun_adjoint<float>(y, z, ay, az, grad, work, dw, Mixture{means, logits, vars, lognorm, d, k}, n, q, h);
}

extern "C" __global__ void lmheun_adjoint_f64(double* y, double* z, double* ay, double* az,
                                              double* grad, double* work, const double* dw,
                                              const double* means, const double* logits,
                                              const double* vars, const double* lognorm,
                                              long long n, long long d, long long k, long long q,
                                              double h) {
    lmheun_adjoint<double>(y, z, ay, az, grad, work, dw, Mixture{means, logits, vars, lognorm, d, k}, n, q, h);
}
