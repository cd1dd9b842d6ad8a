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
//	                     r = sqrt(−2 log v); r·cos(2π u2) for even j, r·sin(2π u2) for odd j,
//	                     each step a float32 operation defined bit for bit (normalPair32)
//	normal    f64        lane j/2, v = 1 − U64(block[0], block[1]), u2 = U64(block[2], block[3]),
//	                     same Box–Muller pair, defined bit for bit in float64 (normalPair64)
//
// R32(w) = float32(2^32 − w) · 2^-32 ∈ (0, 1] takes all 32 bits of its word, so the f32 radius
// reaches sqrt(64 log 2) ≈ 6.66 (the tail beyond, of mass 2^-32, is collapsed onto it; a 24-bit
// uniform would cap it at 5.77, missing 2^-24 of the mass); the f64 radius reaches 8.57. The
// logarithm is always finite. The f32 and f64 streams of one draw differ: each is computed in its
// own precision. The normals' logarithm, sine and cosine are argument reductions by bit
// operations and polynomials in fused multiply-adds (docs/math.md §0, "f32 normals", "f64
// normals"): the kernels (kernels/philox.cuh) perform the same operations, so both give the same
// bits.

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

// normalPair32 is the f32 stream's pair of words (w1, w2): r·cos θ, r·sin θ with
// r = sqrtf(negTwoLogRadius32(w1)) and (sin θ, cos θ) = sinCosTurn32(w2), every operation in
// float32 exactly as the kernels' box_muller_f32 performs it (docs/math.md §0, "f32 normals"), so
// the two agree bit for bit. The square root and the products are IEEE operations, correctly
// rounded in both (float64's square root rounded to float32 is the float32 square root).
func normalPair32(w1, w2 uint32) (float64, float64) {
	r := float32(math.Sqrt(float64(negTwoLogRadius32(w1))))
	s, c := sinCosTurn32(w2)
	return float64(r * c), float64(r * s)
}

// The f32 stream's logarithm and sine/cosine (docs/math.md §0, "f32 normals"): argument
// reductions that are exact bit operations, then minimax polynomials evaluated with fma32 in a
// fixed order; kernels/philox.cuh holds the same constants and performs the same operations.
// Over every input, −2 log R32 is within 0.858 float32 ulp and sin, cos within 0.989 ulp of the
// exact values (TestNegTwoLogRadius32Accuracy, TestSinCosTurn32Accuracy).
const (
	// radiusMant0 is the bits of float32(√½): R32(w) = m·2^e with m ∈ [float32(√½), 2·float32(√½)).
	radiusMant0 = 0x3f3504f3
	// negTwoLn2Scaled is −2·ln 2·2^−23 rounded to float32 (relative error 2.7e-9): the exponent
	// enters as the exact float32 e·2^23.
	negTwoLn2Scaled float32 = -0x1.62e43p-23
	// halfPiHi + halfPiLo is π/2 to 48 bits: halfPiHi = float32(π/2), halfPiLo the float32 of
	// the rest.
	halfPiHi float32 = 0x1.921fb6p+00
	halfPiLo float32 = -0x1.777a5cp-25
)

// negTwoLogPoly: −2·log1p(−g/2) = g + g²·R(g) for g = 2 − 2m ∈ (−0.83, 0.59], R of degree 8
// (relative error of g + g²R below 4.2e-9 before rounding); coefficients c0 … c8.
var negTwoLogPoly = [...]float32{
	0x1.fffff8p-03, 0x1.55555p-04, 0x1.000428p-05, 0x1.99a402p-07, 0x1.54274ap-08,
	0x1.22709ap-09, 0x1.0f3762p-10, 0x1.084e18p-11, 0x1.383dbp-13,
}

// sinQuarterPoly: sin(πx/2) = x·(π/2 + y·P(y)), y = x², |x| ≤ 1/2, P of degree 2 (relative error
// below 3.8e-9 before rounding); cosQuarterPoly: cos(πx/2) = 1 + y·Q(y), Q of degree 3 (6.4e-11).
var (
	sinQuarterPoly = [...]float32{-0x1.4abbbep-01, 0x1.466004p-04, -0x1.2dc84cp-08}
	cosQuarterPoly = [...]float32{-0x1.3bd3ccp+00, 0x1.03c1dep-02, -0x1.55c5ep-06, 0x1.d9d57ep-11}
)

// negTwoLogRadius32 returns L = −2 log R32(w) ≥ 0 in float32 (0 for w = 0, 64 ln 2 at most).
func negTwoLogRadius32(w uint32) float32 {
	return negTwoLogScaled32(float32(uint64(1)<<32 - uint64(w)))
}

