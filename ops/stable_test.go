package ops

import (
	"fmt"
	"math"
	"math/cmplx"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

// stableFill draws a (rows, dim) Stable fill on the CPU and returns its values and clamp count.
func stableFill(t *testing.T, dt tensor.DType, rows, dim int, s StableSpec, d Draw) ([]float64, int64) {
	t.Helper()
	x, err := tensor.New(nil, dt, rows, dim)
	require.NoError(t, err)
	n, err := CPU().Stable(x, s, d)
	require.NoError(t, err)
	return vals(t, x), n
}

// stableCF is the characteristic function E e^{itX} of the scalar laws (StableSpec's table).
func stableCF(alpha, beta, t float64) complex128 {
	if t == 0 {
		return 1
	}
	at, sg := math.Abs(t), math.Copysign(1, t)
	if alpha == 1 {
		return cmplx.Exp(complex(-at, -at*beta*2/math.Pi*sg*math.Log(at)))
	}
	p := math.Pow(at, alpha)
	return cmplx.Exp(complex(-p, p*beta*sg*math.Tan(math.Pi*alpha/2)))
}

// ecfCheck compares the empirical characteristic function of xs at t with phi (a function of t),
// real and imaginary parts separately, each within z standard errors of the mean of n draws:
// Var cos(tX) = (1 + Re φ(2t))/2 − (Re φ(t))², Var sin(tX) = (1 − Re φ(2t))/2 − (Im φ(t))².
func ecfCheck(t *testing.T, name string, xs []float64, phi func(float64) complex128, ts []float64, z float64) {
	t.Helper()
	n := float64(len(xs))
	for _, u := range ts {
		var re, im float64
		for _, x := range xs {
			s, c := math.Sincos(u * x)
			re += c
			im += s
		}
		re, im = re/n, im/n
		want, want2 := phi(u), phi(2*u)
		seRe := math.Sqrt(math.Max((1+real(want2))/2-real(want)*real(want), 1e-12) / n)
		seIm := math.Sqrt(math.Max((1-real(want2))/2-imag(want)*imag(want), 1e-12) / n)
		assert.InDelta(t, real(want), re, z*seRe, "%s t=%g: Re φ", name, u)
		assert.InDelta(t, imag(want), im, z*seIm, "%s t=%g: Im φ", name, u)
	}
}

func TestStableRejectsBadArguments(t *testing.T) {
	x, _ := tensor.New(nil, tensor.F64, 3, 2)
	nan := math.NaN()
	for _, c := range []struct {
		spec StableSpec
		want string
	}{
		{StableSpec{Kind: 0, Alpha: 1}, "unknown kind"},
		{StableSpec{Kind: StableSymmetric, Alpha: 0}, "(0, 2]"},
		{StableSpec{Kind: StableSymmetric, Alpha: 2.01}, "(0, 2]"},
		{StableSpec{Kind: StableSymmetric, Alpha: nan}, "(0, 2]"},
		{StableSpec{Kind: StableSymmetric, Alpha: -1}, "(0, 2]"},
		{StableSpec{Kind: StableSkewed, Alpha: 1.5, Beta: 1.1}, "[−1, 1]"},
		{StableSpec{Kind: StableSkewed, Alpha: 1.5, Beta: nan}, "[−1, 1]"},
		{StableSpec{Kind: StableSymmetric, Alpha: 1.5, Beta: 0.5}, "only the skewed kind"},
		{StableSpec{Kind: StablePositive, Alpha: 1}, "(0, 1)"},
		{StableSpec{Kind: StablePositive, Alpha: 1.5}, "(0, 1)"},
		{StableSpec{Kind: StableIsotropic, Alpha: 2.5}, "(0, 2]"},
		{StableSpec{Kind: StableSymmetric, Alpha: 1, Clamp: -1}, "clamp"},
		{StableSpec{Kind: StableSymmetric, Alpha: 1, Clamp: nan}, "clamp"},
		{StableSpec{Kind: StableSymmetric, Alpha: 1, Clamp: math.Inf(1)}, "clamp"},
	} {
		_, err := CPU().Stable(x, c.spec, Draw{})
		assert.ErrorContains(t, err, c.want, "%+v", c.spec)
	}
	ok := StableSpec{Kind: StableIsotropic, Alpha: 1}
	_, err := CPU().Stable(x, ok, Draw{Site: math.MaxUint64})
	assert.ErrorContains(t, err, "Site+1")
	_, err = CPU().Stable(nil, ok, Draw{})
	assert.ErrorContains(t, err, "nil")
	_, err = CPU().Stable(x, ok, Draw{FirstChain: MaxChains - 2})
	assert.ErrorContains(t, err, "2^32")
	empty, _ := tensor.New(nil, tensor.F32, 0, 4)
	_, err = CPU().Stable(empty, ok, Draw{})
	assert.NoError(t, err)
}

// The empirical characteristic function of 2^17 draws against the closed forms of StableSpec at
// five t, real and imaginary parts, for the symmetric law at α ∈ {0.5, 1, 1.5, 1.8, 2} and the
// skewed law at five (α, β) (the α = 1 branch among them), in both streams for some. Each
// comparison allows 5 standard errors (two-sided false-failure rate 5.7e-7; about 200 comparisons,
// so ≈ 1e-4 for the whole test).
func TestStableCharacteristicFunction(t *testing.T) {
	const rows, dim = 256, 512
	ts := []float64{-2, -0.7, 0.3, 1, 2.5}
	cases := []struct {
		kind        StableKind
		alpha, beta float64
		dt          tensor.DType
	}{
		{StableSymmetric, 0.5, 0, tensor.F64},
		{StableSymmetric, 1, 0, tensor.F64},
		{StableSymmetric, 1.5, 0, tensor.F64},
		{StableSymmetric, 1.8, 0, tensor.F64},
		{StableSymmetric, 2, 0, tensor.F64},
		{StableSymmetric, 0.5, 0, tensor.F32},
		{StableSymmetric, 1.8, 0, tensor.F32},
		{StableSkewed, 0.5, 0.7, tensor.F64},
		{StableSkewed, 0.8, -1, tensor.F64},
		{StableSkewed, 1, -0.5, tensor.F64},
		{StableSkewed, 1.2, 0.3, tensor.F32},
		{StableSkewed, 1.5, 1, tensor.F64},
	}
	for i, c := range cases {
		name := fmt.Sprintf("%v α=%g β=%g %v", c.kind, c.alpha, c.beta, c.dt)
		xs, _ := stableFill(t, c.dt, rows, dim, StableSpec{Kind: c.kind, Alpha: c.alpha, Beta: c.beta},
			Draw{Seed: 1234, Site: uint64(i)})
		for _, x := range xs {
			require.False(t, math.IsNaN(x) || math.IsInf(x, 0), "%s: non-finite value %g", name, x)
		}
		ecfCheck(t, name, xs, func(u float64) complex128 { return stableCF(c.alpha, c.beta, u) }, ts, 5)
	}
}

// The empirical Laplace transform of 2^17 positive stable draws against e^{−s^a} at five s for
// a ∈ {0.25, 0.5, 0.75, 0.9}: the standard error of the mean of e^{−sA} is
// sqrt((e^{−(2s)^a} − e^{−2 s^a}) / n); 5 SE each (false-failure rate 5.7e-7 per comparison).
// Every draw is positive and finite.
func TestStablePositiveLaplaceTransform(t *testing.T) {
	const rows, dim = 256, 512
	n := float64(rows * dim)
	for i, a := range []float64{0.25, 0.5, 0.75, 0.9} {
		for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
			xs, _ := stableFill(t, dt, rows, dim, StableSpec{Kind: StablePositive, Alpha: a}, Draw{Seed: 77, Site: uint64(i)})
			for _, x := range xs {
				require.True(t, x > 0 && !math.IsInf(x, 0), "a=%g %v: draw %g", a, dt, x)
			}
			for _, s := range []float64{0.1, 0.5, 1, 2, 5} {
				sum := 0.0
				for _, x := range xs {
					sum += math.Exp(-s * x)
				}
				want := math.Exp(-math.Pow(s, a))
				se := math.Sqrt((math.Exp(-math.Pow(2*s, a)) - want*want) / n)
				assert.InDelta(t, want, sum/n, 5*se, "a=%g %v s=%g", a, dt, s)
			}
		}
	}
}

