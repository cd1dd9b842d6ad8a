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

// mixture2 has two well-separated modes (8 apart, standard deviations ≤ 1) with unequal weights
// and different diagonal covariances; mixture10 has three modes in d = 10 (≥ 6.9 apart) with
// isotropic variances 0.5, 1 and 0.25.
var (
	mixture2 = ops.GMMSpec{Weights: []float64{0.3, 0.7}, Means: [][]float64{{-4, 0}, {4, 1}},
		Diag: [][]float64{{0.5, 1}, {1, 0.25}}}
	mixture10 = ops.GMMSpec{Weights: []float64{0.2, 0.3, 0.5}, Means: [][]float64{
		{4, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {-2, 3.5, 0, 0, 0, 0, 0, 0, 0, 0}, {-2, -3.5, 0, 0, 0, 0, 0, 0, 0, 1}},
		Vars: []float64{0.5, 1, 0.25}}
)

// componentCovs returns the K covariance matrices of spec.
func componentCovs(spec ops.GMMSpec) [][][]float64 {
	K, d := len(spec.Weights), len(spec.Means[0])
	out := make([][][]float64, K)
	for k := range out {
		out[k] = make([][]float64, d)
		for i := range out[k] {
			out[k][i] = make([]float64, d)
			switch {
			case spec.Vars != nil:
				out[k][i][i] = spec.Vars[k]
			case spec.Diag != nil:
				out[k][i][i] = spec.Diag[k][i]
			default:
				copy(out[k][i], spec.Covs[k][i])
			}
		}
	}
	return out
}

// mixtureAllowance is the bias a sampler is allowed beyond the Monte-Carlo error: on the mode
// weights (absolute), and on the component means and covariances (relative to the standard
// deviations: bias·σ_j and bias·σ_j σ_k).
type mixtureAllowance struct{ weight, moments float64 }

// mixtureErrors assigns every sample to the nearest component mean (the modes are so far apart
// that a misassigned sample has probability < 10⁻³) and checks the fraction in component k
// against w_k within zSE·sqrt(w_k(1 − w_k)/N) + allow.weight, and each component's sample mean
// and covariance against μ_k and Σ_k with momentErrors (zSE standard errors + allow.moments). It
// returns one line per estimate outside its tolerance.
func mixtureErrors(spec ops.GMMSpec, rows [][]float64, allow mixtureAllowance) []string {
	n := float64(len(rows))
	parts := byNearestMean(rows, spec.Means)
	covs := componentCovs(spec)
	total := 0.0
	for _, w := range spec.Weights {
		total += w
	}
	var bad []string
	for k, part := range parts {
		w := spec.Weights[k] / total
		got := float64(len(part)) / n
		if tol := zSE*math.Sqrt(w*(1-w)/n) + allow.weight; math.Abs(got-w) > tol {
			bad = append(bad, fmt.Sprintf("weight of component %d = %.4f, want %.4f ± %.4f", k, got, w, tol))
		}
		if len(part) < 10 {
			continue
		}
		for _, e := range momentErrors(part, spec.Means[k], covs[k], allow.moments) {
			bad = append(bad, fmt.Sprintf("component %d (%d samples): %s", k, len(part), e))
		}
	}
	return bad
}

func assertMixture(t *testing.T, spec ops.GMMSpec, res *Result, allow mixtureAllowance, what string) {
	t.Helper()
	require.Zero(t, res.NaN.Chains, what)
	assert.Empty(t, mixtureErrors(spec, hostRows(t, res.Samples), allow), what)
}

// RTK-MALA and RTK-ULD with their defaults (5 segments of [0, 5], posterior-mean starts) reproduce
// the mode weights and the component means and covariances of well-separated mixtures in d = 2
// and d = 10. The allowances (beyond zSE standard errors) are the samplers' biases, measured with
// 20000 chains and three seeds: the 5-segment kernels leave a mode-weight error of ≈ 0.015 (from
// the last segment, η = 1, whose sub-target is bimodal where x' lies between modes) — allowed
// 0.02; MALA is exact on each sub-target and needed no moment allowance — allowed 0.05·σ for the
// inner chains' finite length; the frozen-gradient ULD step is biased at O(h), ≈ c/(2·Friction) =
// 6 % excess variance per segment in the narrowest direction (needed 0.03 beyond the standard
// errors) — allowed 0.08·σ.
func TestRTKReproducesMixtures(t *testing.T) {
	for _, c := range []struct {
		name  string
		spec  ops.GMMSpec
		n     int
		inner string
		allow mixtureAllowance
	}{
		{"rtk-mala d=2", mixture2, 4000, MethodMALA, mixtureAllowance{0.02, 0.05}},
		{"rtk-uld d=2", mixture2, 4000, MethodULD, mixtureAllowance{0.02, 0.08}},
		{"rtk-mala d=10", mixture10, 4000, MethodMALA, mixtureAllowance{0.02, 0.05}},
		{"rtk-uld d=10", mixture10, 2500, MethodULD, mixtureAllowance{0.02, 0.08}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := gmmTarget(t, c.spec)
			res, err := RTK(ops.CPU(), tg, c.n, tensor.F64, RTKConfig{Inner: c.inner, Seed: 31})
			require.NoError(t, err)
			defer res.Close()
			assertMixture(t, c.spec, res, c.allow, c.name)
			steps := DefaultMALAInnerSteps
			if c.inner == MethodULD {
				steps = DefaultULDInnerSteps
			}
			perChain := int64(DefaultSegments * (steps + 1)) // + the posterior-mean start
			if c.inner == MethodMALA {
				perChain += DefaultSegments // + the fused evaluation at each inner chain's start
				assert.Equal(t, int64(c.n*DefaultSegments*(steps+1)), res.LogPEvals)
				assert.Greater(t, res.AcceptMean(), 0.5)
			} else {
				assert.Zero(t, res.LogPEvals)
				assert.Nil(t, res.Accept)
			}
			assert.Equal(t, int64(c.n)*perChain, res.ScoreEvals, "score evaluations")
			assert.Equal(t, perChain, res.ScoreCalls, "one op call per evaluation of the whole batch")
			assert.Len(t, res.SegmentStepSizes, DefaultSegments)
		})
	}
}

