package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

// combineTerms returns k host terms of shape (n, d) and dtype dt holding small integers,
// T_k[i, j] = (i + 2j + 3k) mod 17 − 8, with dyadic coefficients C_k = (−1)^k 2^{−k}·(k + 1): every
// partial sum of Σ C_k T_k is exact in float32 (integers below 2^8 scaled by powers of two down to
// 2^-5), so the combination has a closed form that any correct backend reproduces bit for bit.
func combineTerms(t *testing.T, dt tensor.DType, n, d, k int) []Term {
	t.Helper()
	terms := make([]Term, k)
	for c := range terms {
		v := make([]float64, n*d)
		for i := 0; i < n; i++ {
			for j := 0; j < d; j++ {
				v[i*d+j] = combineValue(i, j, c)
			}
		}
		terms[c] = Term{T: mustHost(t, dt, v, n, d), C: combineCoeff(c)}
	}
	return terms
}

func combineValue(i, j, k int) float64 { return float64((i+2*j+3*k)%17 - 8) }

func combineCoeff(k int) float64 {
	return math.Pow(-1, float64(k)) * math.Ldexp(float64(k+1), -k)
}

// Combine without noise is the linear combination Σ_k C_k T_k, exactly (the closed form of
// combineTerms), for 1..MaxTerms terms and both dtypes.
func TestCombineIsTheLinearCombination(t *testing.T) {
	const n, d = 7, 5
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		for k := 1; k <= MaxTerms; k++ {
			terms := combineTerms(t, dt, n, d, k)
			dst, err := tensor.New(nil, dt, n, d)
			require.NoError(t, err)
			require.NoError(t, CPU().Combine(dst, terms, 0, Draw{Seed: 1}))
			got := vals(t, dst)
			for i := 0; i < n; i++ {
				for j := 0; j < d; j++ {
					want := 0.0
					for c := 0; c < k; c++ {
						want += combineCoeff(c) * combineValue(i, j, c)
					}
					assert.Equal(t, want, got[i*d+j], "%v, %d terms, element (%d, %d)", dt, k, i, j)
				}
			}
		}
	}
}

// dst may be any one of the terms: the result equals the one written to a separate tensor, and the
// other terms are untouched.
func TestCombineAliasing(t *testing.T) {
	const n, d = 9, 6
	draw := Draw{Seed: 77, Site: 5, FirstChain: 3}
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		for _, noise := range []float64{0, 0.3} {
			for k := 1; k <= MaxTerms; k++ {
				fresh, err := tensor.New(nil, dt, n, d)
				require.NoError(t, err)
				require.NoError(t, CPU().Combine(fresh, combineTerms(t, dt, n, d, k), noise, draw))
				want := vals(t, fresh)
				for alias := 0; alias < k; alias++ {
					terms := combineTerms(t, dt, n, d, k)
					require.NoError(t, CPU().Combine(terms[alias].T, terms, noise, draw))
					assert.Equal(t, want, vals(t, terms[alias].T), "%v noise %g, %d terms, dst = term %d", dt, noise, k, alias)
					for c := range terms {
						if c == alias {
							continue
						}
						orig := combineTerms(t, dt, n, d, k)[c].T
						assert.Equal(t, vals(t, orig), vals(t, terms[c].T), "term %d changed", c)
					}
				}
			}
		}
	}
}

// The noise term is noise·ξ with ξ exactly the numbers Normal writes for the draw (row i: chain
// FirstChain + i), in dst's precision: with zero coefficients dst = noise·ξ bit for bit (one
// rounding of the float64 product), and with terms dst − Σ C_k T_k = noise·ξ within the final
// rounding. Without noise the draw is irrelevant.
func TestCombineNoiseIsNormalTimesCoefficient(t *testing.T) {
	const n, d = 11, 7
	const noise = 0.37
	draw := Draw{Seed: 2024, Site: 1<<32 + 3, FirstChain: 1000}
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		xi, err := tensor.New(nil, dt, n, d)
		require.NoError(t, err)
		require.NoError(t, CPU().Normal(xi, draw))
		z := vals(t, xi)
		round := func(v float64) float64 {
			if dt == tensor.F32 {
				return float64(float32(v))
			}
			return v
		}

		zero := combineTerms(t, dt, n, d, 2)
		zero[0].C, zero[1].C = 0, 0
		dst, _ := tensor.New(nil, dt, n, d)
		require.NoError(t, CPU().Combine(dst, zero, noise, draw))
		got := vals(t, dst)
		for i := range got {
			assert.Equal(t, round(noise*z[i]), got[i], "%v element %d", dt, i)
		}

		terms := combineTerms(t, dt, n, d, 3)
		require.NoError(t, CPU().Combine(dst, terms, noise, draw))
		got = vals(t, dst)
		// The reference rounds the product noise·ξ and the sum in float64 (≤ 2^-53 of each), then,
		// for float32, the result once more (2^-24 of it).
		ulp := 2.5e-16
		if dt == tensor.F32 {
			ulp = 1.2e-7
		}
		for i := 0; i < n; i++ {
			for j := 0; j < d; j++ {
				lin := 0.0
				for c := range terms {
					lin += combineCoeff(c) * combineValue(i, j, c)
				}
				want := lin + noise*z[i*d+j]
				assert.InDelta(t, want, got[i*d+j], ulp*(math.Abs(lin)+math.Abs(noise*z[i*d+j])),
					"%v element (%d, %d)", dt, i, j)
			}
		}

		other, _ := tensor.New(nil, dt, n, d)
		require.NoError(t, CPU().Combine(dst, terms, 0, draw))
		require.NoError(t, CPU().Combine(other, terms, 0, Draw{Seed: 5, Site: 9}))
		assert.Equal(t, vals(t, dst), vals(t, other), "noise 0 must not depend on the draw")
	}
}

