package solvers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

func runSGDWOR(t testing.TB, f Objective, x0 *tensor.Tensor, cfg SGDWORConfig) *SGDWORResult {
	t.Helper()
	res, err := SGDWOR(ops.CPU(), f, x0, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { res.Close() })
	return res
}

// The increments that SGDWOR feeds its recursion sum to zero over every epoch (the bridge: the
// noise of one pass without replacement adds up to nothing), to round-off, while plain Brownian
// increments do not; and with f = 0 the solver's state is exactly θ_0 + σ Σ_k u_{t_k} ΔB̃_k with
// those increments (the layout: chain i, coordinate j reads path i·d + j).
func TestSGDWORNoiseOfAnEpochSumsToZero(t *testing.T) {
	const n, d, m, epochs = 7, 3, 40, 5
	const h, sigma, beta = 0.01, 0.9, 0.6
	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		t.Run(dt.String(), func(t *testing.T) {
			cfg := SGDWORConfig{Beta: beta, StepSize: h, Sigma: sigma, Steps: m * epochs, Epoch: m * h, Seed: 5}
			cfg, err := cfg.validate()
			require.NoError(t, err)
			require.Equal(t, m, cfg.EpochSteps())
			src := &brownianSource{b: ops.CPU(), cfg: cfg, d: d, dt: dt}
			defer src.close()
			xi, err := src.generate(0, n)
			require.NoError(t, err)
			plainCfg := cfg
			plainCfg.Epoch = 0
			plain := &brownianSource{b: ops.CPU(), cfg: plainCfg, d: d, dt: dt}
			defer plain.close()
			xiPlain, err := plain.generate(0, n)
			require.NoError(t, err)

			steps := cfg.Steps
			// Round-off: the increments are differences of float64 bridge values of size ~√m,
			// rounded once to dt; their sum over an epoch is zero up to m roundings of that size.
			eps := 1e-16
			if dt == tensor.F32 {
				eps = 6e-8
			}
			tol := float64(m) * 4 * math.Sqrt(m) * eps
			largestPlain := 0.0
			for p := 0; p < n*d; p++ {
				for e := 0; e < epochs; e++ {
					sum, sumPlain, abs := 0.0, 0.0, 0.0
					for k := e * m; k < (e+1)*m; k++ {
						sum += xi[p*steps+k]
						sumPlain += xiPlain[p*steps+k]
						abs += math.Abs(xi[p*steps+k])
					}
					require.Greater(t, abs, 1.0, "path %d epoch %d: the increments are not trivially zero", p, e)
					require.LessOrEqual(t, math.Abs(sum), tol, "path %d epoch %d: the bridge's increments sum to %g", p, e, sum)
					largestPlain = math.Max(largestPlain, math.Abs(sumPlain))
				}
			}
			// Plain sums are N(0, m): over 105 of them the largest exceeds 1 but for a
			// probability below 1e−40.
			assert.Greater(t, largestPlain, 1.0, "plain Brownian increments do not sum to zero")

			if dt != tensor.F64 {
				return // the solver below draws in x0's dtype, f64
			}
			// The solver, with f = 0, adds up exactly these increments with the gain u_{t_k}.
			flat := mustQuadratic(t, make([]float64, d), nil)
			rng := rand.New(rand.NewPCG(3, 4))
			rows := make([][]float64, n)
			for i := range rows {
				rows[i] = []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
			}
			res := runSGDWOR(t, flat, fromRows(t, tensor.F64, rows), SGDWORConfig{Beta: beta, StepSize: h,
				Sigma: sigma, Steps: steps, Epoch: m * h, Seed: 5})
			got, err := res.Final.Float64s()
			require.NoError(t, err)
			for i := 0; i < n; i++ {
				for j := 0; j < d; j++ {
					want := rows[i][j]
					for k := 0; k < steps; k++ {
						want += sigma * math.Sqrt(h) * SGDWORRate(beta, float64(k)*h) * xi[(i*d+j)*steps+k]
					}
					assert.InDelta(t, want, got[i*d+j], 1e-12, "chain %d coordinate %d", i, j)
				}
			}
		})
	}
}

