package ops

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// exactFMA32 is a·b + c computed exactly with math/big and rounded once to float32 (nearest,
// ties to even: big.Float's Float32 rounds the exact value, subnormals and overflow included).
func exactFMA32(a, b, c float32) float32 {
	const prec = 1200 // the exact sum spans at most 2^256 … 2^-298
	x := new(big.Float).SetPrec(prec).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetPrec(prec).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetPrec(prec).SetFloat64(float64(c)))
	if x.Sign() == 0 {
		// An exact zero: IEEE gives +0 unless both a·b and c are −0 (or the sum of −0s).
		return float32(float64(a)*float64(b) + float64(c))
	}
	f, _ := x.Float32()
	return f
}

func requireFMA32(t *testing.T, a, b, c float32) {
	t.Helper()
	want := exactFMA32(a, b, c)
	got := fma32(a, b, c)
	require.Equal(t, math.Float32bits(want), math.Float32bits(got),
		"fma32(%x, %x, %x) = %x, want %x", a, b, c, got, want)
}

// randomFloat32 draws any finite float32 (every bit pattern but Inf and NaN), so that subnormals,
// tiny and huge exponents appear.
func randomFloat32(r *rand.Rand) float32 {
	for {
		f := math.Float32frombits(r.Uint32())
		if !math.IsInf(float64(f), 0) && !math.IsNaN(float64(f)) {
			return f
		}
	}
}

// fma32 against an exact computation on random operands of every magnitude, on operands whose
// product and addend overlap (cancellation, the common case of a polynomial step), on sums that
// land in the subnormal range and near the overflow threshold, and on the cases where rounding a
// float64 sum to float32 rounds twice: the exact sum lies just off a float32 midpoint, closer to
// it than half a float64 ulp, on either side, with even and odd neighbours.
func TestFMA32IsCorrectlyRounded(t *testing.T) {
	r := rand.New(rand.NewPCG(20260806, 1))
	for i := 0; i < 200000; i++ { // any bit patterns
		requireFMA32(t, randomFloat32(r), randomFloat32(r), randomFloat32(r))
	}
	scaled := func(lo, hi int) float32 { // a random 24-bit significand at a random exponent in [lo, hi]
		m := float64(1<<23 | r.IntN(1<<23))
		return float32(math.Ldexp(m, lo+r.IntN(hi-lo+1)-23)) * float32(1-2*r.IntN(2))
	}
	for i := 0; i < 200000; i++ { // overlapping magnitudes, cancellation
		a, b := scaled(-3, 3), scaled(-3, 3)
		c := -float32(a*b) + scaled(-30, -20)
		requireFMA32(t, a, b, c)
		requireFMA32(t, a, b, scaled(-8, 8))
	}
	for i := 0; i < 100000; i++ { // subnormal and overflowing results
		requireFMA32(t, scaled(-80, -60), scaled(-80, -60), scaled(-149, -120))
		requireFMA32(t, scaled(-75, -70), scaled(-75, -70), -scaled(-149, -145))
		requireFMA32(t, scaled(63, 64), scaled(63, 64), scaled(100, 127))
		requireFMA32(t, scaled(60, 64), scaled(60, 64), -scaled(126, 127))
	}
	// Double-rounding cases. (1) c carries the result's leading bits and a·b = ±h·(1 − k²·2^-46)
	// with h half an ulp of c: x = c ± h ∓ tiny sits just inside a midpoint, and the float64 sum
	// is the midpoint itself.
	twice := 0
	for i := 0; i < 100000; i++ {
		c := scaled(-100, 100)
		ulp := math.Nextafter32(float32(math.Abs(float64(c))), float32(math.Inf(1))) - float32(math.Abs(float64(c)))
		k := float32(1 + r.IntN(1<<8)) // k²·2^-46 below half a float64 ulp of x (2^-30 of an ulp of c)
		a := 1 + k*0x1p-23
		b := ulp / 2 * (1 - k*0x1p-23)
		if r.IntN(2) == 0 {
			b = -b
		}
		requireFMA32(t, a, b, c)
		if float32(float64(a)*float64(b)+float64(c)) != exactFMA32(a, b, c) {
			twice++
		}
	}
	// Half of the c have an odd last bit, where the naive rounding is wrong.
	require.Greater(t, twice, 40000, "the double-rounding cases were not reached")
	// (2) a·b is itself a float32 midpoint (25 significant bits) and c a tiny nudge either way.
	for i := 0; i < 100000; i++ {
		a := float32(1 + float64(1+2*r.IntN(1<<10))*0x1p-12)
		b := float32(1 + float64(1+2*r.IntN(1<<10))*0x1p-13)
		tiny := scaled(-90, -60)
		requireFMA32(t, a, b, tiny)
		requireFMA32(t, -a, b, tiny)
	}
	// Fixed cases: exact midpoints (ties to even), the overflow threshold, subnormal midpoints,
	// exact zeros.
	for _, c := range [][3]float32{
		{1 + 0x1p-12, 1 + 0x1p-12, 0x1p-80},  // 1 + 2^-11 + 2^-24 + tiny: up
		{1 + 0x1p-12, 1 + 0x1p-12, -0x1p-80}, // down
		{1 + 0x1p-12, 1 + 0x1p-12, 0},        // a midpoint: ties to even
		{math.MaxFloat32, 1, 0x1p103},        // the overflow threshold: to +Inf
		{math.MaxFloat32, 1, math.Nextafter32(0x1p103, 0)},
		{0x1p-75, 0x1p-75, 0}, // 2^-150: halfway to the smallest subnormal, to 0
		{0x1p-75, 0x1p-75, 0x1p-160},
		{0x1p-75, -0x1p-75, 0},
		{3, 5, -15},
		{float32(math.Copysign(0, -1)), 1, float32(math.Copysign(0, -1))},
	} {
		requireFMA32(t, c[0], c[1], c[2])
	}
}

// The naive float32(float64(a)*float64(b) + float64(c)) rounds twice; this pins an input where it
// does, so that the test above is known to reach the case fma32 corrects.
func TestFMA32CorrectsDoubleRounding(t *testing.T) {
	a, b, c := float32(1+0x1p-23), float32(0x1p-24*(1-0x1p-23)), float32(1+0x1p-23)
	naive := float32(float64(a)*float64(b) + float64(c))
	require.Equal(t, exactFMA32(a, b, c), fma32(a, b, c))
	require.NotEqual(t, exactFMA32(a, b, c), naive)
}