// A NaN in one element of one term poisons that element of dst only.
func TestCombineNaNStaysInItsElement(t *testing.T) {
	const n, d = 4, 3
	terms := combineTerms(t, tensor.F64, n, d, 3)
	v, _ := terms[1].T.F64()
	v[5] = math.NaN()
	dst, _ := tensor.New(nil, tensor.F64, n, d)
	require.NoError(t, CPU().Combine(dst, terms, 0.5, Draw{Seed: 3}))
	for i, g := range vals(t, dst) {
		assert.Equal(t, i == 5, math.IsNaN(g), "element %d = %v", i, g)
	}
}

func TestCombineRejectsBadInput(t *testing.T) {
	x := f64Tensor(t, make([]float64, 6), 3, 2)
	y := f64Tensor(t, make([]float64, 6), 3, 2)
	flat := f64Tensor(t, make([]float64, 6), 6)
	wrong := f64Tensor(t, make([]float64, 4), 2, 2)
	f32 := mustHost(t, tensor.F32, make([]float64, 6), 3, 2)
	closed := f64Tensor(t, make([]float64, 6), 3, 2)
	require.NoError(t, closed.Close())
	many := make([]Term, MaxTerms+1)
	for i := range many {
		many[i] = Term{T: y, C: 1}
	}
	cases := []struct {
		name, want string
		dst        *tensor.Tensor
		terms      []Term
		noise      float64
		draw       Draw
	}{
		{"nil destination", "destination", nil, []Term{{y, 1}}, 0, Draw{}},
		{"closed destination", "destination", closed, []Term{{y, 1}}, 0, Draw{}},
		{"rank-1 destination", "want (N, d)", flat, []Term{{flat, 1}}, 0, Draw{}},
		{"no terms", "0 terms", x, nil, 0, Draw{}},
		{"too many terms", fmt.Sprintf("%d terms", MaxTerms+1), x, many, 0, Draw{}},
		{"term shape", "term 1 has shape", x, []Term{{y, 1}, {wrong, 1}}, 0, Draw{}},
		{"term dtype", "term 0 is f32", x, []Term{{f32, 1}}, 0, Draw{}},
		{"nil term", "term 0 is nil", x, []Term{{nil, 1}}, 0, Draw{}},
		{"closed term", "term 1 is nil or closed", x, []Term{{y, 1}, {closed, 2}}, 0, Draw{}},
		{"NaN coefficient", "coefficient 1 = NaN", x, []Term{{y, 1}, {y, math.NaN()}}, 0, Draw{}},
		{"infinite coefficient", "coefficient 0 = +Inf", x, []Term{{y, math.Inf(1)}}, 0, Draw{}},
		{"negative noise", "noise coefficient -1", x, []Term{{y, 1}}, -1, Draw{}},
		{"NaN noise", "noise coefficient NaN", x, []Term{{y, 1}}, math.NaN(), Draw{}},
		{"infinite noise", "noise coefficient +Inf", x, []Term{{y, 1}}, math.Inf(1), Draw{}},
		{"chains beyond 2^32", "chain indices", x, []Term{{y, 1}}, 1, Draw{FirstChain: MaxChains - 2}},
	}
	for _, c := range cases {
		err := CPU().Combine(c.dst, c.terms, c.noise, c.draw)
		if assert.Error(t, err, c.name) {
			assert.Contains(t, err.Error(), "combine: ", c.name)
			assert.Contains(t, err.Error(), c.want, c.name)
		}
	}
	assert.Equal(t, make([]float64, 6), vals(t, x), "a rejected call must not write")
}
