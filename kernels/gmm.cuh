// Gaussian-mixture evaluation pieces shared by gmm.cu (the score kernels) and chains.cu (the
// fused chains, which evaluate the same mixture inside their step loops with gmm.cu's arithmetic):
// block copies into shared memory, the precision-dispatched math, the warp butterfly sum and the
// online log-sum-exp of the warp kernels.
#pragma once

constexpr int kWarp = 32;

// dynamic_smem: the block's dynamic shared memory, as many bytes as the launch asks for. (The host
// build of the kernels, kernels/hostexec, provides it as a per-block heap buffer instead.)
#ifndef CUDAHOST
extern __shared__ __align__(16) unsigned char dynamic_smem[];
#endif
constexpr unsigned kAllLanes = 0xffffffffu;

// block_copy copies len elements from global to shared memory with the whole block.
template <typename T>
__device__ __forceinline__ void block_copy(T* dst, const T* __restrict__ src, long long len) {
    for (long long i = threadIdx.x; i < len; i += blockDim.x) {
        dst[i] = __ldg(src + i);
    }
}

// Math<T>: the math functions in T's precision (float: the f-suffixed functions).
template <typename T>
struct Math;

template <>
struct Math<float> {
    __device__ __forceinline__ static float exp(float v) { return ::expf(v); }
    __device__ __forceinline__ static float log(float v) { return ::logf(v); }
    __device__ __forceinline__ static float expm1(float v) { return ::expm1f(v); }
    __device__ __forceinline__ static float nan() { return __int_as_float(0x7fc00000); }
    __device__ __forceinline__ static float inf() { return __int_as_float(0x7f800000); }
    __device__ __forceinline__ static bool finite(float v) { return ::isfinite(v); }
};

template <>
struct Math<double> {
    __device__ __forceinline__ static double exp(double v) { return ::exp(v); }
    __device__ __forceinline__ static double log(double v) { return ::log(v); }
    __device__ __forceinline__ static double expm1(double v) { return ::expm1(v); }
    __device__ __forceinline__ static double nan() { return __longlong_as_double(0x7ff8000000000000LL); }
    __device__ __forceinline__ static double inf() { return __longlong_as_double(0x7ff0000000000000LL); }
    __device__ __forceinline__ static bool finite(double v) { return ::isfinite(v); }
};

// warp_sum: butterfly sum over the 32 lanes of a warp; every lane ends with the same bits.
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
    for (int o = kWarp / 2; o > 0; o >>= 1) {
        v += __shfl_xor_sync(kAllLanes, v, o);
    }
    return v;
}

// Online: the online log-sum-exp of the warp kernels, Σ_k exp(r_k − m) with m the running max
// and acc the matching weighted sum of gradients; r is warp-uniform, so is the branch.
template <typename T>
struct Online {
    T m, sum;
    bool grow;  // the last term raised the max: acc = acc·f + g; otherwise acc += f·g
    T f;
    __device__ __forceinline__ void init() {
        m = -Math<T>::inf();
        sum = T(0);
    }
    // add adds term r. A term r = −∞ (an overflowing quadratic form) has weight 0 and changes
    // nothing, also while m is still −∞ (where r − m is NaN); a NaN r makes the sum NaN.
    __device__ __forceinline__ void add(T r) {
        grow = r > m;
        if (grow) {
            f = Math<T>::exp(m - r);  // 0 on the first term
            sum = sum * f + T(1);
            m = r;
        } else if (r == -Math<T>::inf()) {
            f = T(0);
        } else {
            f = Math<T>::exp(r - m);
            sum += f;
        }
    }
    __device__ __forceinline__ T update(T acc, T g) const { return grow ? acc * f + g : acc + f * g; }
};

// LseStep: one term r of the branch-free online log-sum-exp of the per-thread kernels. With
// delta = r − m, one exponential e^{−|delta|} is the rescale factor when the max grows (r > m,
// also on the first term, m = −∞) and the new term's weight otherwise; multiplying by 1 is exact,
// so these are the reference's two branches. A term r = −∞ gets weight 0 and scale 1 (its delta
// is NaN while m is still −∞); a NaN r gives NaN. The caller sets sum = sum·scale + w,
// acc = acc·scale + w·g and m = grow ? r : m.
template <typename T>
struct LseStep {
    bool grow;
    T scale, w;
    __device__ __forceinline__ LseStep(T r, T m) {
        const T delta = r - m;
        grow = delta > T(0);
        const T f = Math<T>::exp(grow ? -delta : delta);
        scale = grow ? f : T(1);
        w = grow ? T(1) : (r == -Math<T>::inf() ? T(0) : f);
    }
};
