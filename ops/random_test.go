package ops

import (
	"math"
	"math/big"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

// Random123's kat_vectors for philox4x32 with 10 rounds.
func TestPhiloxKnownAnswers(t *testing.T) {
	cases := []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0}, [4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff},
			[4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0},
			[4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, Philox4x32(c.ctr, c.key), "ctr %08x key %08x", c.ctr, c.key)
	}
}

func TestUniformMapsAreExactAndInRange(t *testing.T) {
	assert.Equal(t, float32(0), Uniform32(0))
	assert.Equal(t, float32(1-1.0/(1<<24)), Uniform32(0xffffffff))
	assert.Equal(t, 0.0, Uniform64(0, 0))
	assert.Equal(t, 1-1.0/(1<<53), Uniform64(0xffffffff, 0xffffffff))
	assert.Equal(t, 0.5, Uniform64(0x80000000, 0))
}

// The f32 normals' radius r = sqrt(−2 log R32(w)) over the 2^32 words has the exact Rayleigh tail
// P(r > t) = e^{−t²/2} wherever the words can resolve it: R32 is non-increasing in w, so the number
// of words with r > t is found by bisection and compared with 2^32·e^{−t²/2}. It may differ by the
// count's granularity (one word) and by R32's rounding to float32 (2^-24 relative in the threshold,
// the same in the count). The largest radius is sqrt(64 log 2) ≈ 6.66: thresholds up to 6.5 (where
// 24-bit uniforms, capped at 5.77, would give no word at all instead of 16) are checked.
func TestRadius32Tail(t *testing.T) {
	assert.Equal(t, float32(1), Radius32(0))
	assert.Equal(t, float32(0x1p-32), Radius32(0xffffffff))
	assert.Equal(t, float32(0.5), Radius32(0x80000000))
	for w := uint32(0); w < 1<<20; w += 4093 { // monotone (non-increasing) in w
		require.LessOrEqual(t, Radius32(w+4093), Radius32(w))
	}
	assert.InDelta(t, math.Sqrt(64*math.Ln2), math.Sqrt(-2*math.Log(float64(Radius32(0xffffffff)))), 1e-12)
	const words = float64(1 << 32)
	for _, th := range []float64{0.5, 1, 2, 3, 4, 5, 5.5, 5.8, 6, 6.3, 6.5} {
		c := math.Exp(-th * th / 2)
		// Smallest w with R32(w) < c: every word from it on has r > th.
		w := sort.Search(1<<32, func(i int) bool { return float64(Radius32(uint32(i))) < c })
		count := words - float64(w)
		want := words * c
		tol := 1 + 0x1p-23*want
		assert.InDelta(t, want, count, tol, "P(r > %g): %g words of 2^32, want %.1f", th, count, want)
		if th > 5.8 {
			assert.Positive(t, count, "no word reaches r > %g", th)
		}
	}
}

func TestSinCos2PiMatchesLibm(t *testing.T) {
	for i := 0; i < 100000; i++ {
		u := float64(i) / 100000
		s, c := sinCos2Pi(u)
		ws, wc := math.Sincos(2 * math.Pi * u)
		require.InDelta(t, ws, s, 1e-15, "u=%v", u)
		require.InDelta(t, wc, c, 1e-15, "u=%v", u)
	}
	// Exact at the quarter turns, where 2π·u rounding would leave a residue.
	s, c := sinCos2Pi(0.5)
	assert.Equal(t, 0.0, s)
	assert.Equal(t, -1.0, c)
}

// boxMuller returns the pair (r cos 2πu2, r sin 2πu2), r = sqrt(−2 log v), in float64 with Go's
// math; v ∈ (0, 1]: the comparison of the accuracy tests.
func boxMuller(v, u2 float64) (float64, float64) {
	r := math.Sqrt(-2 * math.Log(v))
	s, c := sinCos2Pi(u2)
	return r * c, r * s
}

// sinCos2Pi returns sin(2πu), cos(2πu) for u ∈ [0, 1), reducing the argument by octant so that
// the result is accurate to a few ulp instead of carrying the rounding of 2π·u.
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