// Isotropic vectors in R³: the empirical characteristic function at t of two norms and four
// directions each — e1, e2, (1,1,1)/√3, (0.6, −0.8, 0) — against exp(−(‖t‖²/2)^{α/2}), which
// depends on ‖t‖ only: each direction agreeing with the same value is the rotation invariance.
// 2^17 vectors, 5 SE per comparison (false-failure rate 5.7e-7 each, 64 comparisons).
func TestStableIsotropicCharacteristicFunction(t *testing.T) {
	const rows, dim = 1 << 17, 3
	dirs := [][3]float64{{1, 0, 0}, {0, 1, 0}, {1 / math.Sqrt(3), 1 / math.Sqrt(3), 1 / math.Sqrt(3)}, {0.6, -0.8, 0}}
	for i, alpha := range []float64{0.8, 1.5} {
		for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
			xs, _ := stableFill(t, dt, rows, dim, StableSpec{Kind: StableIsotropic, Alpha: alpha}, Draw{Seed: 5, Site: uint64(10 * i)})
			for _, dir := range dirs {
				proj := make([]float64, rows)
				for r := range proj {
					proj[r] = dir[0]*xs[3*r] + dir[1]*xs[3*r+1] + dir[2]*xs[3*r+2]
				}
				// E e^{i u⟨dir, X⟩} at t = u·dir.
				phi := func(u float64) complex128 { return complex(math.Exp(-math.Pow(u*u/2, alpha/2)), 0) }
				ecfCheck(t, fmt.Sprintf("isotropic α=%g %v direction %v", alpha, dt, dir), proj, phi, []float64{0.6, -1.7}, 5)
			}
		}
	}
}

