// Standard normals of the draw layout (see philox.cuh and ops/philox.go), shared by every module
// that draws them in the kernel: the Normal fill's numbers for (seed, site, chain, coordinate j) in
// the kernel's precision, by the Box–Muller code of philox.cuh, so that every module's normals are
// the same bits as random.cu's normal_f32 / normal_f64 for the same draw.
//
//   float:  lane j / 4 serves coordinates 4·lane .. 4·lane + 3; pair (0, 1) from words (x, y),
//           pair (2, 3) from words (z, w) (cosine branch first): the radius from all 32 bits of
//           the first word (radius_u32), the angle from the 24-bit uniform of the second.
//   double: lane j / 2 serves coordinates 2·lane, 2·lane + 1; one pair on the 53-bit uniforms of
//           words (x, y) and (z, w).
#pragma once

#include "philox.cuh"

// normals_f32 sets (z0, z1) to the float pair of words (x, y) of block b and, when second is set,
// (z2, z3) to the pair of words (z, w); otherwise z2 = z3 = 0 and the second pair is not computed.
__device__ __forceinline__ void normals_f32(uint4 b, bool second, float* z0, float* z1, float* z2,
                                            float* z3) {
    box_muller_f32(b.x, b.y, z0, z1);
    *z2 = 0.0f;
    *z3 = 0.0f;
    if (second) {
        box_muller_f32(b.z, b.w, z2, z3);
    }
}

// normals_f64 sets (z0, z1) to the double pair of block b: u1 = U64(x, y), u2 = U64(z, w).
__device__ __forceinline__ void normals_f64(uint4 b, double* z0, double* z1) {
    box_muller_f64(b, z0, z1);
}

// Normals<T>: the W coordinates one Philox block serves in T's stream and their normals.
template <typename T>
struct Normals;

template <>
struct Normals<float> {
    static constexpr int W = 4;
    // block sets z to the block's W normals.
    __device__ __forceinline__ static void block(uint4 b, float (&z)[4]) {
        normals_f32(b, true, &z[0], &z[1], &z[2], &z[3]);
    }
    // widened sets z to the normals of the block's coordinates 0 .. cnt − 1, widened (exactly) to
    // double; a pair no valid coordinate needs (cnt ≤ 2) is skipped and left 0.
    __device__ __forceinline__ static void widened(uint4 b, int cnt, double (&z)[4]) {
        float z0, z1, z2, z3;
        normals_f32(b, cnt > 2, &z0, &z1, &z2, &z3);
        z[0] = z0;
        z[1] = z1;
        z[2] = z2;
        z[3] = z3;
    }
};

template <>
struct Normals<double> {
    static constexpr int W = 2;
    __device__ __forceinline__ static void block(uint4 b, double (&z)[2]) {
        normals_f64(b, &z[0], &z[1]);
    }
    __device__ __forceinline__ static void widened(uint4 b, int /*cnt*/, double (&z)[2]) {
        normals_f64(b, &z[0], &z[1]);
    }
};
