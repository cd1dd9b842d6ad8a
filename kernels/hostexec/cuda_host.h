// cuda_host.h — the CUDA execution model for host C++, so that the unmodified kernels/*.cu compile
// as ordinary C++ and run on the CPU (package hostexec, build tag cudaemu).
//
// What a kernel sees:
//   - threadIdx / blockIdx / blockDim / gridDim: the running thread's indices (each CUDA thread is
//     a fiber; a block runs on one worker thread, its threads one at a time in a chosen order);
//   - __shared__ variables: thread_local storage of the worker thread, so one per running block
//     (a block runs start to end on one worker); the dynamic shared memory (dynamic_smem) is a heap
//     buffer of exactly the launch's size, filled with 0xff bytes at block start;
//   - __syncthreads: a barrier over the block's live threads, all at the same call site;
//   - __syncwarp and the shuffles: barriers over the lanes the mask names, at the same call site and
//     with the same mask; a lane that reads from a lane that is not taking part is an error, and a
//     warp whose lanes wait at different places is reported as a deadlock (kernel, block, warp,
//     sites) instead of hanging;
//   - atomics on global memory are real atomics (blocks run on several worker threads);
//   - the math library is the host's (glibc): correctly rounded or within an ulp, at least as
//     accurate as CUDA's. The build uses -ffp-contract=off: like the committed PTX (-fmad=false) no
//     multiply-add is fused unless the source says fma.
//
// Nothing here is a GPU: performance, CUDA's own math rounding and memory-model effects beyond
// barriers need a real device. See doc.go.
#pragma once

// No multiply-add is fused unless the source writes fma (cgo does not accept -ffp-contract=off as a
// flag, so it is set here for every translation unit that includes this header).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#define CUDAHOST 1

// Qualifiers: host functions, plain C++ storage. (CUDAHOST_SCAN marks the entries for the table
// generator, kernels/internal/entrygen, which only preprocesses.)
#ifdef CUDAHOST_SCAN
#define __global__ __cudahost_global__
#else
#define __global__
#endif
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Thread-local variables use the initial-exec model: the host build is linked into an executable
// (a Go test or command), and the default model of position-independent code calls
// __tls_get_addr on every access, which the kernels make constantly (threadIdx, blockIdx).
#define CUDAHOST_TLS thread_local __attribute__((tls_model("initial-exec")))
// A block runs on one worker thread from its first thread to its last, so thread-local storage is
// per block. (Block scope thread_local implies static.)
#define __shared__ CUDAHOST_TLS

