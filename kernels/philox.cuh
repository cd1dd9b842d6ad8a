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

// The f32 stream's Box–Muller pair (docs/math.md §0, "f32 normals"): every operation is an IEEE
// operation or an explicit fmaf, performed in the order written, so that ops/philox.go
// (normalPair32, negTwoLogRadius32, sinCosTurn32: the same constants, the same operations, fmaf as
// ops.fma32) computes the same bits; the build fuses nothing else (-fmad=false; the host build
// -ffp-contract=off). The reductions are exact bit operations and the polynomials are minimax
// fits: −2 log v within 0.86 ulp and sin, cos within 0.99 ulp of float over every input.

// R32(w) = m·2^e with m in [float(sqrt(1/2)), 2·float(sqrt(1/2))) (bits of float(sqrt(1/2))).
#define NORMALS_RADIUS_MANT0 0x3f3504f3u

// neg_two_log_radius_u32 returns L = −2 log radius_u32(w) >= 0 in float (0 for w = 0, 64 ln 2 at
// most). y = 2^32·R32(w) as rounded by radius_u32; ix = bits(R32) − bits(sqrt(1/2)) is one integer
// subtraction on y's bits; clearing its low 23 bits (arithmetically) leaves e·2^23, and y's bits
// less (e + 31)·2^23 are the float 2m, m in [sqrt(1/2), sqrt(2)): R32 = m·2^e exactly. With
// g = 2 − 2m (exact), −2 log1p(−g/2) = g + g²·R(g), R a degree-8 minimax polynomial, and
// L = e·2^23·(−2 ln 2·2^−23) + (g + g·(g·R(g))).
__device__ __forceinline__ float neg_two_log_radius_u32(unsigned int w) {
    const float y = __ull2float_rn(static_cast<unsigned long long>(~w) + 1ull);  // 2^32 − w
    const unsigned int yb = __float_as_uint(y);
    const int e23 = static_cast<int>(yb - (NORMALS_RADIUS_MANT0 + (32u << 23))) & ~((1 << 23) - 1);
    const float g = 2.0f - __uint_as_float(yb - static_cast<unsigned int>(e23) - (31u << 23));
    float r = 0x1.383dbp-13f;
    r = fmaf(r, g, 0x1.084e18p-11f);
    r = fmaf(r, g, 0x1.0f3762p-10f);
    r = fmaf(r, g, 0x1.22709ap-09f);
    r = fmaf(r, g, 0x1.54274ap-08f);
    r = fmaf(r, g, 0x1.99a402p-07f);
    r = fmaf(r, g, 0x1.000428p-05f);
    r = fmaf(r, g, 0x1.55555p-04f);
    r = fmaf(r, g, 0x1.fffff8p-03f);
    const float a = fmaf(g, g * r, g);
    return fmaf(__int2float_rn(e23), -0x1.62e43p-23f, a);
}

// sincos_turn_u32 sets *s, *c to sin θ and cos θ, θ = 2π·uniform_u32(w), in float. The angle in
// quarter turns is q + x with a = w + 2^29: q = a >> 30 (mod 4) and x = z − 3/2 in [−1/2, 1/2), z
// the float in [1, 2) whose fraction is bits 29..8 of a (both exact). sin(πx/2) =
// x·(π/2 + y·P(y)) with π/2 as a float pair and cos(πx/2) = 1 + y·Q(y), y = x², P and Q minimax
// polynomials of degree 2 and 3; an odd q swaps them, and the signs (sin negated for q in {2, 3},
// cos for q in {1, 2}) are sign-bit flips.
__device__ __forceinline__ void sincos_turn_u32(unsigned int w, float* s, float* c) {
    const unsigned int a = w + (1u << 29);
    const float x = __uint_as_float(0x3f800000u | ((a >> 7) & 0x007ffffeu)) - 1.5f;
    const float y = x * x;
    float t = fmaf(fmaf(-0x1.2dc84cp-08f, y, 0x1.466004p-04f), y, -0x1.4abbbep-01f);
    t = fmaf(y, t, -0x1.777a5cp-25f);
    const float sv = fmaf(x, 0x1.921fb6p+00f, x * t);
    const float u = fmaf(fmaf(fmaf(0x1.d9d57ep-11f, y, -0x1.55c5ep-06f), y, 0x1.03c1dep-02f), y,
                         -0x1.3bd3ccp+00f);
    const float cv = fmaf(y, u, 1.0f);
    const unsigned int odd = static_cast<unsigned int>(static_cast<int>(a << 1) >> 31);
    const unsigned int sb = __float_as_uint(sv) ^ ((a + (1u << 30)) & 0x80000000u);
    const unsigned int cb = __float_as_uint(cv) ^ (a & 0x80000000u);
    *s = __uint_as_float((cb & odd) | (sb & ~odd));
    *c = __uint_as_float((sb & odd) | (cb & ~odd));
}

