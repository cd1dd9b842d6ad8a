package solvers

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// gfdmMix2 is the 2-D test mixture: three well-separated modes, unequal weights, diagonal
// covariances of different shapes.
var gfdmMix2 = ops.GMMSpec{Weights: []float64{0.2, 0.5, 0.3}, Means: [][]float64{{-4, 0}, {3, 3}, {2, -4}},
	Diag: [][]float64{{0.5, 0.2}, {0.3, 0.6}, {0.25, 0.25}}}

// modeCheck compares samples with the mixture spec (diagonal covariances, well-separated modes):
// the fraction of samples nearest each mode against its weight, and each mode's sample mean and
// variances against μ_k and the diagonal. Every statistic is compared in units of its Monte-Carlo
// standard error (binomial for the weights; s/√m for a mean; s²√(2/m) for a variance) with the
// bound z; it returns the largest |error|/SE seen.
func modeCheck(t *testing.T, name string, rows [][]float64, spec ops.GMMSpec, z float64) float64 {
	t.Helper()
	groups := byNearestMean(rows, spec.Means)
	total := 0.0
	for _, w := range spec.Weights {
		total += w
	}
	worst := 0.0
	nf := float64(len(rows))
	for k, g := range groups {
		w := spec.Weights[k] / total
		m := float64(len(g))
		se := math.Sqrt(w * (1 - w) / nf)
		e := math.Abs(m/nf-w) / se
		worst = math.Max(worst, e)
		assert.Less(t, e, z, "%s mode %d: weight %.4f, want %.4f (SE %.4f)", name, k, m/nf, w, se)
		mean, cov := meanCov(g)
		for j := range mean {
			v := spec.Diag[k][j]
			e := math.Abs(mean[j]-spec.Means[k][j]) / math.Sqrt(v/m)
			worst = math.Max(worst, e)
			assert.Less(t, e, z, "%s mode %d coord %d: mean %.4f, want %g", name, k, j, mean[j], spec.Means[k][j])
			e = math.Abs(cov[j][j]-v) / (v * math.Sqrt(2/m))
			worst = math.Max(worst, e)
			assert.Less(t, e, z, "%s mode %d coord %d: variance %.4f, want %g", name, k, j, cov[j][j], v)
		}
	}
	return worst
}

func gfdmRun(t testing.TB, cfg GFDMConfig, spec ops.GMMSpec, solver string, n, steps int, seed uint64) *Result {
	t.Helper()
	p := newGFDM(t, cfg)
	res, err := GFDMSample(ops.CPU(), TargetDenoiser(gmmTarget(t, spec)), n, tensor.F64,
		GFDMSampleConfig{Process: p, Solver: solver, Steps: steps, Seed: seed})
	require.NoError(t, err)
	return res
}

// TestGFDMSampleModes: samples of the 2-D mixture by both solvers, H ∈ {0.3, 0.5, 0.7}, K = 3,
// FVE, match the mode weights, means and variances within 4.5 Monte-Carlo standard errors (each
// of the 27 statistics per run falsely fails with probability 7e-6 were the samples exact).
// Euler–Maruyama needs smaller steps than Heun (1500 against 200): at H = 0.3 with 200 steps the
// stiff direction GᵀΣ⁻¹G makes it blow up (variances 10× too large), with 600 one variance is
// still 4.5 SE off.
func TestGFDMSampleModes(t *testing.T) {
	if testing.Short() {
		t.Skip("sampling runs of every solver")
	}
	const n = 4000
	for _, solver := range GFDMSolvers() {
		steps := 200
		if solver == GFDMSolverSDE {
			steps = 1500
		}
		for _, h := range []float64{0.3, 0.5, 0.7} {
			name := fmt.Sprintf("%s H=%g", solver, h)
			res := gfdmRun(t, GFDMConfig{Base: GFDMBaseFVE, Hurst: h, K: 3}, gfdmMix2, solver, n, steps, 11)
			worst := modeCheck(t, name, hostRows(t, res.Samples), gfdmMix2, 4.5)
			t.Logf("%s: worst |error|/SE %.2f, σ̃(t_min) = %.2g, evals %d", name, worst, res.Sigmas[len(res.Sigmas)-1], res.ScoreEvals/n)
			res.Close()
		}
	}
}

