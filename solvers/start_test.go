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

// farMixture is a 2-D mixture whose modes lie far from the origin (|μ| up to ≈ 9), unit
// variances, unequal weights: the case where a centred Gaussian start is visibly wrong.
func farMixture(t testing.TB) target.GMM {
	return gmmTarget(t, ops.GMMSpec{
		Weights: []float64{0.3, 0.25, 0.2, 0.15, 0.1},
		Means:   [][]float64{{8, 4}, {5, 7}, {9, -1}, {3, 8}, {7, 1}},
		Vars:    []float64{1, 1, 1, 1, 1},
	})
}

// sampleMoments are the mean and the mode weights of samples of g, with their standard errors
// under exact sampling (from the exact law's variance and the multinomial variances).
type sampleMoments struct {
	mean, meanSE []float64
	modes        []float64
}

func momentsOf(t testing.TB, x []float64, g *ops.GMM) sampleMoments {
	t.Helper()
	d := g.Dim()
	n := len(x) / d
	m := sampleMoments{mean: make([]float64, d), meanSE: make([]float64, d), modes: ModeWeights(x, d, g)}
	exact, err := SampleGMM(g, 200000, 99)
	require.NoError(t, err)
	for j := 0; j < d; j++ {
		var s, e, e2 float64
		for i := 0; i < n; i++ {
			s += x[i*d+j]
		}
		for i := 0; i < len(exact)/d; i++ {
			e += exact[i*d+j]
			e2 += exact[i*d+j] * exact[i*d+j]
		}
		ne := float64(len(exact) / d)
		v := e2/ne - (e/ne)*(e/ne)
		m.mean[j] = s / float64(n)
		m.meanSE[j] = math.Sqrt(v / float64(n))
	}
	return m
}

// checkExactLaw asserts that samples of g have its mean and mode weights within z standard
// errors (plus slack, for a method's own discretisation bias) and returns the largest deviation in
// standard errors.
func checkExactLaw(t *testing.T, x []float64, g *ops.GMM, z, slack float64, what string) float64 {
	t.Helper()
	m := momentsOf(t, x, g)
	p := g.Params()
	n := float64(len(x) / g.Dim())
	mu := make([]float64, g.Dim())
	for k, lw := range p.LogWeights {
		for j := range mu {
			mu[j] += math.Exp(lw) * p.Means[k*g.Dim()+j]
		}
	}
	worst := 0.0
	for j := range mu {
		dev := math.Abs(m.mean[j]-mu[j]) / m.meanSE[j]
		worst = math.Max(worst, dev)
		assert.LessOrEqual(t, math.Abs(m.mean[j]-mu[j]), z*m.meanSE[j]+slack, "%s: mean[%d] = %.4f, exact %.4f (%.1f standard errors)",
			what, j, m.mean[j], mu[j], dev)
	}
	for k, lw := range p.LogWeights {
		w := math.Exp(lw)
		se := math.Sqrt(w * (1 - w) / n)
		dev := math.Abs(m.modes[k]-w) / se
		worst = math.Max(worst, dev)
		assert.LessOrEqual(t, math.Abs(m.modes[k]-w), z*se+slack, "%s: mode %d weight %.4f, exact %.4f (%.1f standard errors)",
			what, k, m.modes[k], w, dev)
	}
	return worst
}

// farRuns are the diffusion and flow samplers of the package on the far mixture, each with enough
// steps that its discretisation error is small next to the Monte-Carlo error of n chains; a short
// horizon makes the prior start's bias large enough to see: σ_max = 20 for the deterministic
// solvers, σ_max = 5 for the stochastic ones and T = 1 for the OU samplers (their noise forgets
// much of the start, which hides a bias at a long horizon without removing it).
func farRuns(tg target.GMM, n int, init string) map[string]func() (*Result, error) {
	b := ops.CPU()
	runs := map[string]func() (*Result, error){}
	for _, m := range DiffusionMethods() {
		steps := 40
		switch m {
		case MethodEuler, MethodDDIM, MethodDDPM:
			steps = 120
		}
		sigmaMax := 20.0
		if m == MethodEDMSDE || m == MethodDDPM {
			sigmaMax = 5
		}
		cfg := DiffusionConfig{Method: m, Steps: steps, SigmaMax: sigmaMax, Seed: 5, Init: init}
		runs[m] = func() (*Result, error) { return Diffusion(b, TargetDenoiser(tg), n, tensor.F64, cfg) }
	}
	runs["ddpm-ou"] = func() (*Result, error) {
		grid, err := GeometricGrid(1e-3, 1, 150)
		if err != nil {
			return nil, err
		}
		return DDPM(b, tg, n, tensor.F64, DDPMConfig{Grid: grid, Seed: 5, Init: init})
	}
	for _, inner := range []string{MethodMALA, MethodULD} {
		cfg := RTKConfig{Inner: inner, Horizon: 1, Segments: 10, InnerSteps: 20, Seed: 5, Init: init}
		runs["rtk-"+inner] = func() (*Result, error) { return RTK(b, tg, n, tensor.F64, cfg) }
	}
	for _, m := range []string{MethodRF, MethodRFLowDim, MethodRFStochastic} {
		cfg, _ := RFConfigFor(m, 200)
		cfg.Seed = 5
		runs[m] = func() (*Result, error) { return RectifiedFlow(b, tg, n, tensor.F64, cfg) }
	}
	return runs
}