// ulp32 is the spacing of float32 values in the binade of |x| (2^-149 in the subnormal range).
func ulp32(x float64) float64 {
	x = math.Abs(x)
	if x < 0x1p-126 {
		return 0x1p-149
	}
	_, e := math.Frexp(x) // x = f·2^e, f ∈ [1/2, 1)
	return math.Ldexp(1, e-24)
}

// The f32 stream's sine and cosine over all 2^24 angles θ = 2π·U32(w), in float32 ulps of the
// exact values (sinCos2Pi in float64, within 1e-15): both within 1 ulp (measured 0.989, at θ near
// π/4 + kπ/2 where the value is 1/√2 and the polynomials' rounding errors are largest); exact 0
// and ±1 at the quarter turns. Dropping a term of either polynomial costs hundreds of ulp.
func TestSinCosTurn32Accuracy(t *testing.T) {
	var worstS, worstC float64
	var atS, atC uint32
	for i := uint32(0); i < 1<<24; i++ {
		w := i<<8 | i&0xff // the low byte of the word must not matter
		s, c := sinCosTurn32(w)
		rs, rc := sinCos2Pi(float64(Uniform32(w)))
		if es := math.Abs(float64(s)-rs) / ulp32(rs); es > worstS {
			worstS, atS = es, w
		}
		if ec := math.Abs(float64(c)-rc) / ulp32(rc); ec > worstC {
			worstC, atC = ec, w
		}
	}
	t.Logf("sin within %.4f ulp (worst at word %08x), cos within %.4f ulp (worst at %08x)", worstS, atS, worstC, atC)
	assert.LessOrEqual(t, worstS, 1.0, "sin: %.4f ulp at word %08x", worstS, atS)
	assert.LessOrEqual(t, worstC, 1.0, "cos: %.4f ulp at word %08x", worstC, atC)
	for q, want := range [][2]float32{{0, 1}, {1, 0}, {0, -1}, {-1, 0}} {
		s, c := sinCosTurn32(uint32(q) << 30)
		assert.Equal(t, want, [2]float32{s, c}, "quarter turn %d", q)
	}
}

// L = −2 log R32(w) over every value R32 takes — all of the 2^32 words: the integers 1 … 2^24 − 1
// and every float32 in [2^24, 2^32], times 2^-32 — within 0.9 float32 ulp of −2·math.Log
// (measured 0.858); L = 0 exactly where R32 = 1 (the words 0 … 128). With -short, every 97th value
// and the binade boundaries.
func TestNegTwoLogRadius32Accuracy(t *testing.T) {
	assert.Equal(t, float32(0), negTwoLogRadius32(0))
	assert.Equal(t, float32(0), negTwoLogRadius32(128))
	assert.Positive(t, negTwoLogRadius32(129))
	ys := []float32{}
	for e := 0; e <= 32; e++ { // binade boundaries and their neighbours
		y := float32(math.Ldexp(1, e))
		ys = append(ys, y, math.Nextafter32(y, 0), math.Nextafter32(y, 1e10))
		m := float32(math.Ldexp(math.Sqrt2, e)) // the reduction's switch between m and m/2
		ys = append(ys, m, math.Nextafter32(m, 0), math.Nextafter32(m, 1e10))
	}
	step := uint32(1)
	if testing.Short() {
		step = 97
	}
	lo, hi := math.Float32bits(1), math.Float32bits(0x1p32)
	type worst struct {
		ulp float64
		y   float32
	}
	check := func(w *worst, y float32) {
		if y < 1 || y > 0x1p32 || (y < 0x1p24 && y != float32(math.Trunc(float64(y)))) {
			return // not a value of 2^32·R32
		}
		ref := -2 * math.Log(float64(y)*0x1p-32)
		got := float64(negTwoLogScaled32(y))
		e := 0.0
		if ref != 0 {
			e = math.Abs(got-ref) / ulp32(ref)
		} else if got != 0 {
			e = math.Inf(1)
		}
		if e > w.ulp {
			*w = worst{e, y}
		}
	}
	parts := runtime.GOMAXPROCS(0)
	res := make([]worst, parts+1)
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for b := lo + uint32(p)*step; b <= hi; b += uint32(parts) * step {
				y := math.Float32frombits(b)
				if y >= 0x1p24 {
					check(&res[p], y)
				} else if y == float32(math.Trunc(float64(y))) {
					check(&res[p], y)
				}
			}
		}(p)
	}
	wg.Wait()
	for _, y := range ys {
		check(&res[parts], y)
	}
	w := res[0]
	for _, r := range res[1:] {
		if r.ulp > w.ulp {
			w = r
		}
	}
	t.Logf("−2 log R32 within %.4f ulp (worst at R32 = %g·2^-32)", w.ulp, w.y)
	assert.LessOrEqual(t, w.ulp, 0.9, "−2 log R32: %.4f ulp at R32 = %g·2^-32", w.ulp, w.y)
}