// gfdmMix10 is the 10-D test mixture: three modes 8 to 10 apart, unequal weights, diagonal
// variances between 0.2 and 1.5 that differ by coordinate and mode.
var gfdmMix10 = func() ops.GMMSpec {
	s := ops.GMMSpec{Weights: []float64{0.25, 0.45, 0.3}}
	for k := 0; k < 3; k++ {
		m, v := make([]float64, 10), make([]float64, 10)
		for j := range m {
			m[j] = 2.5 * math.Cos(2*math.Pi*float64(k)/3+0.7*float64(j))
			v[j] = 0.2 + 1.3*(0.5+0.5*math.Sin(1.9*float64(j)+2.3*float64(k)))
		}
		s.Means, s.Diag = append(s.Means, m), append(s.Diag, v)
	}
	return s
}()

// TestGFDMSampleModes10D: in 10-D (K = 3, FVE, H = 0.3, Heun with 500 steps; Euler–Maruyama, K = 2,
// H = 0.7, with 600), the 63 statistics of modeCheck (3 weights, 30 means, 30 variances) match
// the mixture within 4.5 Monte-Carlo standard errors: each falsely fails with probability 7e-6
// were the samples exact, the run with 4e-4. The step counts keep the discretisation bias well
// inside one standard error (a variance's is 4% of it here). Measured with 20000 samples, the
// mean ratio of sample to true variance is 0.991 for Heun with 500 steps and 1.009 for
// Euler–Maruyama with 600; Heun with 200 steps gives 0.969 (K = 3, H = 0.3) and 0.93 (K = 2,
// H = 0.7), which a larger run sees. Under -short the run has 1000 samples instead of 3000 (the
// same bound; the standard errors are larger).
func TestGFDMSampleModes10D(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 1000
	}
	den := TargetDenoiser(gmmTarget(t, gfdmMix10))
	for _, c := range []struct {
		solver string
		cfg    GFDMConfig
		steps  int
	}{
		{GFDMSolverODE, GFDMConfig{Base: GFDMBaseFVE, Hurst: 0.3, K: 3}, 500},
		{GFDMSolverSDE, GFDMConfig{Base: GFDMBaseFVE, Hurst: 0.7, K: 2}, 600},
	} {
		p := newGFDM(t, c.cfg)
		res, err := GFDMSample(ops.CPU(), den, n, tensor.F64, GFDMSampleConfig{Process: p, Solver: c.solver, Steps: c.steps, Seed: 13})
		require.NoError(t, err)
		name := fmt.Sprintf("10-D %s K=%d H=%g", c.solver, c.cfg.K, c.cfg.Hurst)
		worst := modeCheck(t, name, hostRows(t, res.Samples), gfdmMix10, 4.5)
		t.Logf("%s: worst |error|/SE %.2f over 63 statistics (n = %d, %d steps)", name, worst, n, c.steps)
		res.Close()
	}
}

// TestGFDMSampleExponential: the exponential integrator of the reverse SDE reaches with 200 steps
// the accuracy Euler–Maruyama needs 1500 for (TestGFDMSampleModes: 2-D mixture, K = 3, FVE,
// H = 0.3, n = 4000): every statistic of modeCheck within 4.5 standard errors. Measured, the
// largest |error|/SE: exponential, 200 steps, seeds 1, 2, 3, 11: 2.4, 2.9, 3.3, 3.1 (150 steps:
// 3.6; 100: 4.7; 50: 8.6); Euler–Maruyama, seed 11: 200 steps 426 (the stiff direction blows up),
// 600 steps 4.5, 1500 steps 2.1. The Euler–Maruyama run with the same 200 steps is checked to be
// far off, so the comparison sees the difference. Under -short n = 1500.
func TestGFDMSampleExponential(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 1500
	}
	const steps = 200
	den := TargetDenoiser(gmmTarget(t, gfdmMix2))
	p := newGFDM(t, GFDMConfig{Base: GFDMBaseFVE, Hurst: 0.3, K: 3})
	run := func(exp bool) *Result {
		res, err := GFDMSample(ops.CPU(), den, n, tensor.F64, GFDMSampleConfig{Process: p, Solver: GFDMSolverSDE, Steps: steps, Seed: 11, Exponential: exp})
		require.NoError(t, err)
		return res
	}
	res := run(true)
	worst := modeCheck(t, "exponential", hostRows(t, res.Samples), gfdmMix2, 4.5)
	require.Equal(t, int64(steps*n), res.ScoreEvals, "one evaluation per step and chain, as Euler–Maruyama")
	res.Close()
	em := run(false)
	emWorst := modeCheck(t, "euler-maruyama", hostRows(t, em.Samples), gfdmMix2, math.Inf(1)) // measured only
	em.Close()
	t.Logf("%d steps: largest |error|/SE exponential %.2f, Euler–Maruyama %.3g", steps, worst, emWorst)
	assert.Greater(t, emWorst, 10.0, "Euler–Maruyama with %d steps should be far off", steps)
}