// The mixture check has power: started at e^{η} x' (InitScaled) instead of the posterior mean,
// RTK-MALA puts most chains of the 10-D mixture into its widest component, and the check fails.
func TestRTKMixtureCheckDetectsScaledStartBias(t *testing.T) {
	res, err := RTK(ops.CPU(), gmmTarget(t, mixture10), 1000, tensor.F64, RTKConfig{Inner: MethodMALA, InnerInit: InitScaled, Seed: 32})
	require.NoError(t, err)
	defer res.Close()
	bad := mixtureErrors(mixture10, hostRows(t, res.Samples), mixtureAllowance{0.02, 0.05})
	assert.NotEmpty(t, bad)
	parts := byNearestMean(hostRows(t, res.Samples), mixture10.Means)
	assert.Greater(t, len(parts[1]), 600, "the widest component (weight 0.3) takes most chains")
}

// DDPM (the exponential integrator) with 200 equal steps reproduces the same mixtures. Its error
// is the frozen score, O(h) with h = 0.025: allowances 0.01 on the weights and 0.1·σ on the
// moments (measured with 20000 chains and three seeds: no weight error beyond the standard
// errors, moment errors ≤ 0.072·σ beyond them).
func TestDDPMReproducesMixtures(t *testing.T) {
	for _, c := range []struct {
		name string
		spec ops.GMMSpec
		n    int
	}{{"d=2", mixture2, 4000}, {"d=10", mixture10, 3000}} {
		t.Run(c.name, func(t *testing.T) {
			res, err := DDPM(ops.CPU(), gmmTarget(t, c.spec), c.n, tensor.F64, DDPMConfig{Steps: 200, Seed: 41})
			require.NoError(t, err)
			defer res.Close()
			assertMixture(t, c.spec, res, mixtureAllowance{0.01, 0.1}, "ddpm "+c.name)
			assert.Equal(t, Evals{ScoreEvals: int64(200 * c.n), ScoreCalls: 200}, res.Evals)
		})
	}
}