// Built-in vector types (alignment as in CUDA's vector_types.h).
struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
};
struct __attribute__((aligned(8))) uint2 {
    unsigned int x, y;
};
struct __attribute__((aligned(16))) uint4 {
    unsigned int x, y, z, w;
};
struct __attribute__((aligned(8))) int2 {
    int x, y;
};
struct __attribute__((aligned(8))) float2 {
    float x, y;
};
struct __attribute__((aligned(16))) float4 {
    float x, y, z, w;
};
struct __attribute__((aligned(16))) double2 {
    double x, y;
};
inline uint2 make_uint2(unsigned int x, unsigned int y) { return uint2{x, y}; }
inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) { return uint4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline double2 make_double2(double x, double y) { return double2{x, y}; }

constexpr int warpSize = 32;

namespace cudahost {

// Where a barrier or warp collective is in the source, for matching and for error messages.
struct Site {
    const char* file;
    int line;
    const char* what;
};

// The running thread, block and launch (set by the scheduler in runtime.cpp).
extern CUDAHOST_TLS const uint3* tls_thread_idx;
extern CUDAHOST_TLS uint3 tls_block_idx;
extern CUDAHOST_TLS dim3 tls_block_dim;
extern CUDAHOST_TLS dim3 tls_grid_dim;
extern CUDAHOST_TLS unsigned char* tls_dynamic_smem;

// Barriers and warp collectives (runtime.cpp). They return only when the collective completes; an
// error aborts the launch (the calling fiber unwinds).
void syncthreads(Site site);
void syncwarp(Site site, unsigned int mask);
// shfl_bits exchanges 8 bytes by the PTX shfl.sync rule of mode (see kShfl*) with operands b and c.
std::uint64_t shfl_bits(Site site, int mode, unsigned int mask, std::uint64_t v, int b, int c);
// fail aborts the launch with a message naming the running kernel, block and thread.
[[noreturn]] void fail(Site site, const char* message);

enum { kShflIdx = 0, kShflUp = 1, kShflDown = 2, kShflBfly = 3 };

template <typename T>
inline T shfl(Site site, int mode, unsigned int mask, T var, int b, int width = warpSize) {
    static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8, "shuffles move up to 8 bytes");
    if (width < 1 || width > warpSize || (width & (width - 1)) != 0) {
        fail(site, "width is not a power of two in [1, 32]");
    }
    std::uint64_t bits = 0;
    std::memcpy(&bits, &var, sizeof(T));
    const int segmask = (warpSize - width) << 8;
    const int c = mode == kShflUp ? segmask : (segmask | 0x1f);
    bits = shfl_bits(site, mode, mask, bits, b, c);
    T out;
    std::memcpy(&out, &bits, sizeof(T));
    return out;
}

template <typename To, typename From>
inline To bit_cast(From v) {
    static_assert(sizeof(To) == sizeof(From), "bit_cast between types of one size");
    To out;
    std::memcpy(&out, &v, sizeof(To));
    return out;
}

// sinpi_reduced returns sin(π r) and cos(π r) for |r| ≤ 1/4 in long double.
inline void sincospi_reduced(long double r, long double* s, long double* c) {
    const long double pi = 3.141592653589793238462643383279502884L;
    *s = sinl(pi * r);
    *c = cosl(pi * r);
}

// sincospi_ld: sin(π x) and cos(π x) with exact argument reduction (x − 2·round(x/2) and the
// quarter-period reflections are exact in binary floating point), then 64-bit-mantissa arithmetic:
// correctly rounded to double in all but rare cases.
inline void sincospi_ld(double x, double* sp, double* cp) {
    if (!std::isfinite(x)) {
        *sp = *cp = std::numeric_limits<double>::quiet_NaN();
        return;
    }
    double r = std::fmod(x, 2.0);  // exact, |r| < 2, sign of x
    if (r > 1.0) r -= 2.0;         // exact: (-1, 1]
    if (r <= -1.0) r += 2.0;
    const double q = std::rint(2.0 * r);  // quadrant −2..2
    const long double f = static_cast<long double>(r) - static_cast<long double>(q) * 0.5L;  // exact, |f| ≤ 1/4
    long double s, c;
    sincospi_reduced(f, &s, &c);
    long double so, co;
    switch (static_cast<int>(q)) {
        case 0: so = s; co = c; break;
        case 1: so = c; co = -s; break;
        case -1: so = -c; co = s; break;
        default: so = -s; co = -c; break;  // ±2
    }
    if (so == 0) so = std::copysign(0.0L, static_cast<long double>(x));  // sinpi(±n) = ±0
    *sp = static_cast<double>(so);
    *cp = static_cast<double>(co);
}

}  // namespace cudahost

// The running thread's coordinates.
#define threadIdx (*::cudahost::tls_thread_idx)
#define blockIdx (::cudahost::tls_block_idx)
#define blockDim (::cudahost::tls_block_dim)
#define gridDim (::cudahost::tls_grid_dim)
// The block's dynamic shared memory (kernels/dynamic_smem.cuh declares it on the device).
#define dynamic_smem (::cudahost::tls_dynamic_smem)

#define CUDAHOST_SITE(what) (::cudahost::Site{__FILE__, __LINE__, what})
#define __syncthreads() ::cudahost::syncthreads(CUDAHOST_SITE("__syncthreads"))
#define __syncwarp(...) ::cudahost::syncwarp(CUDAHOST_SITE("__syncwarp"), ::cudahost::warp_mask(__VA_ARGS__))
#define __shfl_sync(...) ::cudahost::shfl(CUDAHOST_SITE("__shfl_sync"), ::cudahost::kShflIdx, __VA_ARGS__)
#define __shfl_up_sync(...) ::cudahost::shfl(CUDAHOST_SITE("__shfl_up_sync"), ::cudahost::kShflUp, __VA_ARGS__)
#define __shfl_down_sync(...) ::cudahost::shfl(CUDAHOST_SITE("__shfl_down_sync"), ::cudahost::kShflDown, __VA_ARGS__)
#define __shfl_xor_sync(...) ::cudahost::shfl(CUDAHOST_SITE("__shfl_xor_sync"), ::cudahost::kShflBfly, __VA_ARGS__)

namespace cudahost {
inline unsigned int warp_mask() { return 0xffffffffu; }
inline unsigned int warp_mask(unsigned int m) { return m; }
}  // namespace cudahost

// Read-only and integer intrinsics.
template <typename T>
inline T __ldg(const T* p) {
    return *p;
}
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return static_cast<unsigned int>((static_cast<unsigned long long>(a) * b) >> 32);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return static_cast<unsigned long long>((static_cast<unsigned __int128>(a) * b) >> 64);
}
inline int __popc(unsigned int v) { return __builtin_popcount(v); }
inline int __clz(int v) { return v == 0 ? 32 : __builtin_clz(static_cast<unsigned int>(v)); }
inline int __ffs(int v) { return __builtin_ffs(v); }