// TestGFDMSampleFVP: the variance-preserving base, whose mean map φ(t) changes along the run
// (under FVE it is constant, so a step that took φ at the wrong end of the interval would go
// unseen there): samples of the 2-D mixture by the three solvers (Heun 200 steps, the exponential
// integrator 200, Euler–Maruyama 3000), K = 3, H = 0.3, match every statistic of modeCheck within
// 4.5 Monte-Carlo standard errors. Measured, the largest |error|/SE over seeds 17, 18, 19: Heun
// 3.2, 2.0, 2.7; exponential 3.3, 3.8, 2.7; Euler–Maruyama with 1500 steps 4.3, 4.4, 1.8 (its
// bias is near the bound, hence 3000: 2.0, 2.5). Under -short n = 1500.
func TestGFDMSampleFVP(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 1500
	}
	den := TargetDenoiser(gmmTarget(t, gfdmMix2))
	p := newGFDM(t, GFDMConfig{Base: GFDMBaseFVP, Hurst: 0.3, K: 3})
	for _, c := range []struct {
		name   string
		solver string
		exp    bool
		steps  int
	}{{"ode", GFDMSolverODE, false, 200}, {"sde-exponential", GFDMSolverSDE, true, 200}, {"sde", GFDMSolverSDE, false, 3000}} {
		res, err := GFDMSample(ops.CPU(), den, n, tensor.F64, GFDMSampleConfig{Process: p, Solver: c.solver, Exponential: c.exp, Steps: c.steps, Seed: 17})
		require.NoError(t, err)
		worst := modeCheck(t, "fvp "+c.name, hostRows(t, res.Samples), gfdmMix2, 4.5)
		t.Logf("fvp %s, %d steps: worst |error|/SE %.2f", c.name, c.steps, worst)
		res.Close()
	}
}

// TestGFDMSampleVELimit: with K = 1, γ = 0, ω = 1 the driver is Brownian motion and FVE is the VE
// model with σ(t)² = σ_min²((σ_max/σ_min)^{2t} − 1). Its samples (the paths differ: the augmented
// SDE carries y = W) must match the data as the VE model's own samples (Heun on the EDM grid,
// same seed and budget) do, and the two runs' mode weights agree within 4.5 standard errors of
// their difference.
func TestGFDMSampleVELimit(t *testing.T) {
	const n = 4000
	p := gfdmDriver(t, GFDMConfig{Base: GFDMBaseFVE}, []float64{0}, []float64{1})
	den := TargetDenoiser(gmmTarget(t, gfdmMix2))
	ve, err := Diffusion(ops.CPU(), den, n, tensor.F64, DiffusionConfig{Method: MethodHeun, Steps: 100, Seed: 5})
	require.NoError(t, err)
	defer ve.Close()
	veRows := hostRows(t, ve.Samples)
	t.Logf("VE heun: worst |error|/SE %.2f", modeCheck(t, "ve heun", veRows, gfdmMix2, 4.5))
	for _, solver := range GFDMSolvers() {
		steps := 200
		if solver == GFDMSolverSDE {
			steps = 400
		}
		res, err := GFDMSample(ops.CPU(), den, n, tensor.F64, GFDMSampleConfig{Process: p, Solver: solver, Steps: steps, Seed: 5})
		require.NoError(t, err)
		rows := hostRows(t, res.Samples)
		worst := modeCheck(t, "ve-limit "+solver, rows, gfdmMix2, 4.5)
		a, b := byNearestMean(rows, gfdmMix2.Means), byNearestMean(veRows, gfdmMix2.Means)
		for k := range a {
			w := gfdmMix2.Weights[k]
			se := math.Sqrt(2 * w * (1 - w) / n)
			diff := math.Abs(float64(len(a[k])-len(b[k]))) / n
			assert.Less(t, diff/se, 4.5, "%s mode %d: weight %.4f, VE model %.4f", solver, k, float64(len(a[k]))/n, float64(len(b[k]))/n)
			worst = math.Max(worst, diff/se)
		}
		t.Logf("VE limit, %s: worst |error|/SE against the data and the VE model %.2f (t_min %g)", solver, worst, p.DefaultTMin())
		res.Close()
	}
}