// One DDPM step from p_t = N(0, c) (a Gaussian target's marginal) is linear, so the variance after
// a run is a closed-form recursion: Var' = (e^h − 2(e^h − 1)/c_t)² Var + e^{2h} − 1. The sampler
// matches it within zSE standard errors, on a non-uniform grid ending at t_0 = 0 and on one
// stopping early at t_0 = 0.1.
func TestDDPMGaussianVarianceRecursion(t *testing.T) {
	const n, lambda = 20000, 0.3
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{0}}, Vars: []float64{lambda}})
	for _, grid := range [][]float64{{0, 0.05, 0.2, 0.5, 1, 2, 4}, {0.1, 0.3, 1, 3}} {
		res, err := DDPM(ops.CPU(), tg, n, tensor.F64, DDPMConfig{Grid: grid, Seed: 42, Thin: 1})
		require.NoError(t, err)
		v := 1.0
		for i := len(grid) - 1; i > 0; i-- {
			h, tt := grid[i]-grid[i-1], grid[i]
			a2 := math.Exp(-2 * tt)
			c := a2*lambda + 1 - a2
			f := math.Exp(h) - 2*math.Expm1(h)/c
			v = f*f*v + math.Expm1(2*h)
		}
		_, cv := meanCov(hostRows(t, res.Samples))
		assert.InDelta(t, v, cv[0][0], zSE*v*math.Sqrt(2.0/n), "grid %v", grid)
		assert.Equal(t, []int{len(grid), n, 1}, res.Trace.Shape())
		assert.Equal(t, len(grid)-1, res.TraceSteps[len(res.TraceSteps)-1])
		require.NoError(t, res.Close())
	}
}

// Splitting the chains into two batches via FirstChain reproduces the single run bit for bit.
func TestRTKAndDDPMBatchesReproduceChains(t *testing.T) {
	const n, split = 9, 4
	tg := gmmTarget(t, mixture2)
	for _, run := range []struct {
		name string
		f    func(n int, first uint64) (*Result, error)
	}{
		{"rtk-mala", func(n int, first uint64) (*Result, error) {
			return RTK(ops.CPU(), tg, n, tensor.F64, RTKConfig{Inner: MethodMALA, InnerSteps: 5, Seed: 51, FirstChain: first})
		}},
		{"rtk-uld ddpm start", func(n int, first uint64) (*Result, error) {
			return RTK(ops.CPU(), tg, n, tensor.F32, RTKConfig{Inner: MethodULD, InnerSteps: 5, InnerInit: InitDDPM, Seed: 52, FirstChain: first})
		}},
		{"ddpm", func(n int, first uint64) (*Result, error) {
			return DDPM(ops.CPU(), tg, n, tensor.F64, DDPMConfig{Steps: 20, Seed: 53, FirstChain: first})
		}},
	} {
		one, err := run.f(n, 0)
		require.NoError(t, err, run.name)
		a, err := run.f(split, 0)
		require.NoError(t, err, run.name)
		b, err := run.f(n-split, split)
		require.NoError(t, err, run.name)
		assert.Equal(t, hostRows(t, one.Samples), append(hostRows(t, a.Samples), hostRows(t, b.Samples)...), run.name)
		if one.Accept != nil {
			assert.Equal(t, one.Accept, append(append([]float64(nil), a.Accept...), b.Accept...), run.name)
		}
		for _, r := range []*Result{one, a, b} {
			require.NoError(t, r.Close())
		}
	}
}

// The path of an RTK run holds x_k at every grid time: row S is the N(0, I) start, row 0 the
// samples; the inner step sizes follow the documented rule.
func TestRTKPathAndStepRule(t *testing.T) {
	const n = 6
	tg := gmmTarget(t, mixture2)
	grid := []float64{0, 0.5, 1.5, 4}
	res, err := RTK(ops.CPU(), tg, n, tensor.F64, RTKConfig{Inner: MethodMALA, Grid: grid, InnerSteps: 3, KeepPath: true, Seed: 61})
	require.NoError(t, err)
	defer res.Close()
	require.Equal(t, []int{4, n, 2}, res.Trace.Shape())
	assert.Equal(t, []int{0, 1, 2, 3}, res.TraceSteps)
	path, err := res.Trace.Float64s()
	require.NoError(t, err)
	samples, err := res.Samples.Float64s()
	require.NoError(t, err)
	assert.Equal(t, samples, path[:n*2], "row 0 is x_0")
	sv, err := SampleNoised(tg, n, math.Exp(-4), -math.Expm1(-8), 61, 0)
	require.NoError(t, err)
	assert.Equal(t, sv, path[3*n*2:], "row S is the exact start: the target noised to t_S")
	for k := range grid[:3] {
		eta := grid[k+1] - grid[k]
		a2, s := math.Exp(-2*grid[k]), -math.Expm1(-2*grid[k])
		cmin := a2*0.25 + s // λ_min = 0.25
		sigma2 := 1 / (1/math.Expm1(2*eta) + 1/cmin)
		assert.InDelta(t, DefaultMALAStepScale*math.Cbrt(0.5)*sigma2, res.SegmentStepSizes[k], 1e-12, "segment %d", k)
	}
	assert.Equal(t, res.SegmentStepSizes[0], res.StepSize)
	hs := []float64{0.01, 0.02, 0.03}
	res2, err := RTK(ops.CPU(), tg, n, tensor.F64, RTKConfig{Inner: MethodULD, Grid: grid, InnerSteps: 3, InnerStepSizes: hs})
	require.NoError(t, err)
	assert.Equal(t, hs, res2.SegmentStepSizes)
	require.NoError(t, res2.Close())
}

