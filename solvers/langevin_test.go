package solvers

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// Statistical tests compare Monte-Carlo estimates with exact values at zSE standard errors: a
// two-sided false-failure probability of 5.7·10⁻⁷ per comparison. Each test makes at most a few
// hundred comparisons, so its false-failure rate is below 10⁻⁴ (the seeds are fixed, so a run is
// deterministic: this is the chance that a seed chosen at random would fail a correct sampler).
const zSE = 5.0

// gaussian3 is a full-covariance Gaussian in d = 3 (a GMM with K = 1).
var gaussian3 = struct {
	mean []float64
	cov  [][]float64
}{
	mean: []float64{1, -2, 0.5},
	cov:  [][]float64{{2, 0.6, 0.3}, {0.6, 1, -0.2}, {0.3, -0.2, 0.5}},
}

func gaussian3Target(t testing.TB) target.GMM {
	return gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{gaussian3.mean}, Covs: [][][]float64{gaussian3.cov}})
}

// momentErrors compares the sample mean and covariance of rows with (mean, cov) at zSE standard
// errors: SE(mean_j) = sqrt(Σ_jj/n), SE(cov_jk) = sqrt((Σ_jj Σ_kk + Σ_jk²)/n) (Gaussian fourth
// moments), plus relBias·sqrt(Σ_jj Σ_kk) for a sampler with a known bias. It returns one line per
// estimate outside its tolerance.
func momentErrors(rows [][]float64, mean []float64, cov [][]float64, relBias float64) []string {
	n := float64(len(rows))
	m, c := meanCov(rows)
	var bad []string
	for j := range mean {
		tol := zSE*math.Sqrt(cov[j][j]/n) + relBias*math.Sqrt(cov[j][j])
		if math.Abs(m[j]-mean[j]) > tol || math.IsNaN(m[j]) {
			bad = append(bad, fmt.Sprintf("mean[%d] = %.4f, want %.4f ± %.4f", j, m[j], mean[j], tol))
		}
		for k := range mean {
			tol := zSE*math.Sqrt((cov[j][j]*cov[k][k]+cov[j][k]*cov[j][k])/n) + relBias*math.Sqrt(cov[j][j]*cov[k][k])
			if math.Abs(c[j][k]-cov[j][k]) > tol || math.IsNaN(c[j][k]) {
				bad = append(bad, fmt.Sprintf("cov[%d][%d] = %.4f, want %.4f ± %.4f", j, k, c[j][k], cov[j][k], tol))
			}
		}
	}
	return bad
}

func assertMoments(t *testing.T, rows [][]float64, mean []float64, cov [][]float64, relBias float64, what string) {
	t.Helper()
	assert.Empty(t, momentErrors(rows, mean, cov, relBias), "%s (%d samples)", what, len(rows))
}

// MALA leaves its target invariant: chains started from exact samples of a correlated Gaussian
// are still exact samples after 60 steps, whatever h (here h = 0.3, where ULA is visibly biased).
// The 4000 final states are independent exact draws, so their mean and covariance are within
// zSE standard errors. The same check on ULA at the same h fails, so the check has power.
func TestMALALeavesGaussianInvariant(t *testing.T) {
	const n = 4000
	tg := gaussian3Target(t)
	x0 := fromRows(t, tensor.F64, exactGaussian(t, n, gaussian3.mean, gaussian3.cov, 11))
	defer x0.Close()
	res, err := Langevin(ops.CPU(), tg, x0, LangevinConfig{Method: MethodMALA, Steps: 60, StepSize: 0.3, Seed: 3})
	require.NoError(t, err)
	defer res.Close()
	assert.Zero(t, res.NaN.Chains)
	assert.Greater(t, res.AcceptMean(), 0.3, "the chains move")
	assert.Less(t, res.AcceptMean(), 0.99, "h is large enough for ULA's bias to show")
	assertMoments(t, hostRows(t, res.Samples), gaussian3.mean, gaussian3.cov, 0, "mala")

	ula, err := Langevin(ops.CPU(), tg, x0, LangevinConfig{Method: MethodULA, Steps: 60, StepSize: 0.3, Seed: 3})
	require.NoError(t, err)
	defer ula.Close()
	assert.NotEmpty(t, momentErrors(hostRows(t, ula.Samples), gaussian3.mean, gaussian3.cov, 0),
		"ULA at h = 0.3 is biased and the moment check must see it")
}