// TestGFDMSampleErrors: bad input gives errors that say what is wrong, never panics.
func TestGFDMSampleErrors(t *testing.T) {
	den := TargetDenoiser(gmmTarget(t, gfdmMix2))
	p := newGFDM(t, GFDMConfig{Base: GFDMBaseFVE, Hurst: 0.3, K: 2})
	p5 := newGFDM(t, GFDMConfig{Base: GFDMBaseFVE, Hurst: 0.3, K: 5})
	ok := GFDMSampleConfig{Process: p, Solver: GFDMSolverODE, Steps: 10}
	with := func(f func(*GFDMSampleConfig)) GFDMSampleConfig { c := ok; f(&c); return c }
	for _, c := range []struct {
		name string
		b    ops.Backend
		den  Denoiser
		n    int
		cfg  GFDMSampleConfig
		want string
	}{
		{"nil backend", nil, den, 4, ok, "nil backend"},
		{"nil denoiser", ops.CPU(), nil, 4, ok, "nil denoiser"},
		{"no process", ops.CPU(), den, 4, with(func(c *GFDMSampleConfig) { c.Process = nil }), "no forward process"},
		{"solver", ops.CPU(), den, 4, with(func(c *GFDMSampleConfig) { c.Solver = "rk4" }), `solver "rk4"`},
		{"steps 0", ops.CPU(), den, 4, with(func(c *GFDMSampleConfig) { c.Steps = 0 }), "steps = 0"},
		{"steps < 0", ops.CPU(), den, 4, with(func(c *GFDMSampleConfig) { c.Steps = -3 }), "steps = -3"},
		{"n = 0", ops.CPU(), den, 0, ok, "chains n = 0"},
		{"t min NaN", ops.CPU(), den, 4, with(func(c *GFDMSampleConfig) { c.TMin = math.NaN() }), "t min = NaN"},
		{"t min 1", ops.CPU(), den, 4, with(func(c *GFDMSampleConfig) { c.TMin = 1 }), "t min = 1"},
		{"t min singular", ops.CPU(), den, 4, with(func(c *GFDMSampleConfig) { c.Process, c.TMin = p5, 1e-3 }), "too close to singular"},
		{"exponential ode", ops.CPU(), den, 4, with(func(c *GFDMSampleConfig) { c.Exponential = true }), "exponential integrator"},
	} {
		var err error
		require.NotPanics(t, func() { _, err = GFDMSample(c.b, c.den, c.n, tensor.F64, c.cfg) }, c.name)
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
	}
	// the process's own validation: H ∉ (0, 1), K < 1, γ_max ≤ 1, non-finite values
	for _, cfg := range []GFDMConfig{
		{Base: GFDMBaseFVE, Hurst: 0, K: 2}, {Base: GFDMBaseFVE, Hurst: 1, K: 2}, {Base: GFDMBaseFVE, Hurst: math.NaN(), K: 2},
		{Base: GFDMBaseFVE, Hurst: 0.5, K: 0}, {Base: GFDMBaseFVE, Hurst: 0.5, K: -1},
		{Base: GFDMBaseFVE, Hurst: 0.5, K: 2, GammaMax: 1}, {Base: GFDMBaseFVE, Hurst: 0.5, K: 2, GammaMax: 0.5},
		{Base: GFDMBaseFVE, Hurst: 0.5, K: 2, GammaMax: math.Inf(1)}, {Base: GFDMBaseFVE, Hurst: 0.5, K: 2, GammaMax: math.NaN()},
	} {
		var err error
		require.NotPanics(t, func() { _, err = NewGFDMProcess(cfg) })
		assert.Error(t, err, "%+v", cfg)
	}
}