// At α = 2 the scalar symmetric law is N(0, 2): variance within 5 SE (SE = 2·sqrt(2/n)), KS
// against the N(0, 2) CDF with sqrt(n)·D < 1.95 (false-failure rate 0.001). The isotropic law at
// α = 2 is N(0, I): exactly the normals of the draw.
func TestStableAlphaTwoIsGaussian(t *testing.T) {
	const rows, dim = 512, 512
	n := float64(rows * dim)
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		xs, _ := stableFill(t, dt, rows, dim, StableSpec{Kind: StableSymmetric, Alpha: 2}, Draw{Seed: 8, Site: 1})
		m2 := 0.0
		for _, x := range xs {
			m2 += x * x
		}
		assert.InDelta(t, 2, m2/n, 5*2*math.Sqrt(2/n), "%v variance", dt)
		ks := ksStatistic(xs, func(x float64) float64 { return normalCDF(x / math.Sqrt2) }) * math.Sqrt(n)
		assert.Less(t, ks, 1.95, "%v KS sqrt(n)·D = %.3f", dt, ks)

		iso, _ := stableFill(t, dt, 50, 7, StableSpec{Kind: StableIsotropic, Alpha: 2}, Draw{Seed: 8, Site: 3, FirstChain: 4})
		assert.Equal(t, fill(t, CPU(), "normal", dt, 50, 7, Draw{Seed: 8, Site: 3, FirstChain: 4}), iso, "%v", dt)
	}
}

// The draw layout of StableSpec/Stable, checked against the Uniform and Normal fills:
// α = 1 symmetric is tan(π t) with t the midpoint angle of uniform column 2j; isotropic rows are
// √A·G with G the Normal fill at the site and A element 0 of a positive fill of index α/2 at
// site+1; the skewed kind at β = 0 is the symmetric one, and the positive kind is
// cos(πα/2)^{1/α} times the skewed kind at β = 1.
func TestStableDrawLayout(t *testing.T) {
	const rows, dim = 40, 9
	d := Draw{Seed: 31, Site: 17, FirstChain: 3}
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		bits, rtol := 53, 1e-13
		if dt == tensor.F32 {
			bits, rtol = 24, 2.5e-7 // the reference's float64 value rounded once, vs float64 tan
		}
		cauchy, _ := stableFill(t, dt, rows, dim, StableSpec{Kind: StableSymmetric, Alpha: 1}, d)
		u := fill(t, CPU(), "uniform", dt, rows, 2*dim, d)
		for i := 0; i < rows; i++ {
			for j := 0; j < dim; j++ {
				want := math.Tan(math.Pi * (u[i*2*dim+2*j] - 0.5 + math.Ldexp(1, -bits-1)))
				assert.InDelta(t, want, cauchy[i*dim+j], rtol*math.Abs(want), "%v (%d, %d)", dt, i, j)
			}
		}

		iso, _ := stableFill(t, dt, rows, dim, StableSpec{Kind: StableIsotropic, Alpha: 1.2}, d)
		g := fill(t, CPU(), "normal", dt, rows, dim, d)
		a, _ := stableFill(t, dt, rows, 1, StableSpec{Kind: StablePositive, Alpha: 0.6}, Draw{Seed: d.Seed, Site: d.Site + 1, FirstChain: d.FirstChain})
		for i := 0; i < rows; i++ {
			for j := 0; j < dim; j++ {
				want := math.Sqrt(a[i]) * g[i*dim+j]
				if dt == tensor.F64 {
					assert.Equal(t, want, iso[i*dim+j], "(%d, %d)", i, j)
				} else {
					// A rounded to float32 in the positive fill: √A moves by ≤ 2^-25 relative.
					assert.InDelta(t, want, iso[i*dim+j], 2.5e-7*math.Abs(want), "f32 (%d, %d)", i, j)
				}
			}
		}

		sym, _ := stableFill(t, dt, rows, dim, StableSpec{Kind: StableSymmetric, Alpha: 1.3}, d)
		skew0, _ := stableFill(t, dt, rows, dim, StableSpec{Kind: StableSkewed, Alpha: 1.3}, d)
		assert.Equal(t, sym, skew0, "%v skewed with β = 0", dt)

		pos, _ := stableFill(t, dt, rows, dim, StableSpec{Kind: StablePositive, Alpha: 0.7}, d)
		skew1, _ := stableFill(t, dt, rows, dim, StableSpec{Kind: StableSkewed, Alpha: 0.7, Beta: 1}, d)
		scale := math.Pow(math.Cos(math.Pi*0.7/2), 1/0.7)
		for k := range pos {
			assert.InDelta(t, pos[k], scale*skew1[k], 1e-13*pos[k]+2*rtol*pos[k], "%v element %d", dt, k)
		}
	}
}