// MALA's rejection rate vanishes as h → 0 (it is O(h^{3/2})): above 0.99 at h = 10⁻⁴, and the
// mean acceptance decreases as h grows.
func TestMALAAcceptanceTendsToOne(t *testing.T) {
	const n = 400
	tg := gaussian3Target(t)
	x0 := fromRows(t, tensor.F64, exactGaussian(t, n, gaussian3.mean, gaussian3.cov, 12))
	defer x0.Close()
	prev := 1.0
	for _, h := range []float64{1e-4, 1e-2, 0.3, 1.5} {
		res, err := Langevin(ops.CPU(), tg, x0, LangevinConfig{Method: MethodMALA, Steps: 20, StepSize: h, Seed: 4})
		require.NoError(t, err)
		acc := res.AcceptMean()
		require.NoError(t, res.Close())
		if h == 1e-4 {
			assert.Greater(t, acc, 0.99, "h = %g", h)
		}
		assert.LessOrEqual(t, acc, prev, "acceptance at h = %g", h)
		prev = acc
	}
	assert.Less(t, prev, 0.5, "at h = 1.5 most proposals are rejected")
}

// ULA on N(0, σ²): x' = (1 − h/σ²) x + √(2h) ξ is a Gaussian AR(1) whose stationary variance is
// 2h/(1 − (1 − h/σ²)²) = σ²/(1 − h/(2σ²)), not σ². From x = 0 the variance after k steps is that
// times 1 − (1 − h/σ²)^{2k}, a deficit ≤ 0.875⁸⁰ = 2·10⁻⁵ after k = 40. With 20000 chains the
// sample variance has relative SE sqrt(2/n) = 1 %, and the biases are 6.7 % (h = 0.25) and 33 %
// (h = 1). So the test also checks that the estimate is nearer the closed form than σ² (false
// failure at h = 0.25: Φ(−3.3) ≈ 5·10⁻⁴) and, at h = 1, that it is zSE standard errors from σ².
func TestULAStationaryVarianceClosedForm(t *testing.T) {
	const n, sigma2 = 20000, 2.0
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{0}}, Vars: []float64{sigma2}})
	x0, err := tensor.New(nil, tensor.F64, n, 1)
	require.NoError(t, err)
	defer x0.Close()
	for _, h := range []float64{0.25, 1} {
		res, err := Langevin(ops.CPU(), tg, x0, LangevinConfig{Method: MethodULA, Steps: 40, StepSize: h, Seed: 5})
		require.NoError(t, err)
		rows := hostRows(t, res.Samples)
		require.NoError(t, res.Close())
		r := 1 - h/sigma2
		want := 2 * h / (1 - r*r)
		assert.InDelta(t, sigma2/(1-h/(2*sigma2)), want, 1e-12, "the two closed forms agree")
		m, c := meanCov(rows)
		se := want * math.Sqrt(2.0/n)
		assert.InDelta(t, want, c[0][0], zSE*se, "h = %g: stationary variance", h)
		assert.Less(t, math.Abs(c[0][0]-want), math.Abs(c[0][0]-sigma2), "h = %g: nearer the biased closed form than σ²", h)
		if h == 1 {
			assert.Greater(t, math.Abs(c[0][0]-sigma2), zSE*se, "h = %g: the bias is visible", h)
		}
		assert.InDelta(t, 0, m[0], zSE*math.Sqrt(want/n), "h = %g: mean", h)
	}
}

