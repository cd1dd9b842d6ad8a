// Random fills: Philox4x32-10 words, uniforms and standard normals in the draw layout of
// ops/philox.go (see philox.cuh). Every value is a pure function of (seed, site, chain0 + row,
// column), bit-identical with the Go reference for bits and uniforms, whatever the launch geometry.
//
// Fill kernels take (dst, chains, dim, seed, site, chain0): dst is row-major (chains, dim), row i
// belongs to chain chain0 + i (the caller keeps chain0 + chains <= 2^32). One thread computes one
// Philox block (one lane of one row) and writes the W consecutive values of that lane, W = 4 for
// float and W = 2 for double; the last lane of a row is partial when W does not divide dim. The
// threads walk the flat (row, lane) index in a grid-stride loop, so any 1-D launch covers the
// tensor. Every parameter is 8 bytes wide (pointers, long long, unsigned long long).

#include <cstdint>

#include "normals.cuh"

namespace {

// Stores of one lane's W values. The 16-byte forms are used when the whole tensor is 16-byte
// aligned and W divides dim, so that every lane starts on a 16-byte boundary.
template <typename T, int W>
struct LaneStore;

template <>
struct LaneStore<unsigned int, 4> {
    __device__ __forceinline__ static void vec(unsigned int* p, const unsigned int (&v)[4]) {
        *reinterpret_cast<uint4*>(p) = make_uint4(v[0], v[1], v[2], v[3]);
    }
};

template <>
struct LaneStore<float, 4> {
    __device__ __forceinline__ static void vec(float* p, const float (&v)[4]) {
        *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
    }
};

template <>
struct LaneStore<double, 2> {
    __device__ __forceinline__ static void vec(double* p, const double (&v)[2]) {
        *reinterpret_cast<double2*>(p) = make_double2(v[0], v[1]);
    }
};

// The per-lane maps from a Philox block to the W values of the lane (column j = W * lane + k).

// Raw words: value k = block[k], stored as its bit pattern.
struct BitsOp {
    typedef unsigned int T;
    static constexpr int W = 4;
    __device__ __forceinline__ static void apply(uint4 b, T (&v)[W]) {
        v[0] = b.x;
        v[1] = b.y;
        v[2] = b.z;
        v[3] = b.w;
    }
};

// Uniform float: value k = U32(block[k]).
struct UniformF32Op {
    typedef float T;
    static constexpr int W = 4;
    __device__ __forceinline__ static void apply(uint4 b, T (&v)[W]) {
        v[0] = uniform_u32(b.x);
        v[1] = uniform_u32(b.y);
        v[2] = uniform_u32(b.z);
        v[3] = uniform_u32(b.w);
    }
};

// Uniform double: value q = U64(block[2q], block[2q + 1]).
struct UniformF64Op {
    typedef double T;
    static constexpr int W = 2;
    __device__ __forceinline__ static void apply(uint4 b, T (&v)[W]) {
        v[0] = uniform_u64(b.x, b.y);
        v[1] = uniform_u64(b.z, b.w);
    }
};

// Normal float: pair p uses u1 = U32(block[2p]), u2 = U32(block[2p + 1]); values 2p and 2p + 1
// are its cosine and sine branches.
struct NormalF32Op {
    typedef float T;
    static constexpr int W = 4;
    __device__ __forceinline__ static void apply(uint4 b, T (&v)[W]) {
        Normals<float>::block(b, v);
    }
};

// Normal double: one pair per lane, u1 = U64(block[0], block[1]), u2 = U64(block[2], block[3]).
struct NormalF64Op {
    typedef double T;
    static constexpr int W = 2;
    __device__ __forceinline__ static void apply(uint4 b, T (&v)[W]) {
        Normals<double>::block(b, v);
    }
};

// fill_lanes runs Op over the flat (row, lane) indices t, t + stride, … below total; (row, lane) is
// t's pair, stepped by (drow, dlane) per iteration. Aligned: W divides dim and dst is 16-byte
// aligned, so lane (row, lane) starts at element W·t and is stored whole.
template <typename Op, bool Aligned>
__device__ __forceinline__ void fill_lanes(typename Op::T* __restrict__ dst,
                                           unsigned long long udim, unsigned long long lanes,
                                           unsigned long long total,
                                           unsigned long long t, unsigned long long stride,
                                           unsigned long long row, unsigned long long lane,
                                           unsigned long long drow, unsigned long long dlane,
                                           uint2 key, unsigned long long site,
                                           unsigned long long chain0) {
    typedef typename Op::T T;
    constexpr int W = Op::W;
    for (; t < total; t += stride) {
        const uint4 b = philox_block(key, site, static_cast<unsigned int>(chain0 + row),
                                     static_cast<unsigned int>(lane));
        T v[W];
        Op::apply(b, v);
        if (Aligned) {
            LaneStore<T, W>::vec(dst + W * t, v);
        } else {
            const unsigned long long j = lane * W;
            T* p = dst + row * udim + j;
#pragma unroll
            for (int k = 0; k < W; ++k) {
                if (j + k < udim) {
                    p[k] = v[k];
                }
            }
        }
        lane += dlane;
        row += drow;
        if (lane >= lanes) {
            lane -= lanes;
            ++row;
        }
    }
}

// fill_rows runs Op over every (row, lane) of dst.
template <typename Op>
__device__ __forceinline__ void fill_rows(typename Op::T* __restrict__ dst, long long chains,
                                          long long dim, unsigned long long seed,
                                          unsigned long long site, unsigned long long chain0) {
    constexpr int W = Op::W;
    if (chains <= 0 || dim <= 0) {
        return;
    }
    const unsigned long long udim = static_cast<unsigned long long>(dim);
    const unsigned long long lanes = (udim + W - 1) / W;
    const unsigned long long total = static_cast<unsigned long long>(chains) * lanes;
    const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
    const unsigned long long t =
        static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t >= total) {
        return;
    }
    // (row, lane) of the flat index t, stepped by (stride / lanes, stride % lanes) per iteration:
    // the only 64-bit divisions are these, once per thread.
    const unsigned long long row = t / lanes;
    const unsigned long long lane = t - row * lanes;
    const unsigned long long drow = stride / lanes;
    const unsigned long long dlane = stride - drow * lanes;
    const uint2 key = philox_key(seed);
    if (udim % W == 0 && reinterpret_cast<std::uintptr_t>(dst) % 16 == 0) {
        fill_lanes<Op, true>(dst, udim, lanes, total, t, stride, row, lane, drow, dlane, key, site,
                             chain0);
    } else {
        fill_lanes<Op, false>(dst, udim, lanes, total, t, stride, row, lane, drow, dlane, key, site,
                              chain0);
    }
}

}  // namespace