// On f = ½ a θ² without noise the scheme is Euler for dθ = −a u_t θ dt, whose solution is
// θ_t = θ_0 exp(−a ∫_0^t u): the error at t = 4 is first order in h.
func TestSGDWORQuadraticWithoutNoiseMatchesTheFlow(t *testing.T) {
	a := []float64{1.5, 0.4}
	theta0 := []float64{1, -2}
	q := mustQuadratic(t, a, nil)
	const T = 4.0
	for _, beta := range []float64{0.3, 0.8} {
		var errs []float64
		for _, h := range []float64{0.02, 0.01, 0.005} {
			steps := int(math.Round(T / h))
			res := runSGDWOR(t, q, fromRows(t, tensor.F64, [][]float64{theta0}),
				SGDWORConfig{Beta: beta, StepSize: h, Steps: steps, Epoch: 0.5, Seed: 1})
			got, err := res.Final.Float64s()
			require.NoError(t, err)
			e := 0.0
			for j := range a {
				want := theta0[j] * math.Exp(-a[j]*SGDWORIntegratedRate(beta, T))
				e = math.Max(e, math.Abs(got[j]-want))
			}
			errs = append(errs, e)
		}
		t.Logf("β = %g: max error at h = 0.02, 0.01, 0.005: %.3g", beta, errs)
		for k := 1; k < len(errs); k++ {
			ratio := errs[k-1] / errs[k]
			assert.InDelta(t, 2, ratio, 0.15, "β = %g: halving h divides the error by %.3f, want ≈ 2 (first order)", beta, ratio)
		}
		assert.Less(t, errs[len(errs)-1], 0.01, "β = %g: error at h = 0.005", beta)
	}
}

// sgdworNoiseVariance is the exact variance of σ Σ_{k<K} u_{t_k} ΔB̃_k (the state of a chain on
// f = 0, minus its start): with epochs of m steps Cov(ΔB̃_k, ΔB̃_l) = h(δ_kl − 1/m) within an
// epoch and 0 across, so
//
//	Var = σ² h Σ_epochs [Σ_{k∈e, k<K} u_k² − (1/m)(Σ_{k∈e, k<K} u_k)²]
//
// (the partial last epoch is the start of a full bridge); m = 0: σ² h Σ_k u_k².
func sgdworNoiseVariance(beta, h, sigma float64, m, K int) float64 {
	v, s1, s2 := 0.0, 0.0, 0.0
	for k := 0; k < K; k++ {
		u := SGDWORRate(beta, float64(k)*h)
		s1 += u
		s2 += u * u
		if m > 0 && ((k+1)%m == 0 || k == K-1) {
			v += s2 - s1*s1/float64(m)
			s1, s2 = 0, 0
		}
	}
	if m == 0 {
		v = s2
	}
	return sigma * sigma * h * v
}

// sgdworFlowVariance is the continuous-time counterpart of sgdworNoiseVariance: the variance of
// σ ∫_0^t u dB̃ is σ² Σ_epochs [∫_{e∩[0,t]} u² − (1/τ)(∫_{e∩[0,t]} u)²] (the bridge covariance
// min(s, r) − s r/τ), by quadrature (Simpson, 2000 panels per epoch piece); τ = 0: σ² ∫_0^t u².
func sgdworFlowVariance(beta, tau, sigma, t float64) float64 {
	simpson := func(f func(float64) float64, a, b float64) float64 {
		const n = 2000
		w := (b - a) / n
		s := f(a) + f(b)
		for i := 1; i < n; i++ {
			c := 2.0
			if i%2 == 1 {
				c = 4
			}
			s += c * f(a+float64(i)*w)
		}
		return s * w / 3
	}
	u := func(s float64) float64 { return SGDWORRate(beta, s) }
	u2 := func(s float64) float64 { return u(s) * u(s) }
	if tau == 0 {
		return sigma * sigma * simpson(u2, 0, t)
	}
	v := 0.0
	for a := 0.0; a < t-1e-12; a += tau {
		b := math.Min(a+tau, t)
		i1 := simpson(u, a, b)
		v += simpson(u2, a, b) - i1*i1/tau
	}
	return sigma * sigma * v
}