// negTwoLogScaled32 is −2 log(y·2^−32) for y = 2^32·R32(w) ∈ [1, 2^32] (the kernels'
// __ull2float_rn(2^32 − w)). With ix = bits(R32) − bits(√½) (one integer subtraction on y's bits),
// e·2^23 is ix with its low 23 bits cleared (arithmetically), and y's bits less (e + 31)·2^23 are
// the float32 2m, m ∈ [√½, √2): R32 = m·2^e exactly. Then g = 2 − 2m (exact),
// A = g + g·(g·R(g)) and L = e·2^23·(−2 ln 2·2^−23) + A, each product-sum one fma.
func negTwoLogScaled32(y float32) float32 {
	yb := math.Float32bits(y)
	e23 := int32(yb-(radiusMant0+32<<23)) &^ (1<<23 - 1)
	g := 2 - math.Float32frombits(yb-uint32(e23)-31<<23)
	c := negTwoLogPoly
	r := c[8]
	for k := 7; k >= 0; k-- {
		r = fma32(r, g, c[k])
	}
	a := fma32(g, float32(g*r), g)
	return fma32(float32(e23), negTwoLn2Scaled, a)
}

// sinCosTurn32 returns sin θ and cos θ, θ = 2π·U32(w), in float32. With a = w + 2^29 the angle
// in quarter turns is q + x: q = a >> 30 (mod 4) and x = z − 3/2 ∈ [−1/2, 1/2), z the float32 in
// [1, 2) whose fraction is bits 29..8 of a (both exact). sin(πx/2) and cos(πx/2) come from the
// polynomials; the quarter q swaps them (q odd) and sets the signs (sin θ negated for q ∈ {2, 3},
// cos θ for q ∈ {1, 2}) by flipping sign bits: the sine's slot is negated for q ∈ {1, 2}, the
// cosine's for q ∈ {2, 3}, and an odd q exchanges the slots.
func sinCosTurn32(w uint32) (s, c float32) {
	a := w + 1<<29
	x := math.Float32frombits(0x3f800000|a>>7&0x007ffffe) - 1.5
	y := float32(x * x)
	p := sinQuarterPoly
	t := fma32(fma32(p[2], y, p[1]), y, p[0])
	t = fma32(y, t, halfPiLo)
	sv := fma32(x, halfPiHi, float32(x*t))
	q := cosQuarterPoly
	u := fma32(fma32(fma32(q[3], y, q[2]), y, q[1]), y, q[0])
	cv := fma32(y, u, 1)
	odd := uint32(int32(a<<1) >> 31)
	sb := math.Float32bits(sv) ^ (a+1<<30)&(1<<31)
	cb := math.Float32bits(cv) ^ a&(1<<31)
	return math.Float32frombits(cb&odd | sb&^odd), math.Float32frombits(sb&odd | cb&^odd)
}

// normalPair64 is the f64 stream's pair of a block: r·cos θ, r·sin θ with
// r = sqrt(negTwoLogRadius64(blk[0], blk[1])) and (sin θ, cos θ) = sinCosTurn64(blk[2], blk[3]),
// every operation in float64 exactly as the kernels' box_muller_f64 performs it (docs/math.md §0,
// "f64 normals"), math.FMA for their fma, so the two agree bit for bit.
func normalPair64(blk [4]uint32) (float64, float64) {
	r := math.Sqrt(negTwoLogRadius64(blk[0], blk[1]))
	s, c := sinCosTurn64(blk[2], blk[3])
	return float64(r * c), float64(r * s)
}

// The f64 stream's logarithm and sine/cosine: the f32 stream's reductions and evaluation order in
// float64 (docs/math.md §0, "f64 normals"), with polynomials of higher degree; kernels/philox.cuh
// holds the same constants. Measured on samples of 2·10^5 against 192-bit references, −2 log v is
// within 0.86 float64 ulp and sin, cos within 1.0005 ulp (TestNegTwoLogRadius64Accuracy,
// TestSinCosTurn64Accuracy).
const (
	// radiusMant064 is the bits of float64(√½).
	radiusMant064 = 0x3fe6a09e667f3bcd
	// negTwoLn2Scaled64Hi + negTwoLn2Scaled64Lo is −2·ln 2·2^−52 to 106 bits.
	negTwoLn2Scaled64Hi = -0x1.62e42fefa39efp-52
	negTwoLn2Scaled64Lo = -0x1.abc9e3b39803fp-107
	// halfPi64Hi + halfPi64Lo is π/2 to 106 bits.
	halfPi64Hi = 0x1.921fb54442d18p+00
	halfPi64Lo = 0x1.1a62633145c07p-54
)

