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

// The low-dimension grid has the documented shape: ends 0, δ, 1 − δ, 1, symmetry t_{K−i} = 1 − t_i,
// and steps h_i = (ρ − 1) t_i below ½ and (ρ − 1)(1 − t_{i+1}) above, ρ = (1/(2δ))^{2/(K−2)}.
func TestLowDimGridShape(t *testing.T) {
	for _, tc := range []struct {
		k    int
		tMin float64
	}{{3, 1e-3}, {4, 1e-3}, {9, 1e-2}, {64, 1e-3}, {65, 1e-4}} {
		g, err := LowDimGrid(tc.k, tc.tMin)
		require.NoError(t, err)
		require.Len(t, g, tc.k+1)
		assert.Equal(t, 0.0, g[0])
		assert.Equal(t, 1.0, g[tc.k])
		assert.InDelta(t, tc.tMin, g[1], 1e-15)
		assert.InDelta(t, 1-tc.tMin, g[tc.k-1], 1e-15)
		rho := math.Pow(1/(2*tc.tMin), 2/float64(tc.k-2))
		for i := 0; i < tc.k; i++ {
			require.Greater(t, g[i+1], g[i], "K = %d: t_%d", tc.k, i+1)
			assert.InDelta(t, 1, g[i]+g[tc.k-i], 1e-12, "K = %d: symmetry at %d", tc.k, i)
			if i == 0 || i == tc.k-1 {
				continue
			}
			h := g[i+1] - g[i]
			switch {
			case g[i+1] <= 0.5+1e-12:
				assert.InDelta(t, rho-1, h/g[i], 1e-9*rho, "K = %d: step %d below ½", tc.k, i)
			case g[i] >= 0.5-1e-12:
				assert.InDelta(t, rho-1, h/(1-g[i+1]), 1e-9*rho, "K = %d: step %d above ½", tc.k, i)
			}
		}
	}
}

// gaussianRF is data N(μ, s² I) in d = 3 as a one-component mixture. Rectified flow maps x0 to
// μ + s x0 (the velocity is affine in x and keeps the law Gaussian, see RectifiedFlow).
var gaussianRF = struct {
	mean []float64
	s    float64
}{[]float64{1, -2, 0.5}, 0.5}

func gaussianRFTarget(t testing.TB) target.GMM {
	return gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{gaussianRF.mean}, Vars: []float64{gaussianRF.s * gaussianRF.s}})
}

// flowMapError runs the Euler sampler on the Gaussian and returns x_K − (μ + s x0) (row-major over
// 16 chains), x0 being the trace's first row, and x_K minus the Euler recursion computed here on
// the host in float64 from the same x0 with the closed-form denoiser of N(μ, s² I),
// D(x; t) = μ + t s² (x − tμ)/(t² s² + (1 − t)²).
func flowMapError(t *testing.T, cfg RFConfig, dt tensor.DType) (flow, euler []float64) {
	t.Helper()
	cfg.Seed, cfg.Trajectory = 5, true
	res, err := RectifiedFlow(ops.CPU(), gaussianRFTarget(t), 16, dt, cfg)
	require.NoError(t, err)
	defer res.Close()
	tr, err := res.Trace.Float64s()
	require.NoError(t, err)
	x, err := res.Samples.Float64s()
	require.NoError(t, err)
	grid, err := RFTimes(RFConfig{Grid: cfg.Grid, Steps: cfg.Steps})
	require.NoError(t, err)
	d, s2 := len(gaussianRF.mean), gaussianRF.s*gaussianRF.s
	flow, euler = make([]float64, len(x)), make([]float64, len(x))
	for i := range x {
		mu := gaussianRF.mean[i%d]
		flow[i] = x[i] - (mu + gaussianRF.s*tr[i])
		y := tr[i]
		for k := 0; k+1 < len(grid); k++ {
			t0 := grid[k]
			den := mu + t0*s2*(y-t0*mu)/(t0*t0*s2+(1-t0)*(1-t0))
			y += (grid[k+1] - t0) * (den - y) / (1 - t0)
		}
		euler[i] = x[i] - y
	}
	return flow, euler
}

func maxAbs(v []float64) float64 {
	m := 0.0
	for _, e := range v {
		m = math.Max(m, math.Abs(e))
	}
	return m
}

