package main

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
)

// The 1-D histogram's reference curve is the mixture's density: it integrates to one, and each
// covariance form of the same mixture gives the same curve.
func TestGMMDensity1D(t *testing.T) {
	w, mu, v := []float64{1, 3}, [][]float64{{-2}, {4}}, []float64{0.7, 2}
	iso, err := ops.NewGMM(ops.GMMSpec{Weights: w, Means: mu, Vars: v})
	require.NoError(t, err)
	full, err := ops.NewGMM(ops.GMMSpec{Weights: w, Means: mu, Covs: [][][]float64{{{v[0]}}, {{v[1]}}}})
	require.NoError(t, err)
	diag, err := ops.NewGMM(ops.GMMSpec{Weights: w, Means: mu, Diag: [][]float64{{v[0]}, {v[1]}}})
	require.NoError(t, err)
	f := gmmDensity1D(iso)
	lo, hi := gmmRange1D(iso)
	assert.InDelta(t, -2-4*math.Sqrt(0.7), lo, 1e-12)
	assert.InDelta(t, 4+4*math.Sqrt(2), hi, 1e-12)
	const n = 20000
	h, s := (hi-lo+20)/n, 0.0
	for i := 0; i <= n; i++ {
		x := lo - 10 + float64(i)*h
		c := 1.0
		if i == 0 || i == n {
			c = 0.5
		}
		s += c * f(x) * h
		assert.InDelta(t, f(x), gmmDensity1D(full)(x), 1e-14)
		assert.InDelta(t, f(x), gmmDensity1D(diag)(x), 1e-14)
	}
	assert.InDelta(t, 1, s, 1e-9)
	// At a mean, by hand: ¼ N(4; −2, 0.7) + ¾ N(4; 4, 2).
	want := 0.25*math.Exp(-36/1.4)/math.Sqrt(2*math.Pi*0.7) + 0.75/math.Sqrt(2*math.Pi*2)
	assert.InDelta(t, want, f(4), 1e-15)
}

func TestInterval1D(t *testing.T) {
	box, _ := ops.NewBox([]float64{-1}, []float64{3})
	ball, _ := ops.NewBall([]float64{2}, 0.5)
	poly, err := ops.NewPolytope([][]float64{{2}, {-1}, {1}}, []float64{4, 1, 5}) // x ≤ 2, x ≥ −1, x ≤ 5
	require.NoError(t, err)
	half, err := ops.NewPolytope([][]float64{{-3}}, []float64{6}) // x ≥ −2
	require.NoError(t, err)
	for _, c := range []struct {
		d      *ops.Domain
		lo, hi float64
	}{{box, -1, 3}, {ball, 1.5, 2.5}, {poly, -1, 2}, {half, -2, math.Inf(1)}} {
		lo, hi := interval1D(c.d)
		assert.Equal(t, c.lo, lo)
		assert.Equal(t, c.hi, hi)
	}
}