// An empirical data set has no density at t = 0: a grid from 0 is refused with an error that says
// to start at t_0 > 0. From t_0 = 10⁻³ (samples of p_{t_0}: the data blurred by N(0, 2·10⁻³ I),
// standard deviation 0.045) RTK-ULD and RTK-MALA land on the data points with equal weights, and
// so does DDPM on a geometric grid, which never evaluates the score at its end time and so may
// end at t = 0 (its last step, from t = 10⁻³, blurs by ≈ 0.045).
func TestRTKOnEmpiricalTarget(t *testing.T) {
	data, err := tensor.FromF64([]float64{-3, 0, 3, 0, 0, 3}, 3, 2)
	require.NoError(t, err)
	set, err := ops.NewEmpirical(data)
	require.NoError(t, err)
	tg := target.Empirical{DataSet: set}
	_, err = RTK(ops.CPU(), tg, 10, tensor.F64, RTKConfig{Inner: MethodULD})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "t_0 > 0")
	_, err = RTK(ops.CPU(), tg, 10, tensor.F64, RTKConfig{Inner: MethodMALA, Grid: []float64{0, 1, 5}})
	assert.ErrorContains(t, err, "t_0 > 0")

	const n = 300
	points := [][]float64{{-3, 0}, {3, 0}, {0, 3}}
	grid := []float64{1e-3, 0.1, 0.5, 1, 2, 5}
	geometric, err := GeometricGrid(1e-3, DefaultHorizon, 100)
	require.NoError(t, err)
	for name, run := range map[string]func() (*Result, error){
		"rtk-uld": func() (*Result, error) {
			return RTK(ops.CPU(), tg, n, tensor.F64, RTKConfig{Inner: MethodULD, Grid: grid, Seed: 71})
		},
		"rtk-mala": func() (*Result, error) {
			return RTK(ops.CPU(), tg, n, tensor.F64, RTKConfig{Inner: MethodMALA, Grid: grid, Seed: 71})
		},
		"ddpm": func() (*Result, error) {
			return DDPM(ops.CPU(), tg, n, tensor.F64, DDPMConfig{Grid: geometric, Seed: 72})
		},
	} {
		res, err := run()
		require.NoError(t, err, name)
		parts := byNearestMean(hostRows(t, res.Samples), points)
		for k, part := range parts {
			assert.InDelta(t, 1.0/3, float64(len(part))/n, zSE*math.Sqrt(2.0/9/n), "%s: point %d", name, k)
			far := 0
			for _, r := range part {
				if math.Hypot(r[0]-points[k][0], r[1]-points[k][1]) > 0.3 { // 6.7 σ: P < 10⁻⁹
					far++
				}
			}
			assert.Zero(t, far, "%s: samples farther than 0.3 from data point %d", name, k)
		}
		require.NoError(t, res.Close())
	}
}

// GeometricGrid: 0, then tMin … T geometrically.
func TestGeometricGrid(t *testing.T) {
	g, err := GeometricGrid(0.01, 1, 3)
	require.NoError(t, err)
	assert.InDeltaSlice(t, []float64{0, 0.01, 0.1, 1}, g, 1e-15)
	g, err = GeometricGrid(0.01, 1, 1)
	require.NoError(t, err)
	assert.Equal(t, []float64{0, 1}, g)
	_, err = GeometricGrid(2, 1, 3)
	assert.ErrorContains(t, err, "tMin < T")
	_, err = GeometricGrid(0, 1, 3)
	assert.ErrorContains(t, err, "tMin < T")
	_, err = GeometricGrid(0.1, 1, 0)
	assert.ErrorContains(t, err, "K = 0")
}