// Euler converges to the exact flow map at order one: doubling K halves the error (ratios of
// consecutive max errors within 10% of 2 on the uniform grid, 20% on the low-dimension grid,
// whose first step [0, δ] does not shrink with K), and the Richardson extrapolation
// 2 e_{2K} − e_K of the signed errors — the limit of Euler as K → ∞ minus the flow map, up to
// O(1/K²) — is below 2% of e_K at K = 800: the limit is the flow map. Every run equals the Euler
// recursion computed independently on the host within rounding (10⁻¹² in float64; 2·10⁻⁵ in
// float32 over 1600 steps, whose start is float32's own normals).
func TestRFEulerConvergesToGaussianFlowMap(t *testing.T) {
	for _, tc := range []struct {
		grid  string
		ratio float64
	}{{RFGridUniform, 0.1}, {RFGridLowDim, 0.2}} {
		t.Run(tc.grid, func(t *testing.T) {
			var errs [][]float64
			var maxes []float64
			for _, k := range []int{100, 200, 400, 800, 1600} {
				e, eu := flowMapError(t, RFConfig{Grid: tc.grid, Steps: k}, tensor.F64)
				assert.Less(t, maxAbs(eu), 1e-12, "K = %d: run − host Euler", k)
				errs = append(errs, e)
				maxes = append(maxes, maxAbs(e))
			}
			for i := 1; i < len(maxes); i++ {
				assert.InDelta(t, 2, maxes[i-1]/maxes[i], 2*tc.ratio, "max errors %v", maxes)
			}
			e800, e1600 := errs[3], errs[4]
			rich := make([]float64, len(e800))
			for i := range rich {
				rich[i] = 2*e1600[i] - e800[i]
			}
			assert.Less(t, maxAbs(rich), 0.02*maxes[3], "extrapolated limit − flow map (max errors %v)", maxes)
			_, eu32 := flowMapError(t, RFConfig{Grid: tc.grid, Steps: 1600}, tensor.F32)
			assert.Less(t, maxAbs(eu32), 2e-5, "float32 run − host Euler")
		})
	}
}

// One Euler step from t = 0 to 1 lands every chain on the data mean: v(x, 0) = E[x1] − x.
func TestRFOneStepGivesTheDataMean(t *testing.T) {
	spec := ops.GMMSpec{Weights: []float64{1, 3}, Means: [][]float64{{-4, 2}, {4, 6}}, Vars: []float64{1, 0.5}}
	points := [][]float64{{0, 1}, {2, 5}, {-1, 0}}
	data := fromRows(t, tensor.F64, points)
	set, err := ops.NewEmpirical(data)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		tg   target.Target
		mean []float64
	}{
		{"gmm", gmmTarget(t, spec), []float64{2, 5}},
		{"empirical", target.Empirical{DataSet: set}, []float64{1.0 / 3, 2}},
	} {
		res, err := RectifiedFlow(ops.CPU(), tc.tg, 5, tensor.F64, RFConfig{Steps: 1})
		require.NoError(t, err, tc.name)
		for _, row := range hostRows(t, res.Samples) {
			assert.InDeltaSlice(t, tc.mean, row, 1e-12, tc.name)
		}
		assert.Zero(t, res.ScoreEvals, "%s: the t = 0 velocity is closed form", tc.name)
		res.Close()
	}
}

// The stochastic step is exact for a point mass (D constant): its marginal at every grid time t
// is N(t μ, (1 − t)² I). With data N(μ, 10⁻¹² I) every row of the trajectory of 4000 chains
// matches that law's mean and variance within zSE standard errors (mean: (1 − t)/√n, variance:
// (1 − t)² sqrt(2/n)) plus 10⁻⁶ for the variance left in the data.
func TestStochasticRFIsExactForAPointMass(t *testing.T) {
	mu := []float64{2, -1}
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{mu}, Vars: []float64{1e-12}})
	const n = 4000
	for _, grid := range []string{RFGridUniform, RFGridLowDim} {
		res, err := RectifiedFlow(ops.CPU(), tg, n, tensor.F64, RFConfig{Grid: grid, Steps: 12, Stochastic: true, Seed: 17, Trajectory: true})
		require.NoError(t, err)
		times, err := RFTimes(RFConfig{Grid: grid, Steps: 12})
		require.NoError(t, err)
		tr, err := res.Trace.Float64s()
		require.NoError(t, err)
		for k, tk := range times {
			for j := range mu {
				m, v := 0.0, 0.0
				for i := 0; i < n; i++ {
					m += tr[(k*n+i)*2+j] / n
				}
				for i := 0; i < n; i++ {
					e := tr[(k*n+i)*2+j] - m
					v += e * e / n
				}
				sd := 1 - tk
				assert.InDelta(t, tk*mu[j], m, zSE*sd/math.Sqrt(n)+1e-6, "%s: mean at t = %g", grid, tk)
				assert.InDelta(t, sd*sd, v, zSE*sd*sd*math.Sqrt(2.0/n)+1e-6, "%s: variance at t = %g", grid, tk)
			}
		}
		res.Close()
	}
}