// BenchmarkGFDMSample measures the sampler's throughput on the CPU backend: the 2-D mixture,
// K = 3, FVE, 100 steps, in chain-steps per second.
func BenchmarkGFDMSample(b *testing.B) {
	den := TargetDenoiser(gmmTarget(b, gfdmMix2))
	p := newGFDM(b, GFDMConfig{Base: GFDMBaseFVE, Hurst: 0.3, K: 3})
	for _, solver := range GFDMSolvers() {
		for _, n := range []int{1000, 10000} {
			b.Run(fmt.Sprintf("%s/n=%d", solver, n), func(b *testing.B) {
				const steps = 100
				for i := 0; i < b.N; i++ {
					res, err := GFDMSample(ops.CPU(), den, n, tensor.F32, GFDMSampleConfig{Process: p, Solver: solver, Steps: steps, Seed: uint64(i)})
					if err != nil {
						b.Fatal(err)
					}
					res.Close()
				}
				b.ReportMetric(float64(n*steps)*float64(b.N)/b.Elapsed().Seconds(), "chain-steps/s")
			})
		}
	}
}

// The augmented trajectory: its component 0 is the x trajectory of Trace row for row; its first
// row is a draw of the exact terminal law. With one Gaussian component N(μ, v I) as the data,
// Z_1 per coordinate has mean φ(1) μ_j and covariance v φφᵀ + Σ(1): every entry within 5
// Monte-Carlo standard errors (a mean: √(c_aa/n); a covariance: √((c_aa c_bb + c_ab²)/n)).
func TestGFDMSampleAugmentedTrajectory(t *testing.T) {
	p := newGFDM(t, GFDMConfig{Base: GFDMBaseFVE, Hurst: 0.7, K: 2})
	spec := ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{2, -1}}, Diag: [][]float64{{0.5, 0.5}}}
	const n, steps = 4000, 6
	res, err := GFDMSample(ops.CPU(), TargetDenoiser(gmmTarget(t, spec)), n, tensor.F64,
		GFDMSampleConfig{Process: p, Solver: GFDMSolverSDE, Steps: steps, Seed: 3, Trajectory: true, AugmentedTrajectory: true})
	require.NoError(t, err)
	defer res.Close()
	nk := p.K() + 1
	require.Equal(t, []int{steps, n, 2, nk}, res.AugmentedTrace.Shape())
	require.Len(t, res.AugmentedTimes, steps)
	require.Equal(t, 1.0, res.AugmentedTimes[0])
	aug, err := res.AugmentedTrace.F64()
	require.NoError(t, err)
	tr, err := res.Trace.F64()
	require.NoError(t, err)
	for i := 0; i < steps; i++ {
		for e := 0; e < n*2; e++ {
			require.Equal(t, tr[i*n*2+e], aug[(i*n*2+e)*nk], "row %d, entry %d: component 0 is x", i, e)
		}
	}
	phi, err := p.Mean(1)
	require.NoError(t, err)
	sigma, err := p.Covariance(1)
	require.NoError(t, err)
	for j := 0; j < 2; j++ {
		rows := make([]float64, 0, n*nk)
		for r := 0; r < n; r++ {
			rows = append(rows, aug[(r*2+j)*nk:(r*2+j+1)*nk]...)
		}
		coords := make([]int, nk)
		for a := range coords {
			coords[a] = a
		}
		mean, cov := SampleMoments(rows, nk, coords)
		want := func(a, b int) float64 { return 0.5*phi[a]*phi[b] + sigma[a*nk+b] }
		for a := 0; a < nk; a++ {
			se := math.Sqrt(want(a, a) / n)
			assert.InDelta(t, phi[a]*spec.Means[0][j], mean[a], 5*se, "coordinate %d, component %d: mean", j, a)
			for b := 0; b < nk; b++ {
				se := math.Sqrt((want(a, a)*want(b, b) + want(a, b)*want(a, b)) / n)
				assert.InDelta(t, want(a, b), cov[a*nk+b], 5*se, "coordinate %d: covariance (%d, %d)", j, a, b)
			}
		}
	}
}