// RTK and DDPM refuse bad input with errors that say what is wrong.
func TestRTKAndDDPMRejectBadInput(t *testing.T) {
	tg := gmmTarget(t, mixture2)
	for _, c := range []struct {
		name string
		n    int
		cfg  RTKConfig
		want string
	}{
		{"zero chains", 0, RTKConfig{Inner: MethodMALA}, "n = 0"},
		{"no inner", 5, RTKConfig{}, "no inner sampler"},
		{"unknown inner", 5, RTKConfig{Inner: "hmc"}, `unknown inner sampler "hmc"`},
		{"decreasing grid", 5, RTKConfig{Inner: MethodMALA, Grid: []float64{0, 2, 1}}, "grid[2] = 1 ≤ grid[1] = 2"},
		{"repeated time", 5, RTKConfig{Inner: MethodMALA, Grid: []float64{0, 1, 1, 3}}, "must increase strictly"},
		{"negative start", 5, RTKConfig{Inner: MethodMALA, Grid: []float64{-1, 1}}, "t_0 ≥ 0"},
		{"NaN time", 5, RTKConfig{Inner: MethodMALA, Grid: []float64{0, math.NaN(), 2}}, "finite"},
		{"one time", 5, RTKConfig{Inner: MethodMALA, Grid: []float64{1}}, "at least two times"},
		{"grid and horizon", 5, RTKConfig{Inner: MethodMALA, Grid: []float64{0, 1}, Horizon: 3}, "not both"},
		{"horizon", 5, RTKConfig{Inner: MethodMALA, Horizon: -1}, "horizon T = -1"},
		{"segments", 5, RTKConfig{Inner: MethodMALA, Segments: -2}, "segments = -2"},
		{"inner steps", 5, RTKConfig{Inner: MethodMALA, InnerSteps: -1}, "inner steps = -1"},
		{"step scale", 5, RTKConfig{Inner: MethodMALA, InnerStepScale: math.NaN()}, "inner step scale"},
		{"step sizes length", 5, RTKConfig{Inner: MethodMALA, InnerStepSizes: []float64{0.1}}, "1 values for 5 segments"},
		{"step size ≤ 0", 5, RTKConfig{Inner: MethodULD, Grid: []float64{0, 1}, InnerStepSizes: []float64{0}}, "inner step sizes[0] = 0"},
		{"friction", 5, RTKConfig{Inner: MethodULD, Friction: -1}, "friction γ = -1"},
		{"init", 5, RTKConfig{Inner: MethodULD, InnerInit: "zero"}, `unknown inner start "zero"`},
	} {
		res, err := RTK(ops.CPU(), tg, c.n, tensor.F64, c.cfg)
		assert.Nil(t, res, c.name)
		if assert.Error(t, err, c.name) {
			assert.Contains(t, err.Error(), c.want, c.name)
		}
	}
	_, err := RTK(nil, tg, 5, tensor.F64, RTKConfig{Inner: MethodMALA})
	assert.ErrorContains(t, err, "nil backend")
	_, err = RTK(ops.CPU(), nil, 5, tensor.F64, RTKConfig{Inner: MethodMALA})
	assert.ErrorContains(t, err, "nil target")
	_, err = RTK(ops.CPU(), tg, 5, tensor.DType(9), RTKConfig{Inner: MethodMALA})
	assert.ErrorContains(t, err, "dtype")

	for _, c := range []struct {
		name string
		n    int
		cfg  DDPMConfig
		want string
	}{
		{"zero steps", 5, DDPMConfig{}, "steps = 0"},
		{"zero chains", 0, DDPMConfig{Steps: 10}, "n = 0"},
		{"decreasing grid", 5, DDPMConfig{Grid: []float64{0, 3, 2}}, "must increase strictly"},
		{"grid and steps", 5, DDPMConfig{Grid: []float64{0, 1}, Steps: 3}, "not both"},
		{"thin", 5, DDPMConfig{Steps: 3, Thin: 4}, "thin = 4"},
		{"horizon", 5, DDPMConfig{Steps: 3, Horizon: math.Inf(1)}, "horizon T = +Inf"},
	} {
		res, err := DDPM(ops.CPU(), tg, c.n, tensor.F64, c.cfg)
		assert.Nil(t, res, c.name)
		if assert.Error(t, err, c.name) {
			assert.Contains(t, err.Error(), c.want, c.name)
			assert.Contains(t, err.Error(), "ddpm", c.name)
		}
	}
}

// f32 runs use the f32 random stream and give the same distribution (a smoke test of the dtype
// path: weights within the RTK-MALA allowance).
func TestRTKFloat32(t *testing.T) {
	res, err := RTK(ops.CPU(), gmmTarget(t, mixture2), 1500, tensor.F32, RTKConfig{Inner: MethodMALA, Seed: 81})
	require.NoError(t, err)
	defer res.Close()
	assert.Equal(t, tensor.F32, res.Samples.DType())
	assertMixture(t, mixture2, res, mixtureAllowance{0.02, 0.05}, "rtk-mala f32")
}