// Row i is chain FirstChain+i whatever the batch, and the worker count changes nothing.
func TestStableBatchInvariance(t *testing.T) {
	for _, s := range []StableSpec{{Kind: StableSkewed, Alpha: 1.4, Beta: -0.3}, {Kind: StableIsotropic, Alpha: 0.9}} {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
			big, _ := stableFill(t, dt, 3000, 5, s, Draw{Seed: 2, Site: 6})
			alone, _ := stableFill(t, dt, 1, 5, s, Draw{Seed: 2, Site: 6, FirstChain: 2500})
			assert.Equal(t, big[2500*5:2501*5], alone, "%v %v", s.Kind, dt)
			x, _ := tensor.New(nil, dt, 3000, 5)
			_, err := CPUWorkers(1).Stable(x, s, Draw{Seed: 2, Site: 6})
			require.NoError(t, err)
			assert.Equal(t, big, vals(t, x), "%v %v: one worker", s.Kind, dt)
		}
	}
}

// With a clamp, the count is exactly the number of stored values beyond it (counted on the host
// from the unclamped fill), those values become ±Clamp and the others are unchanged.
func TestStableClampCounts(t *testing.T) {
	const rows, dim = 300, 40
	for _, s := range []StableSpec{
		{Kind: StableSymmetric, Alpha: 0.8, Clamp: 5},
		{Kind: StableSkewed, Alpha: 1.5, Beta: 0.9, Clamp: 2.5},
		{Kind: StablePositive, Alpha: 0.5, Clamp: 3},
		{Kind: StableIsotropic, Alpha: 1.1, Clamp: 2},
		{Kind: StableSymmetric, Alpha: 1.9, Clamp: 0.1},
	} {
		for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
			d := Draw{Seed: 90, Site: 4}
			free := s
			free.Clamp = 0
			raw, n0 := stableFill(t, dt, rows, dim, free, d)
			require.Zero(t, n0)
			got, n := stableFill(t, dt, rows, dim, s, d)
			c := s.Clamp
			if dt == tensor.F32 {
				c = float64(float32(c))
			}
			var want int64
			for k, v := range raw {
				switch {
				case v > s.Clamp:
					want++
					assert.Equal(t, c, got[k])
				case v < -s.Clamp:
					want++
					assert.Equal(t, -c, got[k])
				default:
					assert.Equal(t, v, got[k])
				}
			}
			assert.Equal(t, want, n, "%v α=%g %v", s.Kind, s.Alpha, dt)
			assert.Positive(t, n, "%v α=%g %v: the case must clamp something", s.Kind, s.Alpha, dt)
		}
	}
}

// sinCosPi agrees with math.Sincos(π x) where that is accurate, and is exact at the multiples of
// ½ and accurate near the zeros, where π x would carry the rounding of π.
func TestSinCosPi(t *testing.T) {
	for i := -4000; i <= 4000; i++ {
		x := float64(i) / 997
		s, c := sinCosPi(x)
		ws, wc := math.Sincos(math.Pi * x)
		require.InDelta(t, ws, s, 4e-15, "x=%g", x)
		require.InDelta(t, wc, c, 4e-15, "x=%g", x)
	}
	for k := -6; k <= 6; k++ {
		s, c := sinCosPi(float64(k) / 2)
		if k%2 == 0 {
			assert.Zero(t, s, "sin(π·%d/2)", k)
		} else {
			assert.Zero(t, c, "cos(π·%d/2)", k)
		}
	}
	// sin(π(1 − δ)) = sin(πδ) ≈ πδ to full relative precision.
	for _, delta := range []float64{1e-3, 1e-9, 0x1p-40} {
		x := 1 - delta
		s, _ := sinCosPi(x)
		assert.InEpsilon(t, math.Sin(math.Pi*(1-x)), s, 1e-15) // 1 − x is exact
		y := 0.5 - delta
		_, c := sinCosPi(y)
		assert.InEpsilon(t, math.Sin(math.Pi*(0.5-y)), c, 1e-15)
	}
}