// uldStationaryVariance is the exact stationary variance of x for the frozen-gradient ULD step
// on a 1-D Gaussian of curvature L (π = N(0, 1/L)): the fixed point of Σ = A Σ Aᵀ + Q for the
// linear map A and noise covariance Q of ops.ULDCoefficients.
func uldStationaryVariance(h, L float64, p ops.ULDParams) float64 {
	e, cv, cx, cxg, l11, l21, l22 := ops.ULDCoefficients(h, p)
	a := [2][2]float64{{1 - cxg*L, cx}, {-cv * L, e}}
	q := [2][2]float64{{l11 * l11, l11 * l21}, {l11 * l21, l21*l21 + l22*l22}}
	s := [2][2]float64{{1 / L, 0}, {0, p.InvMass}}
	for it := 0; it < 100000; it++ {
		var as, next [2][2]float64
		for i := 0; i < 2; i++ {
			for j := 0; j < 2; j++ {
				as[i][j] = a[i][0]*s[0][j] + a[i][1]*s[1][j]
			}
		}
		for i := 0; i < 2; i++ {
			for j := 0; j < 2; j++ {
				next[i][j] = as[i][0]*a[j][0] + as[i][1]*a[j][1] + q[i][j]
			}
		}
		s = next
	}
	return s[0][0]
}

// ULD samples a Gaussian N(μ, diag(1, 0.25)) after burn-in: γ = 2, h = 0.05, 300 steps (time
// 15, ≥ 15 relaxation times of both directions) from x = 0. The frozen-gradient step is biased at
// O(h) — its stationary variance exceeds the target's by ≈ h L u/(2γ) relative, 1.3 % and 5 % here
// — so the exact stationary variance of the scheme (uldStationaryVariance) is checked within zSE
// standard errors, and the target's within that bias.
func TestULDSamplesGaussian(t *testing.T) {
	const n = 6000
	vars := []float64{1, 0.25}
	mean := []float64{2, -1}
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{mean}, Diag: [][]float64{vars}})
	x0, err := tensor.New(nil, tensor.F64, n, 2)
	require.NoError(t, err)
	defer x0.Close()
	p := ops.ULDParams{Gamma: 2, InvMass: 1}
	const h, steps = 0.05, 300
	res, err := Langevin(ops.CPU(), tg, x0, LangevinConfig{Method: MethodULD, Steps: steps, StepSize: h, Friction: p.Gamma, Seed: 6})
	require.NoError(t, err)
	defer res.Close()
	rows := hostRows(t, res.Samples)
	m, c := meanCov(rows)
	for j, v := range vars {
		want := uldStationaryVariance(h, 1/v, p)
		assert.InDelta(t, v, want, 0.06*v, "the integrator's bias is small")
		assert.InDelta(t, want, c[j][j], zSE*want*math.Sqrt(2.0/n), "variance %d", j)
		assert.InDelta(t, mean[j], m[j], zSE*math.Sqrt(want/n), "mean %d", j)
	}
	assert.InDelta(t, 0, c[0][1], zSE*math.Sqrt(vars[0]*vars[1]/n), "independent coordinates")
	assert.Nil(t, res.Accept, "ULD has no acceptance")
	assert.Zero(t, res.LogPEvals, "ULD needs no log-density")
	assert.Equal(t, int64(steps*n), res.ScoreEvals)
	assert.Equal(t, int64(steps), res.ScoreCalls)
}

// Dual averaging drives the acceptance after the warm-up to the target, shared or per chain, from
// initial step sizes four orders of magnitude apart. The frozen h̄ is an average of log h, not a
// root of acceptance = δ, so the tolerance is an adaptation tolerance (±0.05 shared, ±0.07 per
// chain, whose adaptation sees only its own 0/1 decisions), far above the Monte-Carlo error of
// the mean acceptance (≈ 0.005 for 300 chains × 200 steps).
func TestDualAveragingReachesTargetAcceptance(t *testing.T) {
	const n = 300
	tg := gaussian3Target(t)
	x0 := fromRows(t, tensor.F64, exactGaussian(t, n, gaussian3.mean, gaussian3.cov, 13))
	defer x0.Close()
	for _, c := range []struct {
		h0, delta float64
		perChain  bool
		tol       float64
	}{{1e-3, DefaultTargetAccept, false, 0.05}, {10, DefaultTargetAccept, false, 0.05}, {0.1, 0.8, false, 0.05}, {0.1, DefaultTargetAccept, true, 0.07}} {
		cfg := LangevinConfig{Method: MethodMALA, Steps: 400, StepSize: c.h0, Adapt: true, SharedStepSize: !c.perChain, Seed: 7}
		if c.delta != DefaultTargetAccept {
			cfg.TargetAccept = c.delta
		}
		res, err := Langevin(ops.CPU(), tg, x0, cfg)
		require.NoError(t, err)
		t.Logf("h0 = %g, δ = %g, per chain %v: acceptance %.4f at h = %.4g", c.h0, c.delta, c.perChain, res.AcceptMean(), res.StepSize)
		assert.InDelta(t, c.delta, res.AcceptMean(), c.tol, "h0 = %g, δ = %g, per chain %v: h = %g", c.h0, c.delta, c.perChain, res.StepSize)
		if c.perChain {
			assert.Len(t, res.StepSizes, n)
		} else {
			assert.Nil(t, res.StepSizes)
		}
		assertMoments(t, hostRows(t, res.Samples), gaussian3.mean, gaussian3.cov, 0, "adapted mala")
		require.NoError(t, res.Close())
	}
}

