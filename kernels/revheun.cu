// Reversible Heun steps of affine Stratonovich SDEs dX = (A + B X) dt + (C + E X) ∘ dW, every
// coordinate of every chain a scalar SDE with its own Brownian motion (docs/math.md §4.7).
// ops/revheun.go is the specification; this kernel performs its operations one for one, fma where
// it uses math.FMA, in double whatever T, so that every value is the CPU reference's bits.
//
// Kernels (T = float: _f32, T = double: _f64); every parameter is 8 bytes wide:
//
//   revheun_<T>(y, z, dw, n, d, q, a, b, c, e, h, inverse)
//     y, z (n, d) of T, in place; dw (n·d, q) of double, row c·d + j the increments of
//     coordinate j of chain c. With f(x) = fma(b, x, a), g(x) = fma(e, x, c):
//       forward (inverse == 0), k = 0 … q−1:
//         z' = fma(g(z), w, fma(f(z), h, 2y − z))
//         y' = fma(0.5 (g(z) + g(z')), w, fma(0.5 (f(z) + f(z')), h, y))
//       inverse (inverse ≠ 0), k = q−1 … 0:
//         z = fma(−g(z'), w, fma(−f(z'), h, 2y' − z'))
//         y = fma(−0.5 (g(z) + g(z')), w, fma(−0.5 (f(z) + f(z')), h, y'))
//     with w = dw[row, k]; the state is widened to double once, carried through the q steps and
//     rounded to T once at the end.
//
//   revheun_adjoint_<T>(y, z, ay, az, grad, dw, n, d, q, a, b, c, e, h)
//     The discrete adjoint (ops/revheun_adjoint.go, RevHeunAdjointStep): k = q−1 … 0, per
//     coordinate i, with hh = 0.5 h, w = dw[i, k]:
//       vf = hh·ay, vg = (0.5 ay)·w, at = fma(e, vg, fma(b, vf, az)),
//       g0 += vf, g1 = fma(vf, z, g1), g2 += vg, g3 = fma(vg, z, g3)          (z the step's end)
//       (y, z) = the inverse step above
//       vf = fma(h, at, hh·ay), vg = (0.5 ay + at)·w, dx = fma(e, vg, b·vf),
//       g0 += vf, g1 = fma(vf, z, g1), g2 += vg, g3 = fma(vg, z, g3)          (z the step's start)
//       ay = fma(2, at, ay), az = dx − at
//     ay, az (n, d) and grad (n·d, 4: the cotangents of a, b, c, e) of double, in and out; the
//     state widened once and rounded to T once at the end.
//
// Launch: any 1-D grid, grid-stride over the n·d coordinates, one thread per coordinate.

