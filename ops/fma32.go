package ops

import "math"

// fma32 returns a·b + c rounded once to float32 (round to nearest, ties to even): IEEE 754's
// fusedMultiplyAdd in binary32, the kernels' fmaf, which Go does not have.
//
// The product of two float32 values has at most 48 significant bits, so p = a·b is exact in
// float64, and s = p + c rounded to float64 is the nearest float64 to the exact x = a·b + c.
// Rounding s to float32 then rounds x correctly unless s lies exactly halfway between two
// float32 values while x does not: every such midpoint is itself a float64, so no midpoint lies
// strictly between x and s (it would be nearer to x than s is), and x rounds like s except at a
// tie. At a tie the exact error of the addition, x − s (TwoSum, exact in float64 since no
// intermediate can overflow or underflow for float32 operands), says on which side x lies; s is
// moved one float64 step that way, which leaves it on x's side of the midpoint and inside the
// same float32 rounding interval.
func fma32(a, b, c float32) float32 {
	p := float64(float64(a) * float64(b)) // exact; the conversion forbids fusing with the sum
	s := p + float64(c)
	bits := math.Float64bits(s)
	// Fast path: s in float32's normal range, where rounding drops the low 29 of float64's 52
	// fraction bits, and those bits are not the tie pattern 1 followed by 28 zeros.
	if exp := bits >> 52 & 0x7ff; exp >= 1023-126 && exp <= 1023+127 && bits&(1<<29-1) != 1<<28 {
		return float32(s)
	}
	if math.IsNaN(s) || math.IsInf(s, 0) || !midpoint32(s) {
		return float32(s)
	}
	bb := s - p
	err := (p - (s - bb)) + (float64(c) - bb) // x − s exactly
	switch {
	case err > 0:
		s = math.Nextafter(s, math.Inf(1))
	case err < 0:
		s = math.Nextafter(s, math.Inf(-1))
	}
	return float32(s)
}

// midpoint32 reports whether the finite float64 s lies exactly halfway between two consecutive
// float32 values, the largest finite float32 and the overflow threshold 2^128 − 2^103 included.
func midpoint32(s float64) bool {
	const overflowMid = 0x1.ffffffp127 // halfway between MaxFloat32 and 2^128
	if math.Abs(s) >= overflowMid {
		return math.Abs(s) == overflowMid
	}
	f := float32(s)
	if float64(f) == s {
		return false
	}
	g := math.Nextafter32(f, float32(math.Copysign(math.Inf(1), s-float64(f))))
	// Both differences are exact: s, f and g lie within one float32 step of each other.
	return s-float64(f) == float64(g)-s
}