// Evaluation counts: MALA evaluates log p and the score together, once at the start and once per
// step; ULA only the score, once per step. Counts are per chain per evaluation (×N) and per op
// call.
func TestLangevinCountsEvaluations(t *testing.T) {
	const n, steps = 7, 9
	tg := gaussian3Target(t)
	x0 := fromRows(t, tensor.F64, exactGaussian(t, n, gaussian3.mean, gaussian3.cov, 14))
	defer x0.Close()
	mala, err := Langevin(ops.CPU(), tg, x0, LangevinConfig{Method: MethodMALA, Steps: steps, StepSize: 0.1})
	require.NoError(t, err)
	defer mala.Close()
	assert.Equal(t, Evals{ScoreEvals: n * (steps + 1), LogPEvals: n * (steps + 1), ScoreCalls: steps + 1, LogPCalls: steps + 1}, mala.Evals)
	ula, err := Langevin(ops.CPU(), tg, x0, LangevinConfig{Method: MethodULA, Steps: steps, StepSize: 0.1})
	require.NoError(t, err)
	defer ula.Close()
	assert.Equal(t, Evals{ScoreEvals: n * steps, ScoreCalls: steps}, ula.Evals)
	assert.Nil(t, ula.Accept)
	assert.Equal(t, 0.1, ula.StepSize)
}

// The trace keeps the initial state and every Thin-th state; its last row is the final state when
// Thin divides Steps. The input tensor is not modified.
func TestLangevinTrace(t *testing.T) {
	const n, d = 5, 3
	tg := gaussian3Target(t)
	start := exactGaussian(t, n, gaussian3.mean, gaussian3.cov, 15)
	x0 := fromRows(t, tensor.F32, start)
	defer x0.Close()
	before := hostRows(t, x0)
	for _, c := range []struct {
		steps, thin int
		want        []int
	}{{10, 3, []int{0, 3, 6, 9}}, {6, 2, []int{0, 2, 4, 6}}, {4, 1, []int{0, 1, 2, 3, 4}}} {
		res, err := Langevin(ops.CPU(), tg, x0, LangevinConfig{Method: MethodMALA, Steps: c.steps, StepSize: 0.2, Thin: c.thin, Seed: 8})
		require.NoError(t, err)
		require.NotNil(t, res.Trace)
		assert.Equal(t, []int{len(c.want), n, d}, res.Trace.Shape())
		assert.Equal(t, c.want, res.TraceSteps)
		assert.Equal(t, tensor.F32, res.Samples.DType())
		tr, err := res.Trace.Float64s()
		require.NoError(t, err)
		first, err := x0.Float64s()
		require.NoError(t, err)
		assert.Equal(t, first, tr[:n*d], "row 0 is the initial state")
		if c.want[len(c.want)-1] == c.steps {
			last, err := res.Samples.Float64s()
			require.NoError(t, err)
			assert.Equal(t, last, tr[len(tr)-n*d:], "the last row is the final state")
		}
		require.NoError(t, res.Close())
		assert.True(t, res.Samples.Closed() && res.Trace.Closed(), "Close frees every tensor of the result")
	}
	assert.Equal(t, before, hostRows(t, x0), "x0 is not modified")
}

