package solvers

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// rotatedGaussian is N(μ, Σ) in d = 3 with a full covariance (eigenvalues 2, 0.3, 10⁻⁴ along a
// rotated basis): the closed forms must handle U ≠ I and a thin direction.
func rotatedGaussian(t testing.TB) (target.GMM, []float64, [][]float64) {
	c, s := math.Cos(0.7), math.Sin(0.7)
	u := [][]float64{{c, -s, 0}, {s * 0.6, c * 0.6, -0.8}, {s * 0.8, c * 0.8, 0.6}} // orthonormal columns
	lam := []float64{2, 0.3, 1e-4}
	cov := make([][]float64, 3)
	for r := range cov {
		cov[r] = make([]float64, 3)
		for q := range cov[r] {
			for j := range lam {
				cov[r][q] += u[r][j] * lam[j] * u[q][j]
			}
		}
	}
	mean := []float64{1, -2, 0.5}
	return gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{mean}, Covs: [][][]float64{cov}}), mean, cov
}

func philoxNormals(t testing.TB, n, d int, seed uint64) []float64 {
	t.Helper()
	x, err := tensor.New(tensor.CPU(), tensor.F64, n, d)
	require.NoError(t, err)
	defer x.Close()
	require.NoError(t, ops.CPU().Normal(x, ops.Draw{Seed: seed}))
	v, err := x.Float64s()
	require.NoError(t, err)
	return v
}

// The closed-form Φ_t solves the ODE of the library's own velocity: its central difference in t
// equals v(Φ_t, t) = (D(Φ_t; t) − Φ_t)/(1 − t), D from the mixture's denoiser (ops.GMMScore), at
// t = 0.1, 0.5, 0.9; Φ_0 is the identity and Φ_1(x0) − μ has covariance Σ (Σ^{1/2} squared).
func TestRFGaussianFlowSolvesTheODE(t *testing.T) {
	tg, mean, cov := rotatedGaussian(t)
	f, err := NewRFGaussianFlow(tg.Mixture)
	require.NoError(t, err)
	const n, d = 8, 3
	x0 := philoxNormals(t, n, d, 3)
	phi := func(tt float64) []float64 {
		out := make([]float64, len(x0))
		require.NoError(t, f.Map(out, x0, tt))
		return out
	}
	assert.InDeltaSlice(t, x0, phi(0), 1e-15)
	for _, tt := range []float64{0.1, 0.5, 0.9} {
		const h = 1e-5
		plus, minus, x := phi(tt+h), phi(tt-h), phi(tt)
		xt, err := tensor.FromFloat64s(tensor.F64, x, n, d)
		require.NoError(t, err)
		den, err := tensor.New(tensor.CPU(), tensor.F64, n, d)
		require.NoError(t, err)
		require.NoError(t, tg.Evaluate(ops.CPU(), ops.ScoreOutputs{Denoiser: den}, xt, rfNoise(tt)))
		ds, err := den.Float64s()
		require.NoError(t, err)
		for i := range x {
			v := (ds[i] - x[i]) / (1 - tt)
			assert.InDelta(t, v, (plus[i]-minus[i])/(2*h), 1e-7*(1+math.Abs(v)), "t = %g, element %d", tt, i)
		}
		xt.Close()
		den.Close()
	}
	// Σ^{1/2}: map the unit vectors at t = 1; the images minus μ are the columns of Σ^{1/2}, whose
	// square is Σ.
	e := []float64{1, 0, 0, 0, 1, 0, 0, 0, 1}
	root := make([]float64, 9)
	require.NoError(t, f.Map(root, e, 1))
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			s := 0.0
			for k := 0; k < 3; k++ {
				s += (root[k*3+i] - mean[i]) * (root[k*3+j] - mean[j])
			}
			assert.InDelta(t, cov[i][j], s, 1e-12, "(Σ^{1/2})² − Σ at (%d, %d)", i, j)
		}
	}
	assert.Error(t, f.Map(root, e, 1.5))
	assert.Error(t, f.Map(root[:8], e, 1))
	two := gmmTarget(t, ops.GMMSpec{Weights: []float64{1, 1}, Means: [][]float64{{0}, {1}}, Vars: []float64{1, 1}})
	_, err = NewRFGaussianFlow(two.Mixture)
	assert.Error(t, err)
}