// With f = 0, θ_t − θ_0 = σ ∫ u dB̃: its variance at an epoch end is only what the variation of u
// inside the epochs leaves (the bridge sums to zero), and inside an epoch it carries the bridge's
// variance structure h(δ_kl − 1/m). The Monte-Carlo variance (mean known: 0) matches the exact
// discrete variance within 4.5 standard errors (SE = Var·√(2/n) for Gaussian samples; two-sided
// false-failure rate ≈ 7e−6 per check, 8 checks), and the discrete variance matches the
// continuous-time one within 2% (an O(h) difference).
func TestSGDWORVarianceInsideAnEpoch(t *testing.T) {
	const n, d = 20000, 2
	const h, tau, sigma, beta = 0.01, 0.5, 0.7, 0.6
	const m = 50 // τ/h
	flat := mustQuadratic(t, make([]float64, d), nil)
	// Times: 1.5 (an epoch end), 1.6, 1.75 (mid-epoch), 1.9.
	checkSteps := []int{150, 160, 175, 190}
	for _, epoch := range []float64{tau, 0} {
		t.Run(fmt.Sprintf("epoch=%g", epoch), func(t *testing.T) {
			res := runSGDWOR(t, flat, constRows(t, tensor.F64, n, make([]float64, d)), SGDWORConfig{Beta: beta,
				StepSize: h, Sigma: sigma, Steps: 190, Epoch: epoch, Seed: 2024, Thin: 5})
			tr, err := res.Trace.Float64s()
			require.NoError(t, err)
			mSteps := 0
			if epoch > 0 {
				mSteps = m
			}
			for _, K := range checkSteps {
				row := tr[(K/5)*n*d : (K/5+1)*n*d]
				ms := 0.0
				for _, v := range row {
					ms += v * v
				}
				ms /= float64(len(row))
				want := sgdworNoiseVariance(beta, h, sigma, mSteps, K)
				flow := sgdworFlowVariance(beta, epoch, sigma, float64(K)*h)
				se := want * math.Sqrt(2/float64(len(row)))
				t.Logf("t = %.2f: MC variance %.5g, exact discrete %.5g (±%.2g), continuous %.5g", float64(K)*h, ms, want, se, flow)
				assert.InDelta(t, want, ms, 4.5*se, "t = %.2f: Monte-Carlo variance", float64(K)*h)
				assert.InEpsilon(t, flow, want, 0.02, "t = %.2f: discrete against continuous variance", float64(K)*h)
			}
		})
	}
	// The two noises are far apart where it matters: at the epoch end t = 1.5 the bridge leaves
	// less than 1% of the plain variance; mid-epoch (t = 1.75) under 10% (here u and τ are small).
	end := sgdworNoiseVariance(beta, h, sigma, m, 150) / sgdworNoiseVariance(beta, h, sigma, 0, 150)
	mid := sgdworNoiseVariance(beta, h, sigma, m, 175) / sgdworNoiseVariance(beta, h, sigma, 0, 175)
	t.Logf("epoched / plain variance: %.3g at t = 1.5, %.3g at t = 1.75", end, mid)
	assert.Less(t, end, 0.01)
	assert.Less(t, mid, 0.1)
}

func TestSGDWORReproducible(t *testing.T) {
	w, err := NewDoubleWell(3, 1)
	require.NoError(t, err)
	const n, steps = 10, 60
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
	}
	for _, epoch := range []float64{0.2, 0} {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
			t.Run(fmt.Sprintf("epoch=%g/%v", epoch, dt), func(t *testing.T) {
				cfg := SGDWORConfig{Beta: 0.5, StepSize: 0.02, Sigma: 0.8, Steps: steps, Epoch: epoch, Seed: 77, Thin: 5}
				final := func(cfg SGDWORConfig, rows [][]float64) ([]float64, []float64) {
					res := runSGDWOR(t, w, fromRows(t, dt, rows), cfg)
					x, err := res.Final.Float64s()
					require.NoError(t, err)
					tr, err := res.Trace.Float64s()
					require.NoError(t, err)
					return x, tr
				}
				whole, wholeTrace := final(cfg, rows)
				again, _ := final(cfg, rows)
				assert.Equal(t, whole, again, "same seed, same result")

				other := cfg
				other.Seed++
				diff, _ := final(other, rows)
				assert.NotEqual(t, whole, diff, "another seed, another result")

				second := cfg
				second.FirstChain = 4
				a, _ := final(cfg, rows[:4])
				b, _ := final(second, rows[4:])
				assert.Equal(t, whole, append(a, b...), "split by FirstChain")

				blocked := cfg
				blocked.NoiseBlock = 1
				x, tr := final(blocked, rows)
				assert.Equal(t, whole, x, "noise in blocks")
				assert.Equal(t, wholeTrace, tr, "noise in blocks (trace)")
			})
		}
	}
}