// Row i is chain FirstChain + i: running 10 chains at once or as batches of 6 and 4 (the second
// with FirstChain = 6) gives bit-identical samples, for every method and for per-chain adaptation.
func TestLangevinBatchesReproduceChains(t *testing.T) {
	const n, split = 10, 6
	tg := gaussian3Target(t)
	start := exactGaussian(t, n, gaussian3.mean, gaussian3.cov, 16)
	all := fromRows(t, tensor.F64, start)
	lo := fromRows(t, tensor.F64, start[:split])
	hi := fromRows(t, tensor.F64, start[split:])
	for _, cfg := range []LangevinConfig{
		{Method: MethodULA, Steps: 15, StepSize: 0.1, Seed: 21},
		{Method: MethodMALA, Steps: 15, StepSize: 0.4, Seed: 22},
		{Method: MethodMALA, Steps: 30, Adapt: true, Seed: 23},
		{Method: MethodULD, Steps: 15, StepSize: 0.2, Friction: 1, InvMass: 2, Seed: 24},
	} {
		one, err := Langevin(ops.CPU(), tg, all, cfg)
		require.NoError(t, err)
		a, err := Langevin(ops.CPU(), tg, lo, cfg)
		require.NoError(t, err)
		cfg.FirstChain = split
		b, err := Langevin(ops.CPU(), tg, hi, cfg)
		require.NoError(t, err)
		assert.Equal(t, hostRows(t, one.Samples), append(hostRows(t, a.Samples), hostRows(t, b.Samples)...), "%s", cfg.Method)
		if one.Accept != nil {
			assert.Equal(t, one.Accept, append(append([]float64(nil), a.Accept...), b.Accept...), "%s acceptance", cfg.Method)
		}
		if one.StepSizes != nil {
			assert.Equal(t, one.StepSizes, append(append([]float64(nil), a.StepSizes...), b.StepSizes...), "per-chain step sizes")
		}
		other, err := Langevin(ops.CPU(), tg, all, LangevinConfig{Method: cfg.Method, Steps: cfg.Steps, StepSize: cfg.StepSize,
			Adapt: cfg.Adapt, Friction: cfg.Friction, InvMass: cfg.InvMass, Seed: cfg.Seed + 100})
		require.NoError(t, err)
		assert.NotEqual(t, hostRows(t, one.Samples), hostRows(t, other.Samples), "another seed, other samples")
		for _, r := range []*Result{one, a, b, other} {
			require.NoError(t, r.Close())
		}
	}
}