// box_muller_f32 returns the pair z0 = r cos θ, z1 = r sin θ of words (w1, w2):
// r = sqrtf(neg_two_log_radius_u32(w1)) (correctly rounded), θ = 2π·uniform_u32(w2)
// (sincos_turn_u32); v = radius_u32(w1) in (0, 1], so the logarithm is finite.
__device__ __forceinline__ void box_muller_f32(unsigned int w1, unsigned int w2, float* z0,
                                               float* z1) {
    const float r = sqrtf(neg_two_log_radius_u32(w1));
    float s, c;
    sincos_turn_u32(w2, &s, &c);
    *z0 = r * c;
    *z1 = r * s;
}

// The f64 stream's Box–Muller pair (docs/math.md §0, "f64 normals"): the f32 stream's reductions
// and order of operations in double, with polynomials of higher degree; ops/philox.go
// (normalPair64, negTwoLogRadius64, sinCosTurn64, math.FMA for fma) computes the same bits.

// Bits of double(sqrt(1/2)).
#define NORMALS_RADIUS_MANT0_F64 0x3fe6a09e667f3bcdull

// neg_two_log_radius_u64 returns L = −2 log v, v = 1 − uniform_u64(a, b) in (0, 1], in double (0
// for v = 1). y = 2^53·v is an integer, exact in double; the reduction of neg_two_log_radius_u32
// gives v = m·2^e, m in [sqrt(1/2), sqrt(2)), and g = 2 − 2m exactly; R is a degree-20 minimax
// polynomial; with c = −2 ln 2·2^−52 = c_hi + c_lo, t = g·(g·R(g)) + e·2^52·c_lo and
// L = e·2^52·c_hi + (g + t).
__device__ __forceinline__ double neg_two_log_radius_u64(unsigned int a, unsigned int b) {
    const unsigned long long m = (static_cast<unsigned long long>(a) << 21) | (b >> 11);
    const double y = __ull2double_rn((1ull << 53) - m);
    const unsigned long long yb = static_cast<unsigned long long>(__double_as_longlong(y));
    const long long e52 = static_cast<long long>(yb - (NORMALS_RADIUS_MANT0_F64 + (53ull << 52))) &
                          ~((1ll << 52) - 1);
    const unsigned long long mb = yb - static_cast<unsigned long long>(e52) - (52ull << 52);
    const double g = 2.0 - __longlong_as_double(static_cast<long long>(mb));
    double r = 0x1.8d03c9d31b9e8p-27;
    r = fma(r, g, 0x1.d2dfb3b3d7369p-25);
    r = fma(r, g, 0x1.016e535c91e6bp-23);
    r = fma(r, g, 0x1.bbf46ca8d7ecbp-23);
    r = fma(r, g, 0x1.b421de6cfb668p-22);
    r = fma(r, g, 0x1.dc765288ca0cdp-21);
    r = fma(r, g, 0x1.00d2e93f59a19p-19);
    r = fma(r, g, 0x1.116cf8678609ep-18);
    r = fma(r, g, 0x1.2489373f9e985p-17);
    r = fma(r, g, 0x1.3b0d30aa12403p-16);
    r = fma(r, g, 0x1.55557386076e2p-15);
    r = fma(r, g, 0x1.745d5cd6b39a2p-14);
    r = fma(r, g, 0x1.99999af22df73p-13);
    r = fma(r, g, 0x1.c71c700bbfc28p-12);
    r = fma(r, g, 0x1.fffffff068876p-11);
    r = fma(r, g, 0x1.24924927b2039p-09);
    r = fma(r, g, 0x1.5555555573474p-08);
    r = fma(r, g, 0x1.9999999994053p-07);
    r = fma(r, g, 0x1.ffffffffffd4ap-06);
    r = fma(r, g, 0x1.5555555555571p-04);
    r = fma(r, g, 0x1p-02);
    const double ef = __ll2double_rn(e52);
    const double t = fma(g, g * r, ef * -0x1.abc9e3b39803fp-107);
    return fma(ef, -0x1.62e42fefa39efp-52, g + t);
}

