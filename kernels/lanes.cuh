// Row-lane helpers of the element-wise Langevin and diffusion kernels (langevin.cu, diffusion.cu):
// a Philox lane of a row serves W = 4 (float) or 2 (double) consecutive coordinates, 16 bytes of
// T; Lane<T> draws their normals (normals.cuh) and moves them as one 16-byte vector where aligned,
// widened to double. LaneWalk and GroupWalk are the grid-stride enumerations of (row, lane) items
// and of rows by groups of warp lanes; group_sum is the groups' butterfly sum.
#pragma once

#include <cstdint>

#include "normals.cuh"

__device__ __forceinline__ bool aligned16(const void* p) {
    return reinterpret_cast<std::uintptr_t>(p) % 16 == 0;
}

// Lane<T>: the W coordinates one Philox block serves, their normals and 16-byte vector access.
template <typename T>
struct Lane;

template <>
struct Lane<float> {
    static constexpr int W = 4;
    // The float stream's normals of the block's coordinates 0 .. cnt − 1 (pair (0, 1) from words
    // (x, y), pair (2, 3) from words (z, w); a pair no valid coordinate needs is skipped).
    __device__ __forceinline__ static void normals(uint4 b, int cnt, double (&z)[4]) {
        Normals<float>::widened(b, cnt, z);
    }
    __device__ __forceinline__ static void load(const float* p, double (&v)[4]) {
        const float4 w = *reinterpret_cast<const float4*>(p);
        v[0] = w.x;
        v[1] = w.y;
        v[2] = w.z;
        v[3] = w.w;
    }
    __device__ __forceinline__ static void store(float* p, const double (&v)[4]) {
        *reinterpret_cast<float4*>(p) = make_float4(static_cast<float>(v[0]), static_cast<float>(v[1]),
                                                    static_cast<float>(v[2]), static_cast<float>(v[3]));
    }
};

template <>
struct Lane<double> {
    static constexpr int W = 2;
    // The double stream's pair: u1 from words (x, y), u2 from words (z, w).
    __device__ __forceinline__ static void normals(uint4 b, int cnt, double (&z)[2]) {
        Normals<double>::widened(b, cnt, z);
    }
    __device__ __forceinline__ static void load(const double* p, double (&v)[2]) {
        const double2 w = *reinterpret_cast<const double2*>(p);
        v[0] = w.x;
        v[1] = w.y;
    }
    __device__ __forceinline__ static void store(double* p, const double (&v)[2]) {
        *reinterpret_cast<double2*>(p) = make_double2(v[0], v[1]);
    }
};

// load_lane reads the cnt ≤ W values at p widened to double (a 16-byte load when vec is set, which
// requires cnt == W and p 16-byte aligned); the rest of v is zero.
template <typename T>
__device__ __forceinline__ void load_lane(const T* p, int cnt, bool vec, double (&v)[Lane<T>::W]) {
    constexpr int W = Lane<T>::W;
    if (vec) {
        Lane<T>::load(p, v);
        return;
    }
#pragma unroll
    for (int k = 0; k < W; ++k) {
        v[k] = k < cnt ? static_cast<double>(p[k]) : 0.0;
    }
}

// store_lane writes the cnt ≤ W values of v rounded to T at p.
template <typename T>
__device__ __forceinline__ void store_lane(T* p, int cnt, bool vec, const double (&v)[Lane<T>::W]) {
    constexpr int W = Lane<T>::W;
    if (vec) {
        Lane<T>::store(p, v);
        return;
    }
#pragma unroll
    for (int k = 0; k < W; ++k) {
        if (k < cnt) {
            p[k] = static_cast<T>(v[k]);
        }
    }
}

// LaneWalk enumerates the flat (row, lane) items of an (n, d) tensor cut into lanes of W
// coordinates, grid-stride: the only 64-bit divisions are in the constructor, once per thread.
struct LaneWalk {
    unsigned long long t, total, stride, row, lane, lanes, drow, dlane;

    __device__ __forceinline__ LaneWalk(long long n, long long d, int w) {
        const unsigned long long udim = static_cast<unsigned long long>(d);
        lanes = (udim + w - 1) / w;
        total = static_cast<unsigned long long>(n) * lanes;
        stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
        t = static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x;
        row = t / lanes;
        lane = t - row * lanes;
        drow = stride / lanes;
        dlane = stride - drow * lanes;
    }
    __device__ __forceinline__ bool more() const { return t < total; }
    __device__ __forceinline__ void next() {
        t += stride;
        lane += dlane;
        row += drow;
        if (lane >= lanes) {
            lane -= lanes;
            ++row;
        }
    }
};

// GroupWalk enumerates rows by groups of g lanes (g a power of two ≤ 32) of one warp: warp w owns
// rows w·(32/g) .. w·(32/g) + 32/g − 1 of each grid-stride round, lane l serves row base + l / g
// and coordinates sub, sub + g, … with sub = l % g. The loop condition is uniform over the warp so
// that every lane takes part in every shuffle; lanes past the last row are inactive.
struct GroupWalk {
    int g, sub;
    unsigned long long base, step, slot;

    __device__ __forceinline__ GroupWalk(long long group) {
        g = (group >= 1 && group <= 32 && (group & (group - 1)) == 0) ? static_cast<int>(group) : 32;
        const unsigned int lane = threadIdx.x & 31u;
        sub = static_cast<int>(lane & static_cast<unsigned int>(g - 1));
        slot = lane / static_cast<unsigned int>(g);
        const unsigned long long per_warp = 32u / static_cast<unsigned int>(g);
        const unsigned long long warp =
            (static_cast<unsigned long long>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
        const unsigned long long warps = (static_cast<unsigned long long>(gridDim.x) * blockDim.x) >> 5;
        base = warp * per_warp;
        step = warps * per_warp;
    }
};

// group_sum: butterfly sum over the g lanes of a group; every lane of the group ends with the same
// bits (each step adds the same two values, in either order).
__device__ __forceinline__ double group_sum(double v, int g) {
    for (int o = g >> 1; o > 0; o >>= 1) {
        v = v + __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}