// A chain whose state is NaN is reported with the count and the first row, at the first trace
// point that sees it; the other chains are unaffected and the adaptation ignores it. A diverging
// ULA run (h = 5 on N(0, 1): |1 − h| > 1) reports every chain.
func TestLangevinReportsNaNChains(t *testing.T) {
	const n = 8
	tg := gaussian3Target(t)
	start := exactGaussian(t, n, gaussian3.mean, gaussian3.cov, 17)
	start[3][1] = math.NaN()
	start[6][0] = math.Inf(1)
	x0 := fromRows(t, tensor.F64, start)
	defer x0.Close()
	for _, cfg := range []LangevinConfig{
		{Method: MethodMALA, Steps: 10, StepSize: 0.2},
		{Method: MethodMALA, Steps: 10, StepSize: 0.2, Thin: 5},
		{Method: MethodMALA, Steps: 20, Adapt: true},
		{Method: MethodULA, Steps: 10, StepSize: 0.2},
		{Method: MethodULD, Steps: 10, StepSize: 0.2, Friction: 2},
	} {
		res, err := Langevin(ops.CPU(), tg, x0, cfg)
		require.NoError(t, err)
		assert.Equal(t, 2, res.NaN.Chains, "%+v", cfg)
		assert.Equal(t, 3, res.NaN.First)
		assert.Equal(t, []int{3, 6}, res.NaN.Rows)
		wantStep := cfg.Steps
		if cfg.Thin > 0 {
			wantStep = 0
		}
		assert.Equal(t, wantStep, res.NaN.Step)
		assert.Contains(t, res.NaN.String(), "first row 3")
		rows := hostRows(t, res.Samples)
		for i, r := range rows {
			if i != 3 && i != 6 {
				for _, v := range r {
					assert.False(t, math.IsNaN(v) || math.IsInf(v, 0), "chain %d stays finite", i)
				}
			}
		}
		if cfg.Method == MethodMALA {
			assert.False(t, math.IsNaN(res.AcceptMean()), "the mean acceptance leaves the NaN rows out")
			assert.Greater(t, res.AcceptMean(), 0.2)
			assert.Zero(t, res.Accept[3])
		}
		if cfg.Adapt {
			assert.Greater(t, res.StepSize, 0.0)
			assert.False(t, math.IsNaN(res.StepSize) || math.IsInf(res.StepSize, 0), "adapted h stays finite")
		}
		require.NoError(t, res.Close())
	}

	one := gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{0}}, Vars: []float64{1}})
	x1 := fromRows(t, tensor.F64, [][]float64{{1}, {-1}, {0.5}})
	res, err := Langevin(ops.CPU(), one, x1, LangevinConfig{Method: MethodULA, Steps: 2000, StepSize: 5})
	require.NoError(t, err)
	defer res.Close()
	assert.Equal(t, NaNReport{Chains: 3, First: 0, Step: 2000, Rows: []int{0, 1, 2}}, res.NaN)
	clean, err := Langevin(ops.CPU(), one, x1, LangevinConfig{Method: MethodULA, Steps: 5, StepSize: 0.1})
	require.NoError(t, err)
	defer clean.Close()
	assert.Equal(t, NaNReport{First: -1, Step: -1}, clean.NaN)
	assert.Equal(t, "no non-finite chains", clean.NaN.String())
}

// Bad input is refused with an error that names the problem, before anything runs.
func TestLangevinRejectsBadInput(t *testing.T) {
	tg := gaussian3Target(t)
	x0 := fromRows(t, tensor.F64, [][]float64{{0, 0, 0}, {1, 1, 1}})
	empty, err := tensor.New(nil, tensor.F64, 0, 3)
	require.NoError(t, err)
	wrongDim := fromRows(t, tensor.F64, [][]float64{{0, 0}})
	flat, err := tensor.New(nil, tensor.F64, 3)
	require.NoError(t, err)
	ok := LangevinConfig{Method: MethodMALA, Steps: 3, StepSize: 0.1}
	with := func(f func(*LangevinConfig)) LangevinConfig { c := ok; f(&c); return c }
	for _, c := range []struct {
		name string
		b    ops.Backend
		tg   target.Target
		x    *tensor.Tensor
		cfg  LangevinConfig
		want string
	}{
		{"h = 0", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.StepSize = 0 }), "step size h = 0"},
		{"h < 0", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.StepSize = -0.1 }), "step size h = -0.1"},
		{"h NaN", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.StepSize = math.NaN() }), "step size h = NaN"},
		{"h Inf", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.StepSize = math.Inf(1) }), "step size h = +Inf"},
		{"adapt with h < 0", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.Adapt, c.StepSize = true, -1 }), "step size"},
		{"γ = 0", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.Method = MethodULD }), "friction γ = 0"},
		{"γ < 0", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.Method, c.Friction = MethodULD, -2 }), "friction γ = -2"},
		{"γ NaN", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.Method, c.Friction = MethodULD, math.NaN() }), "friction γ = NaN"},
		{"u < 0", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.Method, c.Friction, c.InvMass = MethodULD, 1, -1 }), "inverse mass"},
		{"zero steps", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.Steps = 0 }), "steps = 0"},
		{"negative steps", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.Steps = -4 }), "steps = -4"},
		{"zero chains", ops.CPU(), tg, empty, ok, "zero chains"},
		{"no method", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.Method = "" }), "no method"},
		{"unknown method", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.Method = "hmc" }), `unknown method "hmc"`},
		{"adapt ula", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.Method, c.Adapt = MethodULA, true }), "only mala adapts"},
		{"target accept", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.Adapt, c.TargetAccept = true, 1.5 }), "target acceptance 1.5"},
		{"warm-up", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.WarmUp = 4 }), "warm-up = 4"},
		{"thin < 0", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.Thin = -1 }), "thin = -1"},
		{"thin > steps", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.Thin = 4 }), "thin = 4 > steps = 3"},
		{"chain range", ops.CPU(), tg, x0, with(func(c *LangevinConfig) { c.FirstChain = ops.MaxChains - 1 }), "below 2^32"},
		{"nil backend", nil, tg, x0, ok, "nil backend"},
		{"nil target", ops.CPU(), nil, x0, ok, "nil target"},
		{"nil x0", ops.CPU(), tg, nil, ok, "nil or closed"},
		{"rank 1 x0", ops.CPU(), tg, flat, ok, "want (chains, dim)"},
		{"dimension", ops.CPU(), tg, wrongDim, ok, "dimension 2, the target"},
	} {
		res, err := Langevin(c.b, c.tg, c.x, c.cfg)
		assert.Nil(t, res, c.name)
		if assert.Error(t, err, c.name) {
			assert.Contains(t, err.Error(), c.want, c.name)
			assert.Contains(t, err.Error(), "langevin", c.name)
		}
	}
}