// philox_bits_f32: dst[i, j] = word block[j % 4] of lane j / 4, its raw bit pattern.
extern "C" __global__ void philox_bits_f32(float* dst, long long chains, long long dim,
                                           unsigned long long seed, unsigned long long site,
                                           unsigned long long chain0) {
    fill_rows<BitsOp>(reinterpret_cast<unsigned int*>(dst), chains, dim, seed, site, chain0);
}

// uniform_f32: dst[i, j] = (block[j % 4] >> 8) * 2^-24 of lane j / 4, in [0, 1).
extern "C" __global__ void uniform_f32(float* dst, long long chains, long long dim,
                                       unsigned long long seed, unsigned long long site,
                                       unsigned long long chain0) {
    fill_rows<UniformF32Op>(dst, chains, dim, seed, site, chain0);
}

// uniform_f64: dst[i, j] = ((a << 21) | (b >> 11)) * 2^-53, (a, b) = (block[2q], block[2q + 1]),
// q = j % 2, of lane j / 2, in [0, 1).
extern "C" __global__ void uniform_f64(double* dst, long long chains, long long dim,
                                       unsigned long long seed, unsigned long long site,
                                       unsigned long long chain0) {
    fill_rows<UniformF64Op>(dst, chains, dim, seed, site, chain0);
}

// normal_f32: Box-Muller in float on the uniforms of lane j / 4, pair (j % 4) / 2; cosine branch
// for even j, sine branch for odd j.
extern "C" __global__ void normal_f32(float* dst, long long chains, long long dim,
                                      unsigned long long seed, unsigned long long site,
                                      unsigned long long chain0) {
    fill_rows<NormalF32Op>(dst, chains, dim, seed, site, chain0);
}

// normal_f64: Box-Muller in double on the two 53-bit uniforms of lane j / 2; cosine branch for
// even j, sine branch for odd j.
extern "C" __global__ void normal_f64(double* dst, long long chains, long long dim,
                                      unsigned long long seed, unsigned long long site,
                                      unsigned long long chain0) {
    fill_rows<NormalF64Op>(dst, chains, dim, seed, site, chain0);
}

// philox_kat: for each of n records, in[6r .. 6r + 5] = (ctr.x, ctr.y, ctr.z, ctr.w, key.x,
// key.y); out[4r .. 4r + 3] = the Philox4x32-10 block. Runs the known-answer vectors on the device.
extern "C" __global__ void philox_kat(unsigned int* out, const unsigned int* in, long long n) {
    const unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
    for (unsigned long long r =
             static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
         n > 0 && r < static_cast<unsigned long long>(n); r += stride) {
        const unsigned int* rec = in + 6 * r;
        const uint4 b = philox4x32_10(make_uint4(rec[0], rec[1], rec[2], rec[3]),
                                      make_uint2(rec[4], rec[5]));
        unsigned int* o = out + 4 * r;
        o[0] = b.x;
        o[1] = b.y;
        o[2] = b.z;
        o[3] = b.w;
    }
}