// RK4 on the low-dimension grid converges at order four to the closed form of what it computes —
// the exact flow to t_{K−1} followed by the last-step limit D(·; t_{K−1}), that is
// μ + U diag(t λ/σ_t(λ)) Uᵀ x0 at t = t_{K−1} — (error ratios under step doubling within 35% of
// 16) and, with K = 1024 and δ = 10⁻⁷, matches the flow map Φ_1 = μ + Σ^{1/2} x0 to 10⁻⁸, the thin
// direction (λ = 10⁻⁴) included.
func TestRFReferenceRK4MatchesTheGaussianFlowMap(t *testing.T) {
	tg, _, _ := rotatedGaussian(t)
	f, err := NewRFGaussianFlow(tg.Mixture)
	require.NoError(t, err)
	const n, d, delta = 16, 3, 1e-4
	x0 := philoxNormals(t, n, d, 4)
	var errs []float64
	for _, k := range []int{40, 80, 160} {
		grid, err := LowDimGrid(k, delta)
		require.NoError(t, err)
		got := make([]float64, len(x0))
		require.NoError(t, RFReferenceRK4(got, tg, x0, grid))
		tl := grid[k-1]
		gain := make([]float64, d)
		for j, l := range f.lambda {
			gain[j] = tl * l / math.Sqrt((1-tl)*(1-tl)+tl*tl*l)
		}
		want := make([]float64, len(x0))
		require.NoError(t, f.apply("test", want, x0, 1, gain))
		e := 0.0
		for i := range got {
			e = math.Max(e, math.Abs(got[i]-want[i]))
		}
		errs = append(errs, e)
	}
	for i := 1; i < len(errs); i++ {
		assert.InDelta(t, 16, errs[i-1]/errs[i], 16*0.35, "max errors %v", errs)
	}
	grid, err := LowDimGrid(1024, 1e-7)
	require.NoError(t, err)
	got, want := make([]float64, len(x0)), make([]float64, len(x0))
	require.NoError(t, RFReferenceRK4(got, tg, x0, grid))
	require.NoError(t, f.Map(want, x0, 1))
	assert.InDeltaSlice(t, want, got, 1e-8)

	assert.Error(t, RFReferenceRK4(got, tg, x0, []float64{0, 1}))
	assert.Error(t, RFReferenceRK4(got[:5], tg, x0, grid))
	assert.Error(t, RFReferenceRK4(got, nil, x0, grid))
}

// EulerMap is what RectifiedFlow computes (10⁻¹² relative), on both grids; the gain along a thin
// direction (λ = ε² = 10⁻⁸) is (1 − δ) ε²/δ within 0.1% (the steps before the last shrink it
// by exactly 1 − t_{K−1} = δ, as for ε = 0, and the last multiplies by t λ/σ_t²) when the last interior time is 1 − δ with δ ≫ ε (uniform
// grid, δ = 1/K), and within 5% of ε when δ = 10⁻⁶ ≪ ε on the low-dimension grid with K = 256.
func TestRFEulerMapIsTheSampler(t *testing.T) {
	const eps = 1e-4
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{1, -0.5, 0, 0}}, Diag: [][]float64{{1, 0.25, eps * eps, eps * eps}}})
	f, err := NewRFGaussianFlow(tg.Mixture)
	require.NoError(t, err)
	for _, cfg := range []RFConfig{{Grid: RFGridUniform, Steps: 16}, {Grid: RFGridLowDim, Steps: 256, TMin: 1e-6}} {
		cfg.Seed, cfg.Trajectory = 9, true
		res, err := RectifiedFlow(ops.CPU(), tg, 32, tensor.F64, cfg)
		require.NoError(t, err)
		tr, err := res.Trace.Float64s()
		require.NoError(t, err)
		x, err := res.Samples.Float64s()
		require.NoError(t, err)
		res.Close()
		grid, err := RFTimes(RFConfig{Grid: cfg.Grid, Steps: cfg.Steps, TMin: cfg.TMin})
		require.NoError(t, err)
		want := make([]float64, len(x))
		require.NoError(t, f.EulerMap(want, tr[:len(x)], grid))
		for i := range x {
			assert.InDelta(t, want[i], x[i], 1e-12*(1+math.Abs(want[i])), "%s: element %d", cfg.Grid, i)
		}
		c, err := f.EulerGains(grid)
		require.NoError(t, err)
		if cfg.Grid == RFGridUniform {
			delta := 1 / float64(cfg.Steps)
			assert.InEpsilon(t, (1-delta)*eps*eps/delta, c[3], 1e-3, "uniform: gain of the thin direction")
		} else {
			assert.InDelta(t, 1, c[3]/eps, 0.05, "low-dimension grid: shrink factor of the thin direction")
		}
	}
	_, err = f.EulerGains([]float64{0, 0.5})
	assert.Error(t, err)
}