namespace {

__device__ __forceinline__ void revheun_forward(double a, double b, double c, double e, double h,
                                                double w, double* y, double* z) {
    const double f0 = fma(b, *z, a);
    const double g0 = fma(e, *z, c);
    const double z1 = fma(g0, w, fma(f0, h, 2.0 * *y - *z));
    const double f1 = fma(b, z1, a);
    const double g1 = fma(e, z1, c);
    *y = fma(0.5 * (g0 + g1), w, fma(0.5 * (f0 + f1), h, *y));
    *z = z1;
}

__device__ __forceinline__ void revheun_inverse(double a, double b, double c, double e, double h,
                                                double w, double* y, double* z) {
    const double f1 = fma(b, *z, a);
    const double g1 = fma(e, *z, c);
    const double z0 = fma(-g1, w, fma(-f1, h, 2.0 * *y - *z));
    const double f0 = fma(b, z0, a);
    const double g0 = fma(e, z0, c);
    *y = fma(-0.5 * (g0 + g1), w, fma(-0.5 * (f0 + f1), h, *y));
    *z = z0;
}

template <typename T>
__device__ __forceinline__ void revheun(T* __restrict__ y, T* __restrict__ z,
                                        const double* __restrict__ dw, long long n, long long d,
                                        long long q, double a, double b, double c, double e,
                                        double h, bool inverse) {
    if (n <= 0 || d <= 0 || q <= 0) {
        return;
    }
    const unsigned long long count = static_cast<unsigned long long>(n) * static_cast<unsigned long long>(d);
    const unsigned long long uq = static_cast<unsigned long long>(q);
    const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
    for (unsigned long long i = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
         i < count; i += stride) {
        double yv = static_cast<double>(y[i]);
        double zv = static_cast<double>(z[i]);
        const double* w = dw + i * uq;
        if (inverse) {
            for (unsigned long long k = uq; k-- > 0;) {
                revheun_inverse(a, b, c, e, h, w[k], &yv, &zv);
            }
        } else {
            for (unsigned long long k = 0; k < uq; ++k) {
                revheun_forward(a, b, c, e, h, w[k], &yv, &zv);
            }
        }
        y[i] = static_cast<T>(yv);
        z[i] = static_cast<T>(zv);
    }
}

template <typename T>
__device__ __forceinline__ void revheun_adjoint(T* __restrict__ y, T* __restrict__ z,
                                                double* __restrict__ ay, double* __restrict__ az,
                                                double* __restrict__ grad,
                                                const double* __restrict__ dw, long long n,
                                                long long d, long long q, double a, double b,
                                                double c, double e, double h) {
    if (n <= 0 || d <= 0 || q <= 0) {
        return;
    }
    const unsigned long long count = static_cast<unsigned long long>(n) * static_cast<unsigned long long>(d);
    const unsigned long long uq = static_cast<unsigned long long>(q);
    const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
    const double hh = 0.5 * h;
    for (unsigned long long i = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
         i < count; i += stride) {
        double yv = static_cast<double>(y[i]);
        double zv = static_cast<double>(z[i]);
        double av = ay[i];
        double cv = az[i];
        double g0 = grad[4 * i], g1 = grad[4 * i + 1], g2 = grad[4 * i + 2], g3 = grad[4 * i + 3];
        const double* w = dw + i * uq;
        for (unsigned long long k = uq; k-- > 0;) {
            const double wk = w[k];
            const double half = 0.5 * av;
            double vf = hh * av;
            double vg = half * wk;
            const double at = fma(e, vg, fma(b, vf, cv));
            g0 += vf;
            g1 = fma(vf, zv, g1);
            g2 += vg;
            g3 = fma(vg, zv, g3);
            revheun_inverse(a, b, c, e, h, wk, &yv, &zv);
            vf = fma(h, at, hh * av);
            vg = (half + at) * wk;
            const double dx = fma(e, vg, b * vf);
            g0 += vf;
            g1 = fma(vf, zv, g1);
            g2 += vg;
            g3 = fma(vg, zv, g3);
            av = fma(2.0, at, av);
            cv = dx - at;
        }
        y[i] = static_cast<T>(yv);
        z[i] = static_cast<T>(zv);
        ay[i] = av;
        az[i] = cv;
        grad[4 * i] = g0;
        grad[4 * i + 1] = g1;
        grad[4 * i + 2] = g2;
        grad[4 * i + 3] = g3;
    }
}

}  // namespace

// revheun_<T>: see the header comment.
extern "C" __global__ void revheun_f32(float* y, float* z, const double* dw, long long n,
                                       long long d, long long q, double a, double b, double c,
                                       double e, double h, long long inverse) {
    revheun<float>(y, z, dw, n, d, q, a, b, c, e, h, inverse != 0);
}

extern "C" __global__ void revheun_f64(double* y, double* z, const double* dw, long long n,
                                       long long d, long long q, double a, double b, double c,
                                       double e, double h, long long inverse) {
    revheun<double>(y, z, dw, n, d, q, a, b, c, e, h, inverse != 0);
}

// revheun_adjoint_<T>: see the header comment.
extern "C" __global__ void revheun_adjoint_f32(float* y, float* z, double* ay, double* az,
                                               double* grad, const double* dw, long long n,
                                               long long d, long long q, double a, double b,
                                               double c, double e, double h) {
    revheun_adjoint<float>(y, z, ay, az, grad, dw, n, d, q, a, b, c, e, h);
}

extern "C" __global__ void revheun_adjoint_f64(double* y, double* z, double* ay, double* az,
                                               double* grad, const double* dw, long long n,
                                               long long d, long long q, double a, double b,
                                               double c, double e, double h) {
    revheun_adjoint<double>(y, z, ay, az, grad, dw, n, d, q, a, b, c, e, h);
}