// The f32 normals against Box–Muller evaluated in float64 from the same R32 and angle uniform
// (boxMuller), in float32 ulps of the float64 value: within 3 ulp over 2·10^6 random pairs of words
// (measured 2.57 over 2·10^7: half the logarithm's error through the square root, the sine's or
// cosine's, and three roundings).
func TestNormalPair32Accuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 20260806))
	worst := 0.0
	for i := 0; i < 2000000; i++ {
		w1, w2 := r.Uint32(), r.Uint32()
		z0, z1 := normalPair32(w1, w2)
		e0, e1 := boxMuller(float64(Radius32(w1)), float64(Uniform32(w2)))
		for _, p := range [][2]float64{{z0, e0}, {z1, e1}} {
			if p[1] != 0 {
				worst = math.Max(worst, math.Abs(p[0]-p[1])/ulp32(p[1]))
			}
		}
	}
	t.Logf("f32 normals within %.3f ulp of float64 Box–Muller", worst)
	assert.LessOrEqual(t, worst, 3.0)
}

// Known answers of the f32 normals: the stream is defined bit for bit (kernels/philox.cuh computes
// the same), so a change to any constant or operation order shows here.
func TestNormalPair32KnownAnswers(t *testing.T) {
	for _, c := range []struct {
		w1, w2 uint32
		want   [2]uint32
	}{
		{0x00000000, 0x00000000, [2]uint32{0x00000000, 0x00000000}}, // 0, 0
		{0xffffffff, 0x12345678, [2]uint32{0x40c0360f, 0x40382f2b}}, // 6.006599, 2.877879
		{0x80000000, 0x40000000, [2]uint32{0x80000000, 0x3f96b55f}}, // -0, 1.17741
		{0x6627e8d5, 0xe169c58d, [2]uint32{0x3f3ce8b4, 0xbf303d32}}, // 0.73792577, -0.68843377
		{0xbc57ac4c, 0x9b00dbd8, [2]uint32{0xbfa49c48, 0xbf807c28}}, // -1.2860193, -1.003789
		{0x00000081, 0x20000000, [2]uint32{0x397fffff, 0x39800000}}, // 0.00024414061, 0.00024414063
	} {
		z0, z1 := normalPair32(c.w1, c.w2)
		assert.Equal(t, c.want, [2]uint32{math.Float32bits(float32(z0)), math.Float32bits(float32(z1))},
			"words %08x %08x", c.w1, c.w2)
	}
}

// refPrec is the precision of the references of the f64 stream's functions.
const refPrec = 192

func bigF(x float64) *big.Float { return new(big.Float).SetPrec(refPrec).SetFloat64(x) }

var (
	bigPi, _  = new(big.Float).SetPrec(refPrec).SetString("3.14159265358979323846264338327950288419716939937510582097494459230781640628620899862803482534211706798214808651328")
	bigLn2, _ = new(big.Float).SetPrec(refPrec).SetString("0.693147180559945309417232121458176568075500134360255254120680009493393621969694715605863326996418687542001481021")
)