// Rectified flow with the exact velocity samples a two-mode mixture: mode weights within zSE
// binomial standard errors plus 0.01, component means and covariances within zSE standard errors
// plus 10% of the standard deviations (the Euler bias at 100 steps; see mixtureErrors), for the
// Euler sampler on both grids and for the stochastic sampler, in both dtypes.
func TestRFSamplesMixture(t *testing.T) {
	tg := gmmTarget(t, mixture2)
	for _, tc := range []struct {
		cfg RFConfig
		dt  tensor.DType
	}{
		{RFConfig{Grid: RFGridUniform, Steps: 100}, tensor.F64},
		{RFConfig{Grid: RFGridLowDim, Steps: 100}, tensor.F64},
		{RFConfig{Grid: RFGridLowDim, Steps: 100, Stochastic: true}, tensor.F64},
		{RFConfig{Grid: RFGridLowDim, Steps: 100}, tensor.F32},
	} {
		tc.cfg.Seed = 31
		res, err := RectifiedFlow(ops.CPU(), tg, 4000, tc.dt, tc.cfg)
		require.NoError(t, err)
		assert.Empty(t, mixtureErrors(mixture2, hostRows(t, res.Samples), mixtureAllowance{weight: 0.01, moments: 0.1}), "%+v %v", tc.cfg, tc.dt)
		assert.Zero(t, res.NaN.Chains)
		assert.Equal(t, int64(4000*99), res.ScoreEvals, "K − 1 evaluations per chain")
		assert.Equal(t, int64(99), res.ScoreCalls)
		res.Close()
	}
}

// With a data set the exact flow ends on the data points (memorisation): every sample lies within
// 10⁻⁶ of a point, and each of the 5 points takes 1/5 of the 2000 chains within zSE binomial
// standard errors.
func TestRFEmpiricalEndsOnDataPoints(t *testing.T) {
	points := [][]float64{{0, 0}, {3, 0}, {0, 3}, {3, 3}, {-3, 1}}
	set, err := ops.NewEmpirical(fromRows(t, tensor.F64, points))
	require.NoError(t, err)
	const n = 2000
	for _, stochastic := range []bool{false, true} {
		res, err := RectifiedFlow(ops.CPU(), target.Empirical{DataSet: set}, n, tensor.F64, RFConfig{Grid: RFGridLowDim, Steps: 40, Stochastic: stochastic, Seed: 3})
		require.NoError(t, err)
		counts := make([]float64, len(points))
		for _, row := range hostRows(t, res.Samples) {
			best, bd := 0, math.Inf(1)
			for k, p := range points {
				if dd := math.Hypot(row[0]-p[0], row[1]-p[1]); dd < bd {
					best, bd = k, dd
				}
			}
			require.Less(t, bd, 1e-6, "stochastic %v: sample %v", stochastic, row)
			counts[best]++
		}
		for k, c := range counts {
			assert.InDelta(t, 0.2, c/n, zSE*math.Sqrt(0.16/n), "stochastic %v: point %d", stochastic, k)
		}
		res.Close()
	}
}

// The trajectory holds K + 1 states from the N(0, I) start to the samples; splitting the chains
// into two batches with FirstChain reproduces the single run exactly.
func TestRFTrajectoryAndBatches(t *testing.T) {
	tg := gmmTarget(t, mixture2)
	cfg := RFConfig{Grid: RFGridLowDim, Steps: 10, Stochastic: true, Seed: 9, Trajectory: true}
	all, err := RectifiedFlow(ops.CPU(), tg, 6, tensor.F64, cfg)
	require.NoError(t, err)
	defer all.Close()
	assert.Equal(t, []int{11, 6, 2}, all.Trace.Shape())
	assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, all.TraceSteps)
	tr, err := all.Trace.Float64s()
	require.NoError(t, err)
	assert.Equal(t, flatten(hostRows(t, all.Samples)), tr[10*12:])
	z, err := tensor.New(nil, tensor.F64, 6, 2)
	require.NoError(t, err)
	require.NoError(t, ops.CPU().Normal(z, drawAt(9, 0, PurposeInit, 0)))
	assert.Equal(t, flatten(hostRows(t, z)), tr[:12], "row 0 is the N(0, I) start")

	cfg.Trajectory = false
	cfg.FirstChain = 4
	tail, err := RectifiedFlow(ops.CPU(), tg, 2, tensor.F64, cfg)
	require.NoError(t, err)
	defer tail.Close()
	assert.Equal(t, hostRows(t, all.Samples)[4:], hostRows(t, tail.Samples))
}