// Every diffusion and flow method, started from the exact noised law (the default), samples a
// mixture far from the origin with the right mean and mode weights; the textbook Gaussian start
// (InitPrior) misses them by many standard errors on the same runs — the bias this default
// removes (except edm-sde, whose churn forgets the start by itself). (Rectified flow starts at t = 0, where the law is N(0, I) exactly: it has no start
// bias to remove and is checked only with the exact law.)
func TestExactStartRemovesFarFromOriginBias(t *testing.T) {
	if testing.Short() {
		t.Skip("samples 14 methods")
	}
	tg := farMixture(t)
	const n = 3000
	exact := farRuns(tg, n, InitExact)
	prior := farRuns(tg, n, InitPrior)
	for _, name := range sortedKeys(exact) {
		res, err := exact[name]()
		require.NoError(t, err, name)
		x, err := res.Samples.Float64s()
		require.NoError(t, err)
		res.Close()
		worst := checkExactLaw(t, x, tg.Mixture, 4.5, 0.02, name+", exact start")
		if _, isRF := map[string]bool{MethodRF: true, MethodRFLowDim: true, MethodRFStochastic: true}[name]; isRF {
			t.Logf("%-14s exact start: worst %.1f standard errors", name, worst)
			continue
		}
		res, err = prior[name]()
		require.NoError(t, err, name)
		xp, err := res.Samples.Float64s()
		require.NoError(t, err)
		res.Close()
		pm := momentsOf(t, xp, tg.Mixture)
		em := momentsOf(t, x, tg.Mixture)
		shift := math.Hypot(pm.mean[0]-em.mean[0], pm.mean[1]-em.mean[1]) / math.Hypot(em.meanSE[0], em.meanSE[1])
		t.Logf("%-14s exact start: worst %.1f standard errors; prior start moves the mean by %.1f", name, worst, shift)
		if name == MethodEDMSDE {
			continue // its churn re-noises every level up to σ_max: it forgets the start by itself
		}
		assert.Greater(t, shift, 5.0, "%s: the prior start must be visibly biased here, or this test cannot see the bias", name)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

// SampleNoised draws the exact noised law: for a mixture its moments (mean a·E x0, covariance
// a² Cov x0 + s I); for a data set the data point plus noise; chain i is a pure function of
// (seed, first + i).
func TestSampleNoised(t *testing.T) {
	tg := farMixture(t)
	const n = 100000
	a, s := 0.6, 2.0
	x, err := SampleNoised(tg, n, a, s, 7, 0)
	require.NoError(t, err)
	exact, err := SampleGMM(tg.Mixture, n, 8)
	require.NoError(t, err)
	for j := 0; j < 2; j++ {
		var m, v, me, ve float64
		for i := 0; i < n; i++ {
			m += x[2*i+j]
			me += exact[2*i+j]
		}
		m, me = m/n, me/n
		for i := 0; i < n; i++ {
			v += (x[2*i+j] - m) * (x[2*i+j] - m)
			ve += (exact[2*i+j] - me) * (exact[2*i+j] - me)
		}
		v, ve = v/n, ve/n
		wantV := a*a*ve + s
		se := math.Sqrt(wantV / n)
		assert.InDelta(t, a*me, m, 5*se*math.Sqrt2, "mean[%d]", j)
		// Var of the sample variance ≈ 2σ⁴/n for near-Gaussian marginals; the mixture's tails make
		// it larger: 6σ⁴/n is the budget.
		assert.InDelta(t, wantV, v, 5*math.Sqrt(6*wantV*wantV/n), "variance[%d]", j)
	}
	// Split invariance.
	tail, err := SampleNoised(tg, 10, a, s, 7, n-10)
	require.NoError(t, err)
	assert.Equal(t, x[2*(n-10):], tail)

	// A data set of two points: every sample is a point plus N(0, s) noise, a times it.
	data, _ := tensor.FromF64([]float64{10, 0, -10, 0}, 2, 2)
	e, err := ops.NewEmpirical(data)
	require.NoError(t, err)
	y, err := SampleNoised(target.Empirical{DataSet: e}, 4000, 0.5, 0.01, 3, 0)
	require.NoError(t, err)
	left := 0
	for i := 0; i < 4000; i++ {
		c := 5.0
		if y[2*i] < 0 {
			c = -5
			left++
		}
		require.InDelta(t, c, y[2*i], 0.6, "sample %d", i)
		require.InDelta(t, 0, y[2*i+1], 0.6, "sample %d", i)
	}
	assert.InDelta(t, 2000, left, 5*math.Sqrt(1000), "each point half the time")

	_, err = SampleNoised(tg, 3, 1, -1, 0, 0)
	assert.ErrorContains(t, err, "variance")
	_, err = SampleNoised(nil, 3, 1, 1, 0, 0)
	assert.Error(t, err)
}

// Splitting the chains of a run that starts from the exact law reproduces the unsplit run.
func TestExactStartIsSplitInvariant(t *testing.T) {
	tg := farMixture(t)
	b := ops.CPU()
	for _, m := range []string{MethodHeun, MethodEDMSDE} {
		all, err := Diffusion(b, TargetDenoiser(tg), 9, tensor.F64, DiffusionConfig{Method: m, Steps: 6, Seed: 4})
		require.NoError(t, err)
		tail, err := Diffusion(b, TargetDenoiser(tg), 4, tensor.F64, DiffusionConfig{Method: m, Steps: 6, Seed: 4, FirstChain: 5})
		require.NoError(t, err)
		a, _ := all.Samples.Float64s()
		bt, _ := tail.Samples.Float64s()
		assert.Equal(t, a[5*2:], bt, fmt.Sprintf("%s: chains 5..8", m))
		all.Close()
		tail.Close()
	}
}
