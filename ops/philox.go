package ops

import "math"

// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11;
// Random123). Bit-identical with kernels/philox.cuh: the CPU reference and the CUDA kernels draw
// the same words for the same (key, counter).

const (
	philoxM0 = 0xD2511F53
	philoxM1 = 0xCD9E8D57
	philoxW0 = 0x9E3779B9
	philoxW1 = 0xBB67AE85
)

// Philox4x32 returns the Philox4x32-10 block for counter ctr and key key.
func Philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	c0, c1, c2, c3 := ctr[0], ctr[1], ctr[2], ctr[3]
	k0, k1 := key[0], key[1]
	for r := 0; r < 10; r++ {
		if r > 0 {
			k0 += philoxW0
			k1 += philoxW1
		}
		p0 := uint64(philoxM0) * uint64(c0)
		p1 := uint64(philoxM1) * uint64(c2)
		c0, c1, c2, c3 = uint32(p1>>32)^c1^k0, uint32(p1), uint32(p0>>32)^c3^k1, uint32(p0)
	}
	return [4]uint32{c0, c1, c2, c3}
}

// The draw layout — the contract between the CPU reference and the kernels in kernels/random.cu.
//
// A draw is identified by (seed, site, chain): key = (uint32(seed), uint32(seed>>32)); the Philox
// block for lane L of chain c at site s has counter (L, c, uint32(s), uint32(s>>32)). Coordinate j
// of a chain's row uses lane j/4 (f32, 4 words a block) or j/2 (f64, 2 words per value or pair),
// so the numbers of chain c, site s, coordinate j are a pure function of (seed, c, s, j): the same
// on every device and whatever the batch size or launch geometry.
//
//	bits      (f32 raw)  word block[j%4] of lane j/4, its bit pattern stored in a float32
//	uniform   f32        U32(w) = (w >> 8) · 2^-24 ∈ [0, 1), w = block[j%4] of lane j/4
//	uniform   f64        U64(a, b) = ((a << 21) | (b >> 11)) · 2^-53 ∈ [0, 1),
//	                     (a, b) = (block[2q], block[2q+1]), q = j%2, lane j/2
//	normal    f32        lane j/4, pair p = (j%4)/2, v = R32(block[2p]), u2 = U32(block[2p+1]),
//	                     r = sqrt(−2 log v); r·cos(2π u2) for even j, r·sin(2π u2) for odd j
//	normal    f64        lane j/2, v = 1 − U64(block[0], block[1]), u2 = U64(block[2], block[3]),
//	                     same Box–Muller pair
//
// R32(w) = float32(2^32 − w) · 2^-32 ∈ (0, 1] takes all 32 bits of its word, so the f32 radius
// reaches sqrt(64 log 2) ≈ 6.66 (the tail beyond, of mass 2^-32, is collapsed onto it; a 24-bit
// uniform would cap it at 5.77, missing 2^-24 of the mass); the f64 radius reaches 8.57. The
// logarithm is always finite. The f32 and f64 streams of one draw differ: each is computed in its
// own precision.

// philoxBlock is the block of lane for chain at site under seed.
func philoxBlock(seed, site uint64, chain, lane uint32) [4]uint32 {
	return Philox4x32([4]uint32{lane, chain, uint32(site), uint32(site >> 32)},
		[2]uint32{uint32(seed), uint32(seed >> 32)})
}

// Uniform32 maps a word to [0, 1) with 24 random bits (exact in float32).
func Uniform32(w uint32) float32 { return float32(w>>8) * (1.0 / (1 << 24)) }

// Uniform64 maps two words to [0, 1) with 53 random bits (exact in float64).
func Uniform64(a, b uint32) float64 {
	return float64(uint64(a)<<21|uint64(b>>11)) * (1.0 / (1 << 53))
}

// Radius32 is R32(w) = 1 − w·2^-32 ∈ (0, 1], the radius variable of the f32 normals: 2^32 − w
// rounded once to float32 (as the kernels' __ull2float_rn), then scaled exactly.
func Radius32(w uint32) float32 { return float32(uint64(1)<<32-uint64(w)) * (1.0 / (1 << 32)) }

// boxMuller returns the pair (r cos 2πu2, r sin 2πu2), r = sqrt(−2 log v), in float64; v ∈ (0, 1].
func boxMuller(v, u2 float64) (float64, float64) {
	r := math.Sqrt(-2 * math.Log(v))
	s, c := sinCos2Pi(u2)
	return r * c, r * s
}

// normalPair32 is the f32 stream's pair of words (w1, w2), computed in float64 and each rounded
// once to float32.
func normalPair32(w1, w2 uint32) (float64, float64) {
	z0, z1 := boxMuller(float64(Radius32(w1)), float64(Uniform32(w2)))
	return float64(float32(z0)), float64(float32(z1))
}

// normalPair64 is the f64 stream's pair of a block.
func normalPair64(blk [4]uint32) (float64, float64) {
	return boxMuller(1-Uniform64(blk[0], blk[1]), Uniform64(blk[2], blk[3]))
}

// sinCos2Pi returns sin(2πu), cos(2πu) for u ∈ [0, 1), reducing the argument by octant so that
// the result is accurate to a few ulp (as the kernels' sincospi is) instead of carrying the
// rounding of 2π·u.
func sinCos2Pi(u float64) (s, c float64) {
	// x = 4u ∈ [0, 4): quarter turns. Take the nearest quarter k and the remainder f ∈ [-0.5, 0.5].
	x := 4 * u
	k := math.Floor(x + 0.5)
	f := (x - k) * (math.Pi / 2) // f exact in x − k (Sterbenz), one rounding in the product
	sf, cf := math.Sincos(f)
	switch int(k) & 3 {
	case 0:
		return sf, cf
	case 1:
		return cf, -sf
	case 2:
		return -sf, -cf
	default:
		return -cf, sf
	}
}