// MALA needs log p: on an empirical data set without noise (no density) the error says so and
// suggests "uld"; at a VE noise level the data set has a density and MALA runs.
func TestMALAWithoutLogDensitySuggestsULD(t *testing.T) {
	data, err := tensor.FromF64([]float64{0, 0, 1, 0, 0, 1}, 3, 2)
	require.NoError(t, err)
	set, err := ops.NewEmpirical(data)
	require.NoError(t, err)
	tg := target.Empirical{DataSet: set}
	x0 := fromRows(t, tensor.F64, [][]float64{{0.2, 0.1}, {0.5, 0.5}})
	_, err = Langevin(ops.CPU(), tg, x0, LangevinConfig{Method: MethodMALA, Steps: 5, StepSize: 0.01})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MALA needs log p")
	assert.Contains(t, err.Error(), `"uld"`)
	assert.Contains(t, err.Error(), "noise level", "and says what would work")
	_, err = Langevin(ops.CPU(), tg, x0, LangevinConfig{Method: MethodULD, Steps: 5, StepSize: 0.01, Friction: 1})
	assert.ErrorContains(t, err, "cannot give a score", "without noise there is no score either")
	res, err := Langevin(ops.CPU(), tg, x0, LangevinConfig{Method: MethodMALA, Steps: 5, StepSize: 0.01, Noise: ops.AtSigma(0.3)})
	require.NoError(t, err)
	assert.Zero(t, res.NaN.Chains)
	require.NoError(t, res.Close())
}

// Site is s·16 + p: distinct for every (step, purpose) pair, including the second site ULD reads,
// over every purpose the samplers use.
func TestSiteLayout(t *testing.T) {
	seen := map[uint64]string{}
	purposes := []Purpose{PurposeStep, PurposeAccept, PurposeULD, PurposeULD + 1, PurposeInit, PurposeVelocity,
		PurposeSegmentInit, PurposeDiffusion, PurposeConstrained, PurposeFractional, PurposeInitComponent,
		PurposeBrownian, PurposeGFDM, PurposeBrownianInterval, PurposeLIM}
	for s := uint64(0); s < 50; s++ {
		for _, p := range purposes {
			site := Site(s, p)
			_, dup := seen[site]
			require.False(t, dup, "site %d of (%d, %d) is also %s", site, s, p, seen[site])
			seen[site] = "used"
			assert.Less(t, uint64(p), uint64(SitesPerStep))
		}
	}
	assert.Equal(t, uint64(5*16+2), Site(5, PurposeULD))
	assert.Equal(t, ops.Draw{Seed: 9, Site: 3*16 + 1, FirstChain: 7}, drawAt(9, 3, PurposeAccept, 7))
	assert.Greater(t, Site(MaxSteps, PurposeSegmentInit), Site(MaxSteps-1, PurposeSegmentInit), "no wrap-around up to MaxSteps")
}