// bigLog returns log y for y > 0 to refPrec bits: y = m·2^e with m ∈ [√½, √2], and
// log m = 2 atanh((m − 1)/(m + 1)) by its series.
func bigLog(y float64) *big.Float {
	fr, e := math.Frexp(y)
	m := 2 * fr
	e--
	if m > math.Sqrt2 {
		m /= 2
		e++
	}
	f := new(big.Float).SetPrec(refPrec).Sub(bigF(m), bigF(1))
	s := new(big.Float).SetPrec(refPrec).Quo(f, new(big.Float).SetPrec(refPrec).Add(bigF(2), f))
	s2 := new(big.Float).SetPrec(refPrec).Mul(s, s)
	sum := new(big.Float).SetPrec(refPrec).Set(s)
	p := new(big.Float).SetPrec(refPrec).Set(s)
	for k := 1; s.Sign() != 0; k++ {
		p.Mul(p, s2)
		term := new(big.Float).SetPrec(refPrec).Quo(p, bigF(float64(2*k+1)))
		sum.Add(sum, term)
		if term.MantExp(nil) < sum.MantExp(nil)-refPrec {
			break
		}
	}
	sum.Mul(sum, bigF(2))
	return sum.Add(sum, new(big.Float).SetPrec(refPrec).Mul(bigLn2, bigF(float64(e))))
}

// bigSinCosQuarter returns sin(πx/2) and cos(πx/2) for |x| ≤ 1/2 to refPrec bits (Taylor series).
func bigSinCosQuarter(x float64) (s, c *big.Float) {
	t := new(big.Float).SetPrec(refPrec).Mul(bigPi, bigF(x/2))
	t2 := new(big.Float).SetPrec(refPrec).Mul(t, t)
	s, c = new(big.Float).SetPrec(refPrec).Set(t), bigF(1)
	ts, tc := new(big.Float).SetPrec(refPrec).Set(t), bigF(1)
	for k := 1; t.Sign() != 0; k++ {
		tc.Mul(tc, t2).Quo(tc, bigF(float64((2*k-1)*(2*k)))).Neg(tc)
		c.Add(c, tc)
		ts.Mul(ts, t2).Quo(ts, bigF(float64((2*k)*(2*k+1)))).Neg(ts)
		s.Add(s, ts)
		if tc.MantExp(nil) < -refPrec-2 {
			break
		}
	}
	return s, c
}

// ulpsOff64 is |got − ref| in float64 ulps of ref's binade.
func ulpsOff64(got float64, ref *big.Float) float64 {
	r, _ := ref.Float64()
	d, _ := new(big.Float).SetPrec(refPrec).Sub(bigF(got), ref).Float64()
	_, e := math.Frexp(r)
	return math.Abs(d) / math.Ldexp(1, e-53)
}

// The f64 stream's L = −2 log v, v = 1 − U64 = y·2^-53, against a 192-bit logarithm on 2·10^5
// values of y (uniform integers in [1, 2^53], log-uniform ones, and the 2^20 values next to 1):
// within 1 float64 ulp (measured 0.861 on another sample of the same size, 0.810 on this one);
// L = 0 exactly at v = 1. With -short, 2·10^4.
func TestNegTwoLogRadius64Accuracy(t *testing.T) {
	assert.Equal(t, 0.0, negTwoLogRadius64(0, 0))
	assert.Equal(t, 0.0, negTwoLogRadius64(0, 0x7ff))
	r := rand.New(rand.NewPCG(64, 20260806))
	n := 200000
	if testing.Short() {
		n = 20000
	}
	worst, at := 0.0, 0.0
	for i := 0; i < n; i++ {
		var y float64
		switch i % 3 {
		case 0:
			y = float64(1 + r.Uint64N(1<<53))
		case 1:
			y = math.Max(1, math.Floor(math.Ldexp(1+r.Float64(), r.IntN(53))))
		default:
			y = float64(uint64(1)<<53 - r.Uint64N(1<<20))
		}
		got := negTwoLogScaled64(y)
		ref := bigLog(y)
		ref.Sub(ref, new(big.Float).SetPrec(refPrec).Mul(bigLn2, bigF(53))).Mul(ref, bigF(-2))
		if y == 1<<53 {
			require.Equal(t, 0.0, got)
			continue
		}
		if e := ulpsOff64(got, ref); e > worst {
			worst, at = e, y
		}
	}
	t.Logf("−2 log v within %.4f ulp (worst at v = %v·2^-53)", worst, at)
	assert.LessOrEqual(t, worst, 1.0, "−2 log v: %.4f ulp at v = %v·2^-53", worst, at)
}