// negTwoLogPoly64: −2·log1p(−g/2) = g + g²·R(g), R of degree 20 (relative error of g + g²R below
// 1.4e-18 before rounding); sinQuarterPoly64: sin(πx/2) = x·(π/2 + y·P(y)), P of degree 6
// (2.1e-21); cosQuarterPoly64: cos(πx/2) = 1 + y·Q(y), Q of degree 6 (3.9e-20).
var (
	negTwoLogPoly64 = [...]float64{
		0x1p-02, 0x1.5555555555571p-04, 0x1.ffffffffffd4ap-06, 0x1.9999999994053p-07,
		0x1.5555555573474p-08, 0x1.24924927b2039p-09, 0x1.fffffff068876p-11, 0x1.c71c700bbfc28p-12,
		0x1.99999af22df73p-13, 0x1.745d5cd6b39a2p-14, 0x1.55557386076e2p-15, 0x1.3b0d30aa12403p-16,
		0x1.2489373f9e985p-17, 0x1.116cf8678609ep-18, 0x1.00d2e93f59a19p-19, 0x1.dc765288ca0cdp-21,
		0x1.b421de6cfb668p-22, 0x1.bbf46ca8d7ecbp-23, 0x1.016e535c91e6bp-23, 0x1.d2dfb3b3d7369p-25,
		0x1.8d03c9d31b9e8p-27,
	}
	sinQuarterPoly64 = [...]float64{
		-0x1.4abbce625be53p-01, 0x1.466bc6775aadap-04, -0x1.32d2cce62ad8ap-08, 0x1.50783485e633fp-13,
		-0x1.e3074b7130511p-19, 0x1.e8eee69acff3bp-25, -0x1.6c61119a0348p-31,
	}
	cosQuarterPoly64 = [...]float64{
		-0x1.3bd3cc9be45dep+00, 0x1.03c1f081b5aaep-02, -0x1.55d3c7e3c928p-06, 0x1.e1f5068367af4p-11,
		-0x1.a6d1ec7e09144p-16, 0x1.f9cc40aa915aep-22, -0x1.b263c29a5bf61p-28,
	}
)

// negTwoLogRadius64 returns L = −2 log v, v = 1 − U64(a, b) ∈ (0, 1], in float64 (0 for v = 1).
func negTwoLogRadius64(a, b uint32) float64 {
	return negTwoLogScaled64(float64(uint64(1)<<53 - (uint64(a)<<21 | uint64(b>>11))))
}

// negTwoLogScaled64 is −2 log(y·2^−53) for y = 2^53·v ∈ [1, 2^53] (an integer, exact): the
// reduction of negTwoLogScaled32 in float64 (e·2^52 from ix = bits(v) − bits(√½), 2m from y's
// bits less (e + 52)·2^52, g = 2 − 2m), then with c = −2 ln 2·2^−52 = c_hi + c_lo,
// t = g·(g·R(g)) + e·2^52·c_lo and L = e·2^52·c_hi + (g + t), each product-sum one fma: the
// low-order part of the exponent's term rides with the polynomial's small term, so that no
// rounding of a value of the size of L but the last is needed.
func negTwoLogScaled64(y float64) float64 {
	yb := math.Float64bits(y)
	e52 := int64(yb-(radiusMant064+53<<52)) &^ (1<<52 - 1)
	g := 2 - math.Float64frombits(yb-uint64(e52)-52<<52)
	c := negTwoLogPoly64
	r := c[len(c)-1]
	for k := len(c) - 2; k >= 0; k-- {
		r = math.FMA(r, g, c[k])
	}
	ef := float64(e52)
	t := math.FMA(g, float64(g*r), float64(ef*negTwoLn2Scaled64Lo))
	return math.FMA(ef, negTwoLn2Scaled64Hi, float64(g+t))
}

// sinCosTurn64 returns sin θ and cos θ, θ = 2π·U64(a, b), in float64: sinCosTurn32's reduction on
// the 53-bit angle placed at the top of a 64-bit word, A = (a << 32 | b with its low 11 bits
// cleared) + 2^61: q = A >> 62 and x = z − 3/2 with z's fraction bits 61..11 of A.
func sinCosTurn64(a, b uint32) (s, c float64) {
	w := (uint64(a)<<32 | uint64(b)&^0x7ff) + 1<<61
	x := math.Float64frombits(0x3ff0000000000000|w>>10&0x000ffffffffffffe) - 1.5
	y := float64(x * x)
	p := sinQuarterPoly64
	t := p[len(p)-1]
	for k := len(p) - 2; k >= 0; k-- {
		t = math.FMA(t, y, p[k])
	}
	t = math.FMA(y, t, halfPi64Lo)
	sv := math.FMA(x, halfPi64Hi, float64(x*t))
	q := cosQuarterPoly64
	u := q[len(q)-1]
	for k := len(q) - 2; k >= 0; k-- {
		u = math.FMA(u, y, q[k])
	}
	cv := math.FMA(y, u, 1)
	odd := uint64(int64(w<<1) >> 63)
	sb := math.Float64bits(sv) ^ (w+1<<62)&(1<<63)
	cb := math.Float64bits(cv) ^ w&(1<<63)
	return math.Float64frombits(cb&odd | sb&^odd), math.Float64frombits(sb&odd | cb&^odd)
}