// Conversions: the host's conversions round to nearest even, as the _rn intrinsics do.
inline float __uint2float_rn(unsigned int v) { return static_cast<float>(v); }
inline float __int2float_rn(int v) { return static_cast<float>(v); }
inline float __ull2float_rn(unsigned long long v) { return static_cast<float>(v); }
inline double __ull2double_rn(unsigned long long v) { return static_cast<double>(v); }
inline double __ll2double_rn(long long v) { return static_cast<double>(v); }
inline float __int_as_float(int v) { return cudahost::bit_cast<float>(v); }
inline int __float_as_int(float v) { return cudahost::bit_cast<int>(v); }
inline float __uint_as_float(unsigned int v) { return cudahost::bit_cast<float>(v); }
inline unsigned int __float_as_uint(float v) { return cudahost::bit_cast<unsigned int>(v); }
inline double __longlong_as_double(long long v) { return cudahost::bit_cast<double>(v); }
inline long long __double_as_longlong(double v) { return cudahost::bit_cast<long long>(v); }

// Math functions CUDA has and the C library has not.
inline void sincospi(double x, double* s, double* c) { cudahost::sincospi_ld(x, s, c); }
inline void sincospif(float x, float* s, float* c) {
    double sd, cd;
    cudahost::sincospi_ld(static_cast<double>(x), &sd, &cd);
    *s = static_cast<float>(sd);
    *c = static_cast<float>(cd);
}
inline double sinpi(double x) {
    double s, c;
    sincospi(x, &s, &c);
    return s;
}
inline double cospi(double x) {
    double s, c;
    sincospi(x, &s, &c);
    return c;
}
inline void sincosf_(float x, float* s, float* c) {
    *s = sinf(x);
    *c = cosf(x);
}
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }

// min and max: CUDA's overloads for the integer and floating types.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

// Atomics on global memory: blocks run concurrently on several worker threads.
template <typename T>
inline T cudahost_atomic_add_int(T* p, T v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
inline int atomicAdd(int* p, int v) { return cudahost_atomic_add_int(p, v); }
inline unsigned int atomicAdd(unsigned int* p, unsigned int v) { return cudahost_atomic_add_int(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    return cudahost_atomic_add_int(p, v);
}
template <typename F, typename U>
inline F cudahost_atomic_add_float(F* p, F v) {
    static_assert(sizeof(F) == sizeof(U), "same size");
    U* q = reinterpret_cast<U*>(p);
    U old = __atomic_load_n(q, __ATOMIC_RELAXED);
    for (;;) {
        const F sum = cudahost::bit_cast<F>(old) + v;
        if (__atomic_compare_exchange_n(q, &old, cudahost::bit_cast<U>(sum), false, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
            return cudahost::bit_cast<F>(old);
        }
    }
}
inline float atomicAdd(float* p, float v) { return cudahost_atomic_add_float<float, unsigned int>(p, v); }
inline double atomicAdd(double* p, double v) {
    return cudahost_atomic_add_float<double, unsigned long long>(p, v);
}

namespace cudahost {

// An entry of a module: the kernel's name, its launch bound (.maxntid of its PTX), its static
// shared memory (bytes, from its PTX), whether its threads never wait for each other (no barrier,
// warp collective or call in its PTX: they run as plain calls, without fibers) and a trampoline
// that calls it with 8-byte arguments.
struct Entry {
    const char* module;
    const char* name;
    int params;
    int max_threads;
    long long static_shared;
    bool sync_free;
    void (*fn)();
    void (*call)(void (*fn)(), const std::uint64_t* args);
};

template <typename T>
inline T from_bits(std::uint64_t v) {
    static_assert(sizeof(T) == 8, "kernel parameters are 8-byte values");
    return bit_cast<T>(v);
}

template <typename... A, std::size_t... I>
inline void call_with(void (*f)(A...), const std::uint64_t* args, std::index_sequence<I...>) {
    f(from_bits<A>(args[I])...);
}

template <typename... A>
void trampoline(void (*fn)(), const std::uint64_t* args) {
    call_with(reinterpret_cast<void (*)(A...)>(fn), args, std::index_sequence_for<A...>{});
}

template <typename... A>
Entry make_entry(const char* module, const char* name, int max_threads, long long static_shared, bool sync_free,
                 void (*f)(A...)) {
    return Entry{module, name, static_cast<int>(sizeof...(A)), max_threads, static_shared, sync_free,
                 reinterpret_cast<void (*)()>(f), &trampoline<A...>};
}

}  // namespace cudahost