// The f64 stream's sine and cosine against 192-bit Taylor series of the exactly reduced angle, on
// 2·10^5 random angles, a quarter of them within 2^-40 turn of a multiple of π/4: within 1.1
// float64 ulp (measured 1.0005, at cos(πx/2) ≈ 1/√2 for x ≈ ±1/2, where the roundings of y = x²,
// of Q(y) and of the last fma add up; the f32 stream's twin reaches 0.989); exact at the quarter
// turns. With -short, 2·10^4.
func TestSinCosTurn64Accuracy(t *testing.T) {
	for q, want := range [][2]float64{{0, 1}, {1, 0}, {0, -1}, {-1, 0}} {
		s, c := sinCosTurn64(uint32(q)<<30, 0x7ff)
		assert.Equal(t, want, [2]float64{s, c}, "quarter turn %d", q)
	}
	r := rand.New(rand.NewPCG(65, 20260806))
	n := 200000
	if testing.Short() {
		n = 20000
	}
	var worstS, worstC float64
	for i := 0; i < n; i++ {
		a, b := r.Uint32(), r.Uint32()
		if i%4 == 0 {
			a = a&0xe0000000 | a&0xff // within 2^-40 turn of an eighth of a turn
		}
		s, c := sinCosTurn64(a, b)
		// The reference reduces as the code does (exact), then evaluates to 192 bits.
		w := (uint64(a)<<32 | uint64(b)&^0x7ff) + 1<<61
		x := math.Float64frombits(0x3ff0000000000000|w>>10&0x000ffffffffffffe) - 1.5
		rs, rc := bigSinCosQuarter(x)
		neg := func(v *big.Float) *big.Float { return new(big.Float).SetPrec(refPrec).Neg(v) }
		es, ec := rs, rc
		switch w >> 62 {
		case 1:
			es, ec = rc, neg(rs)
		case 2:
			es, ec = neg(rs), neg(rc)
		case 3:
			es, ec = neg(rc), rs
		}
		if es.Sign() != 0 {
			worstS = math.Max(worstS, ulpsOff64(s, es))
		}
		if ec.Sign() != 0 {
			worstC = math.Max(worstC, ulpsOff64(c, ec))
		}
	}
	t.Logf("sin within %.4f ulp, cos within %.4f ulp", worstS, worstC)
	assert.LessOrEqual(t, worstS, 1.1)
	assert.LessOrEqual(t, worstC, 1.1)
}

// The f64 normals against Box–Muller with Go's math (itself within about 1–2 ulp): within 4 ulp
// on 10^6 random blocks.
func TestNormalPair64MatchesBoxMuller(t *testing.T) {
	r := rand.New(rand.NewPCG(66, 20260806))
	worst := 0.0
	for i := 0; i < 1000000; i++ {
		blk := [4]uint32{r.Uint32(), r.Uint32(), r.Uint32(), r.Uint32()}
		z0, z1 := normalPair64(blk)
		e0, e1 := boxMuller(1-Uniform64(blk[0], blk[1]), Uniform64(blk[2], blk[3]))
		for _, p := range [][2]float64{{z0, e0}, {z1, e1}} {
			if p[1] != 0 {
				_, e := math.Frexp(p[1])
				worst = math.Max(worst, math.Abs(p[0]-p[1])/math.Ldexp(1, e-53))
			}
		}
	}
	t.Logf("f64 normals within %.3f ulp of Box–Muller with Go's math", worst)
	assert.LessOrEqual(t, worst, 4.0)
}

// Known answers of the f64 normals (as for the f32 ones).
func TestNormalPair64KnownAnswers(t *testing.T) {
	for _, c := range []struct {
		blk  [4]uint32
		want [2]uint64
	}{
		{[4]uint32{0x00000000, 0x00000000, 0x00000000, 0x00000000}, [2]uint64{0x0000000000000000, 0x0000000000000000}}, // 0, 0
		{[4]uint32{0xffffffff, 0xffffffff, 0x12345678, 0x9abcdef0}, [2]uint64{0x401eebbd693b7bef, 0x400da12c96f905a7}}, // 7.73021473336756, 3.7036983294244297
		{[4]uint32{0x80000000, 0x00000000, 0x40000000, 0x00000000}, [2]uint64{0x8000000000000000, 0x3ff2d6abe44afc43}}, // -0, 1.1774100225154747
		{[4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}, [2]uint64{0xbfb7293e0b2c8f41, 0xbff01505191e05a9}}, // -0.09047305844120236, -1.0051318150657187
	} {
		z0, z1 := normalPair64(c.blk)
		assert.Equal(t, c.want, [2]uint64{math.Float64bits(z0), math.Float64bits(z1)}, "block %08x", c.blk)
	}
}