func TestSGDWORBadInput(t *testing.T) {
	w, err := NewDoubleWell(2, 1)
	require.NoError(t, err)
	good := SGDWORConfig{Beta: 0.5, StepSize: 0.1, Sigma: 1, Steps: 10, Epoch: 0.5}
	x0 := constRows(t, tensor.F64, 3, []float64{-1, 0})
	cases := []struct {
		name string
		edit func(*SGDWORConfig)
		f    Objective
		x0   *tensor.Tensor
		want string
	}{
		{"beta 0", func(c *SGDWORConfig) { c.Beta = 0 }, w, x0, "beta 0: must be in (0, 1)"},
		{"beta 1", func(c *SGDWORConfig) { c.Beta = 1 }, w, x0, "beta 1: must be in (0, 1)"},
		{"beta negative", func(c *SGDWORConfig) { c.Beta = -0.5 }, w, x0, "beta -0.5: must be in (0, 1)"},
		{"beta NaN", func(c *SGDWORConfig) { c.Beta = math.NaN() }, w, x0, "beta NaN"},
		{"step 0", func(c *SGDWORConfig) { c.StepSize = 0 }, w, x0, "step size h = 0"},
		{"step negative", func(c *SGDWORConfig) { c.StepSize = -0.1 }, w, x0, "step size h = -0.1"},
		{"step inf", func(c *SGDWORConfig) { c.StepSize = math.Inf(1) }, w, x0, "step size h = +Inf"},
		{"sigma negative", func(c *SGDWORConfig) { c.Sigma = -1 }, w, x0, "sigma -1: must be a finite number ≥ 0"},
		{"sigma NaN", func(c *SGDWORConfig) { c.Sigma = math.NaN() }, w, x0, "sigma NaN"},
		{"steps 0", func(c *SGDWORConfig) { c.Steps = 0 }, w, x0, "steps = 0"},
		{"epoch not a multiple", func(c *SGDWORConfig) { c.Epoch = 0.25 }, w, x0, "epoch τ = 0.25 is not a multiple of the step h = 0.1"},
		{"epoch shorter than h", func(c *SGDWORConfig) { c.Epoch = 0.05 }, w, x0, "epoch τ = 0.05 is shorter than the step h = 0.1"},
		{"epoch negative", func(c *SGDWORConfig) { c.Epoch = -1 }, w, x0, "epoch τ = -1: must be a finite number > 0"},
		{"epoch NaN", func(c *SGDWORConfig) { c.Epoch = math.NaN() }, w, x0, "epoch τ = NaN"},
		{"thin negative", func(c *SGDWORConfig) { c.Thin = -1 }, w, x0, "thin = -1"},
		{"thin beyond steps", func(c *SGDWORConfig) { c.Thin = 11 }, w, x0, "thin = 11 > steps = 10"},
		{"escape coordinate", func(c *SGDWORConfig) { c.Escape = &EscapeSpec{Coord: 2} }, w, x0, "escape coordinate 2"},
		{"NaN start", func(*SGDWORConfig) {}, w, fromRows(t, tensor.F64, [][]float64{{0, 0}, {1, math.NaN()}}),
			"initial state: chain 1, coordinate 1 is NaN: must be finite"},
		{"Inf start", func(*SGDWORConfig) {}, w, fromRows(t, tensor.F32, [][]float64{{math.Inf(-1), 0}}),
			"initial state: chain 0, coordinate 0 is -Inf"},
		{"dimension mismatch", func(*SGDWORConfig) {}, w, constRows(t, tensor.F64, 3, []float64{-1, 0, 0}),
			"initial state has dimension 3, the objective 2"},
		{"nil objective", func(*SGDWORConfig) {}, nil, x0, "nil objective"},
		{"nil state", func(*SGDWORConfig) {}, w, nil, "initial state is nil"},
		{"noise paths beyond 2^32", func(c *SGDWORConfig) { c.FirstChain = ops.MaxChains/2 - 2 }, w, x0, "chain·dim + coordinate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.edit(&cfg)
			res, err := SGDWOR(ops.CPU(), c.f, c.x0, cfg)
			require.Error(t, err)
			assert.Nil(t, res)
			assert.Contains(t, err.Error(), "sgdwor: ")
			assert.Contains(t, err.Error(), c.want)
		})
	}
	_, err = SGDWOR(nil, w, x0, good)
	assert.ErrorContains(t, err, "nil backend")

	// Accepted: τ = h (a one-step bridge is zero: no noise), τ a multiple of h up to round-off
	// (0.3/0.1 = 2.9999999999999996), σ = 0 without epochs.
	for _, cfg := range []SGDWORConfig{{Beta: 0.5, StepSize: 0.1, Sigma: 1, Steps: 10, Epoch: 0.1},
		{Beta: 0.5, StepSize: 0.1, Sigma: 1, Steps: 10, Epoch: 0.3}, {Beta: 0.5, StepSize: 0.1, Steps: 10}} {
		res := runSGDWOR(t, w, x0, cfg)
		if cfg.Epoch == cfg.StepSize {
			x, err := res.Final.Float64s()
			require.NoError(t, err)
			gd := runSGDWOR(t, w, x0, SGDWORConfig{Beta: 0.5, StepSize: 0.1, Steps: 10})
			y, err := gd.Final.Float64s()
			require.NoError(t, err)
			assert.Equal(t, y, x, "a one-step epoch leaves no noise")
		}
	}
	assert.Equal(t, 3, SGDWORConfig{StepSize: 0.1, Epoch: 0.3}.EpochSteps())
}