// sincos_turn_u64 sets *s, *c to sin θ and cos θ, θ = 2π·uniform_u64(a, b), in double: the
// reduction of sincos_turn_u32 on the 53-bit angle at the top of a 64-bit word,
// A = ((a << 32) | b with its low 11 bits cleared) + 2^61: q = A >> 62, x = z − 3/2 with z's
// fraction bits 61..11 of A; P and Q of degree 6.
__device__ __forceinline__ void sincos_turn_u64(unsigned int a, unsigned int b, double* s,
                                                double* c) {
    const unsigned long long w =
        ((static_cast<unsigned long long>(a) << 32) | (b & ~0x7ffu)) + (1ull << 61);
    const unsigned long long zb = 0x3ff0000000000000ull | ((w >> 10) & 0x000ffffffffffffeull);
    const double x = __longlong_as_double(static_cast<long long>(zb)) - 1.5;
    const double y = x * x;
    double t = -0x1.6c61119a0348p-31;
    t = fma(t, y, 0x1.e8eee69acff3bp-25);
    t = fma(t, y, -0x1.e3074b7130511p-19);
    t = fma(t, y, 0x1.50783485e633fp-13);
    t = fma(t, y, -0x1.32d2cce62ad8ap-08);
    t = fma(t, y, 0x1.466bc6775aadap-04);
    t = fma(t, y, -0x1.4abbce625be53p-01);
    t = fma(y, t, 0x1.1a62633145c07p-54);
    const double sv = fma(x, 0x1.921fb54442d18p+00, x * t);
    double u = -0x1.b263c29a5bf61p-28;
    u = fma(u, y, 0x1.f9cc40aa915aep-22);
    u = fma(u, y, -0x1.a6d1ec7e09144p-16);
    u = fma(u, y, 0x1.e1f5068367af4p-11);
    u = fma(u, y, -0x1.55d3c7e3c928p-06);
    u = fma(u, y, 0x1.03c1f081b5aaep-02);
    u = fma(u, y, -0x1.3bd3cc9be45dep+00);
    const double cv = fma(y, u, 1.0);
    const unsigned long long odd =
        static_cast<unsigned long long>(static_cast<long long>(w << 1) >> 63);
    const unsigned long long sb = static_cast<unsigned long long>(__double_as_longlong(sv)) ^
                                  ((w + (1ull << 62)) & 0x8000000000000000ull);
    const unsigned long long cb =
        static_cast<unsigned long long>(__double_as_longlong(cv)) ^ (w & 0x8000000000000000ull);
    *s = __longlong_as_double(static_cast<long long>((cb & odd) | (sb & ~odd)));
    *c = __longlong_as_double(static_cast<long long>((sb & odd) | (cb & ~odd)));
}

// box_muller_f64 returns the double pair z0 = r cos θ, z1 = r sin θ of block b:
// r = sqrt(neg_two_log_radius_u64(b.x, b.y)) (correctly rounded), θ = 2π·uniform_u64(b.z, b.w)
// (sincos_turn_u64).
__device__ __forceinline__ void box_muller_f64(uint4 b, double* z0, double* z1) {
    const double r = sqrt(neg_two_log_radius_u64(b.x, b.y));
    double s, c;
    sincos_turn_u64(b.z, b.w, &s, &c);
    *z0 = r * c;
    *z1 = r * s;
}
