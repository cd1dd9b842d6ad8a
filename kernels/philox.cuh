// Philox4x32-10 counter-based generator (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as
// easy as 1, 2, 3", SC'11; the Random123 reference implementation) and the device helpers of the
// draw layout shared with the Go reference in ops/philox.go. The words are bit-identical with
// ops.Philox4x32 for the same (counter, key).
//
// Known answers (Random123 kat_vectors, philox4x32 10 rounds):
//   ctr 00000000 00000000 00000000 00000000  key 00000000 00000000
//     -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8
//   ctr ffffffff ffffffff ffffffff ffffffff  key ffffffff ffffffff
//     -> 408f276d 41c83b0e a20bc7c6 6d5451fd
//   ctr 243f6a88 85a308d3 13198a2e 03707344  key a4093822 299f31d0
//     -> d16cfe09 94fdcceb 5001e420 24126ea1
// The kernel philox_kat in random.cu runs them on the device.
//
// Draw layout: a draw is (seed, site, chain). key = (uint32(seed), uint32(seed >> 32)); the block
// of lane L of chain c at site s has counter (L, c, uint32(s), uint32(s >> 32)). Coordinate j of a
// row uses lane j / 4 (float: one word per value) or lane j / 2 (double: two words per value).
#pragma once

#define PHILOX_M4x32_0 0xD2511F53u
#define PHILOX_M4x32_1 0xCD9E8D57u
#define PHILOX_W32_0 0x9E3779B9u
#define PHILOX_W32_1 0xBB67AE85u

// One Philox4x32 round (Random123's _philox4x32round).
__device__ __forceinline__ uint4 philox4x32_round(uint4 ctr, uint2 key) {
    const unsigned int hi0 = __umulhi(PHILOX_M4x32_0, ctr.x);
    const unsigned int lo0 = PHILOX_M4x32_0 * ctr.x;
    const unsigned int hi1 = __umulhi(PHILOX_M4x32_1, ctr.z);
    const unsigned int lo1 = PHILOX_M4x32_1 * ctr.z;
    return make_uint4(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
}

// Random123's _philox4x32bumpkey.
__device__ __forceinline__ uint2 philox4x32_bumpkey(uint2 key) {
    return make_uint2(key.x + PHILOX_W32_0, key.y + PHILOX_W32_1);
}

// philox4x32_10 returns the Philox4x32-10 block for counter ctr under key key: ten rounds, the key
// bumped between rounds.
__device__ __forceinline__ uint4 philox4x32_10(uint4 ctr, uint2 key) {
    ctr = philox4x32_round(ctr, key);  // 1
    key = philox4x32_bumpkey(key);
    ctr = philox4x32_round(ctr, key);  // 2
    key = philox4x32_bumpkey(key);
    ctr = philox4x32_round(ctr, key);  // 3
    key = philox4x32_bumpkey(key);
    ctr = philox4x32_round(ctr, key);  // 4
    key = philox4x32_bumpkey(key);
    ctr = philox4x32_round(ctr, key);  // 5
    key = philox4x32_bumpkey(key);
    ctr = philox4x32_round(ctr, key);  // 6
    key = philox4x32_bumpkey(key);
    ctr = philox4x32_round(ctr, key);  // 7
    key = philox4x32_bumpkey(key);
    ctr = philox4x32_round(ctr, key);  // 8
    key = philox4x32_bumpkey(key);
    ctr = philox4x32_round(ctr, key);  // 9
    key = philox4x32_bumpkey(key);
    return philox4x32_round(ctr, key);  // 10
}

// philox_key is the key of a draw seeded with seed.
__device__ __forceinline__ uint2 philox_key(unsigned long long seed) {
    return make_uint2(static_cast<unsigned int>(seed), static_cast<unsigned int>(seed >> 32));
}

// philox_counter is the counter of lane of chain at site.
__device__ __forceinline__ uint4 philox_counter(unsigned int lane, unsigned int chain,
                                                unsigned long long site) {
    return make_uint4(lane, chain, static_cast<unsigned int>(site),
                      static_cast<unsigned int>(site >> 32));
}

// philox_block is the block of lane of chain at site under key.
__device__ __forceinline__ uint4 philox_block(uint2 key, unsigned long long site,
                                              unsigned int chain, unsigned int lane) {
    return philox4x32_10(philox_counter(lane, chain, site), key);
}

// uniform_u32 maps a word to [0, 1) with 24 random bits: (w >> 8) * 2^-24, exact in float.
__device__ __forceinline__ float uniform_u32(unsigned int w) {
    return __uint2float_rn(w >> 8) * 0x1p-24f;
}

// uniform_u64 maps two words to [0, 1) with 53 random bits: ((a << 21) | (b >> 11)) * 2^-53,
// exact in double.
__device__ __forceinline__ double uniform_u64(unsigned int a, unsigned int b) {
    const unsigned long long m = (static_cast<unsigned long long>(a) << 21) | (b >> 11);
    return __ull2double_rn(m) * 0x1p-53;
}

// radius_u32 is 1 − w · 2^-32 ∈ (0, 1], the Box–Muller radius variable of the f32 stream, from all
// 32 bits of w: (2^32 − w) is exact in 64 bits and rounded once to float, then scaled exactly. Its
// smallest value 2^-32 caps the radius at sqrt(64 log 2) ≈ 6.66 (a 24-bit uniform would cap it at
// 5.77, 2^-24 of the mass collapsed onto the cap).
__device__ __forceinline__ float radius_u32(unsigned int w) {
    return __ull2float_rn(0x100000000ull - w) * 0x1p-32f;
}

// box_muller_f32 returns the pair z0 = r cos(2 pi u2), z1 = r sin(2 pi u2) with
// r = sqrt(-2 log v), v = radius_u32(w1) in (0, 1], so the logarithm is finite, in float; 2 * u2
// is exact, so sincospif sees no rounding of 2 pi.
__device__ __forceinline__ void box_muller_f32(unsigned int w1, float u2, float* z0, float* z1) {
    const float r = sqrtf(-2.0f * logf(radius_u32(w1)));
    float s, c;
    sincospif(2.0f * u2, &s, &c);
    *z0 = r * c;
    *z1 = r * s;
}

// box_muller_f64 is the pair of box_muller_f32 in double, with v = 1 − u1 (exact).
__device__ __forceinline__ void box_muller_f64(double u1, double u2, double* z0, double* z1) {
    const double r = sqrt(-2.0 * log(1.0 - u1));
    double s, c;
    sincospi(2.0 * u2, &s, &c);
    *z0 = r * c;
    *z1 = r * s;
}