func fill(t *testing.T, b Backend, kind string, dt tensor.DType, chains, dim int, d Draw) []float64 {
	t.Helper()
	x, err := tensor.New(b.Device(), dt, chains, dim)
	require.NoError(t, err)
	switch kind {
	case "normal":
		require.NoError(t, b.Normal(x, d))
	case "uniform":
		require.NoError(t, b.Uniform(x, d))
	case "bits":
		require.NoError(t, b.PhiloxBits(x, d))
		f, _ := x.F32()
		out := make([]float64, len(f))
		for i, v := range f {
			out[i] = float64(math.Float32bits(v))
		}
		return out
	}
	out, err := x.Float64s()
	require.NoError(t, err)
	return out
}

func TestPhiloxBitsFollowTheLayout(t *testing.T) {
	d := Draw{Seed: 0x0123456789abcdef, Site: 0xfedcba9876543210, FirstChain: 5}
	got := fill(t, CPU(), "bits", tensor.F32, 3, 9, d)
	for i := 0; i < 3; i++ {
		for j := 0; j < 9; j++ {
			blk := Philox4x32([4]uint32{uint32(j / 4), uint32(5 + i), 0x76543210, 0xfedcba98},
				[2]uint32{0x89abcdef, 0x01234567})
			require.Equal(t, float64(blk[j%4]), got[i*9+j], "chain %d coord %d", i, j)
		}
	}
}

// ksStatistic returns the Kolmogorov–Smirnov distance between the sample and cdf.
func ksStatistic(xs []float64, cdf func(float64) float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := float64(len(s))
	d := 0.0
	for i, x := range s {
		f := cdf(x)
		d = math.Max(d, math.Max(f-float64(i)/n, float64(i+1)/n-f))
	}
	return d
}

func normalCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// Moments and KS of 10^6 draws. Thresholds: |mean| < 5 SE and |var − 1| < 5 SE are each exceeded
// with probability 5.7e-7 under the null; KS: sqrt(n)·D > 1.95 with probability 0.001. The draws
// are deterministic (fixed seeds), so the rates say how unlucky a seed would have to be.
func TestNormalMomentsAndKS(t *testing.T) {
	const chains, dim = 1000, 1000
	n := float64(chains * dim)
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		xs := fill(t, CPU(), "normal", dt, chains, dim, Draw{Seed: 20260101, Site: 3})
		var m, m2, m4 float64
		for _, x := range xs {
			m += x
		}
		m /= n
		for _, x := range xs {
			m2 += (x - m) * (x - m)
			m4 += math.Pow(x-m, 4)
		}
		v := m2 / (n - 1)
		assert.Less(t, math.Abs(m), 5/math.Sqrt(n), "%v mean %g", dt, m)
		assert.Less(t, math.Abs(v-1), 5*math.Sqrt(2/n), "%v variance %g", dt, v)
		assert.InDelta(t, 3, m4/n, 5*math.Sqrt(96/n), "%v fourth moment", dt)
		ks := ksStatistic(xs, normalCDF) * math.Sqrt(n)
		assert.Less(t, ks, 1.95, "%v KS sqrt(n)·D = %.3f", dt, ks)
	}
}

func TestUniformKSAndRange(t *testing.T) {
	const chains, dim = 1000, 1000
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		xs := fill(t, CPU(), "uniform", dt, chains, dim, Draw{Seed: 99, Site: 0})
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, x := range xs {
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
		assert.GreaterOrEqual(t, lo, 0.0)
		assert.Less(t, hi, 1.0)
		ks := ksStatistic(xs, func(x float64) float64 { return x }) * math.Sqrt(chains*dim)
		assert.Less(t, ks, 1.95, "%v KS sqrt(n)·D = %.3f (false-failure rate 0.001)", dt, ks)
	}
}