func flatten(rows [][]float64) []float64 {
	var out []float64
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

// unknownTarget is a target whose mean rectified flow cannot know.
type unknownTarget struct{ target.GMM }

func TestRFRejectsBadInput(t *testing.T) {
	tg := gaussianRFTarget(t)
	for _, tc := range []struct {
		name string
		b    ops.Backend
		tg   target.Target
		n    int
		cfg  RFConfig
		want string
	}{
		{"nil backend", nil, tg, 4, RFConfig{Steps: 4}, "nil backend"},
		{"nil target", ops.CPU(), nil, 4, RFConfig{Steps: 4}, "nil target"},
		{"no chains", ops.CPU(), tg, 0, RFConfig{Steps: 4}, "need at least one chain"},
		{"no steps", ops.CPU(), tg, 4, RFConfig{}, "steps = 0"},
		{"negative steps", ops.CPU(), tg, 4, RFConfig{Steps: -2}, "steps = -2"},
		{"unknown grid", ops.CPU(), tg, 4, RFConfig{Grid: "cosine", Steps: 4}, `unknown grid "cosine"`},
		{"lowdim too short", ops.CPU(), tg, 4, RFConfig{Grid: RFGridLowDim, Steps: 2}, "need at least 3"},
		{"tMin too large", ops.CPU(), tg, 4, RFConfig{Grid: RFGridLowDim, Steps: 8, TMin: 0.5}, "tMin δ = 0.5"},
		{"tMin negative", ops.CPU(), tg, 4, RFConfig{Grid: RFGridLowDim, Steps: 8, TMin: -1}, "tMin δ = -1"},
		{"tMin on uniform", ops.CPU(), tg, 4, RFConfig{Steps: 8, TMin: 0.01}, "only the \"lowdim\" grid"},
		{"times and steps", ops.CPU(), tg, 4, RFConfig{Steps: 2, Times: []float64{0, 1}}, "either Times"},
		{"one time", ops.CPU(), tg, 4, RFConfig{Times: []float64{0}}, "at least two"},
		{"times not from 0", ops.CPU(), tg, 4, RFConfig{Times: []float64{0.1, 1}}, "from t = 0"},
		{"times not to 1", ops.CPU(), tg, 4, RFConfig{Times: []float64{0, 0.9}}, "to t = 1"},
		{"times not increasing", ops.CPU(), tg, 4, RFConfig{Times: []float64{0, 0.5, 0.5, 1}}, "increase strictly"},
		{"NaN time", ops.CPU(), tg, 4, RFConfig{Times: []float64{0, math.NaN(), 1}}, "finite"},
		{"chains out of range", ops.CPU(), tg, 4, RFConfig{Steps: 4, FirstChain: ops.MaxChains - 2}, "below 2^32"},
		{"unknown target", ops.CPU(), unknownTarget{tg}, 4, RFConfig{Steps: 4}, "only for Gaussian mixtures, data sets and networks"},
	} {
		res, err := RectifiedFlow(tc.b, tc.tg, tc.n, tensor.F64, tc.cfg)
		assert.Nil(t, res, tc.name)
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), tc.want, tc.name)
		assert.Contains(t, err.Error(), "rectified flow", tc.name)
	}
	_, err := RFConfigFor("rf-heun", 10)
	require.ErrorContains(t, err, `unknown method "rf-heun"`)
	for _, m := range []string{MethodRF, MethodRFLowDim, MethodRFStochastic} {
		cfg, err := RFConfigFor(m, 10)
		require.NoError(t, err)
		assert.Equal(t, m == MethodRFStochastic, cfg.Stochastic, m)
		assert.Equal(t, m != MethodRF, cfg.Grid == RFGridLowDim, m)
	}
}

// BenchmarkRectifiedFlow times whole runs (32 steps on the low-dimension grid, 31 denoiser
// evaluations per chain) on the CPU reference, for the two-mode mixture in d = 2.
func BenchmarkRectifiedFlow(b *testing.B) {
	tg := gmmTarget(b, mixture2)
	for _, n := range []int{256, 4096} {
		for _, stochastic := range []bool{false, true} {
			b.Run(fmt.Sprintf("n=%d/stochastic=%v", n, stochastic), func(b *testing.B) {
				cfg := RFConfig{Grid: RFGridLowDim, Steps: 32, Stochastic: stochastic}
				for i := 0; i < b.N; i++ {
					res, err := RectifiedFlow(ops.CPU(), tg, n, tensor.F32, cfg)
					if err != nil {
						b.Fatal(err)
					}
					res.Close()
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
			})
		}
	}
}

// Step counts beyond MaxDiffusionSteps are refused before any grid is allocated.
func TestRFTimesBoundsSteps(t *testing.T) {
	for _, grid := range []string{RFGridUniform, RFGridLowDim} {
		_, err := RFTimes(RFConfig{Grid: grid, Steps: MaxDiffusionSteps + 1})
		require.Error(t, err, grid)
		assert.Contains(t, err.Error(), "at most", grid)
	}
}