// Sample correlations between neighbouring chains, between sites and between seeds. Under
// independence sqrt(dim)·r is ≈ N(0, 1); the mean over P pairs of r has SE 1/sqrt(P·dim), and the
// largest |sqrt(dim)·r| of P = 999 pairs exceeds 5 with probability about 6e-4.
func TestStreamsAreUncorrelated(t *testing.T) {
	const chains, dim = 1000, 2000
	corr := func(a, b []float64) float64 {
		var sab, saa, sbb float64
		for k := range a {
			sab += a[k] * b[k]
			saa += a[k] * a[k]
			sbb += b[k] * b[k]
		}
		return sab / math.Sqrt(saa*sbb)
	}
	check := func(name string, x, y []float64) {
		var sum, worst float64
		for i := 0; i < chains-1; i++ {
			r := corr(x[i*dim:(i+1)*dim], y[(i+1)*dim:(i+2)*dim])
			sum += r
			worst = math.Max(worst, math.Abs(r)*math.Sqrt(dim))
		}
		mean := sum / (chains - 1)
		assert.Less(t, math.Abs(mean), 5/math.Sqrt(float64((chains-1)*dim)), "%s: mean correlation %g", name, mean)
		assert.Less(t, worst, 5.0, "%s: largest |sqrt(dim) r| = %.2f", name, worst)
	}
	a := fill(t, CPU(), "normal", tensor.F64, chains, dim, Draw{Seed: 1, Site: 0})
	check("chain i vs chain i+1", a, a)
	b := fill(t, CPU(), "normal", tensor.F64, chains, dim, Draw{Seed: 1, Site: 1})
	check("site 0 vs site 1", a, b)
	c := fill(t, CPU(), "normal", tensor.F64, chains, dim, Draw{Seed: 2, Site: 0})
	check("seed 1 vs seed 2", a, c)
}

// Chain 7's numbers do not depend on how many chains run, on where the batch starts, nor on the
// row width beyond the coordinates both widths have.
func TestBatchInvariance(t *testing.T) {
	for _, kind := range []string{"bits", "uniform", "normal"} {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
			if kind == "bits" && dt == tensor.F64 {
				continue
			}
			const dim = 7
			small := fill(t, CPU(), kind, dt, 8, dim, Draw{Seed: 42, Site: 9})
			large := fill(t, CPU(), kind, dt, 100000, dim, Draw{Seed: 42, Site: 9})
			alone := fill(t, CPU(), kind, dt, 1, dim, Draw{Seed: 42, Site: 9, FirstChain: 7})
			wide := fill(t, CPU(), kind, dt, 8, 13, Draw{Seed: 42, Site: 9})
			row := small[7*dim : 8*dim]
			assert.Equal(t, row, large[7*dim:8*dim], "%s %v: 8 vs 1e5 chains", kind, dt)
			assert.Equal(t, row, alone, "%s %v: FirstChain offset", kind, dt)
			assert.Equal(t, row, wide[7*13:7*13+dim], "%s %v: row width", kind, dt)
			// Several workers give the same numbers as one.
			one := fill(t, CPUWorkers(1), kind, dt, 100000, dim, Draw{Seed: 42, Site: 9})
			assert.Equal(t, large, one, "%s %v: worker count", kind, dt)
		}
	}
}

func TestFillRejectsBadArguments(t *testing.T) {
	b := CPU()
	x, _ := tensor.New(nil, tensor.F32, 4, 3)
	assert.ErrorContains(t, b.Normal(nil, Draw{}), "nil")
	v, _ := tensor.New(nil, tensor.F32, 12)
	assert.ErrorContains(t, b.Normal(v, Draw{}), "want (chains, dim)")
	assert.ErrorContains(t, b.Uniform(x, Draw{FirstChain: MaxChains - 2}), "below 2^32")
	assert.NoError(t, b.Uniform(x, Draw{FirstChain: MaxChains - 4}))
	f64, _ := tensor.New(nil, tensor.F64, 4, 3)
	assert.ErrorContains(t, b.PhiloxBits(f64, Draw{}), "want f32")
	x.Close()
	assert.ErrorIs(t, b.Normal(x, Draw{}), tensor.ErrClosed)
	empty, _ := tensor.New(nil, tensor.F64, 0, 3)
	assert.NoError(t, b.Normal(empty, Draw{}))
}
