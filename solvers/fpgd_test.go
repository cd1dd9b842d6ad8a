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

// fgnRho is the unit-step fGn autocovariance ρ(k) = ½(|k+1|^{2H} − 2|k|^{2H} + |k−1|^{2H}).
func fgnRho(hurst float64, k int) float64 {
	a := math.Abs(float64(k))
	e := 2 * hurst
	return 0.5 * (math.Pow(a+1, e) - 2*math.Pow(a, e) + math.Pow(math.Abs(a-1), e))
}

// arVariance is the exact variance of x_n for the recursion x_{k+1} = r x_k + σ Δ_k from x_0 = 0,
// where cov(k, l) = Cov(Δ_k, Δ_l): x_n = σ Σ_k r^{n−1−k} Δ_k, so
//
//	Var x_n = σ² Σ_{k,l} r^{n−1−k} r^{n−1−l} cov(k, l).
func arVariance(cov func(k, l int) float64, r, sigma float64, n int) float64 {
	w := make([]float64, n)
	for k := range w {
		w[k] = math.Pow(r, float64(n-1-k))
	}
	s := 0.0
	for k := 0; k < n; k++ {
		for l := 0; l < n; l++ {
			s += w[k] * w[l] * cov(k, l)
		}
	}
	return sigma * sigma * s
}

// fgnIncrementCov is Cov(ΔB_k, ΔB_l) = h^{2H} ρ(k − l) for fBM sampled at step h.
func fgnIncrementCov(hurst, h float64) func(k, l int) float64 {
	return func(k, l int) float64 { return math.Pow(h, 2*hurst) * fgnRho(hurst, k-l) }
}

// mafbmIncrementCov is Cov(ΔB̂_k, ΔB̂_l) of the MA-fBM increments ΔB̂_k = B̂((k+1)h) − B̂(kh)
// from the approximation's exact covariance C(s, t) = m.Covariance(s, t).
func mafbmIncrementCov(m *ops.MAFBM, h float64) func(k, l int) float64 {
	c := func(a, b int) float64 { return m.Covariance(float64(a)*h, float64(b)*h) }
	return func(k, l int) float64 { return c(k+1, l+1) - c(k, l+1) - c(k+1, l) + c(k, l) }
}

// constRows is a host (n, d) tensor of dtype dt with every row equal to row.
func constRows(t testing.TB, dt tensor.DType, n int, row []float64) *tensor.Tensor {
	t.Helper()
	v := make([]float64, 0, n*len(row))
	for i := 0; i < n; i++ {
		v = append(v, row...)
	}
	x, err := tensor.FromFloat64s(dt, v, n, len(row))
	require.NoError(t, err)
	return x
}

func mustQuadratic(t testing.TB, curv, center []float64) Quadratic {
	t.Helper()
	q, err := NewQuadratic(curv, center)
	require.NoError(t, err)
	return q
}

func runFPGD(t testing.TB, f Objective, x0 *tensor.Tensor, cfg FPGDConfig) *FPGDResult {
	t.Helper()
	res, err := FPGD(ops.CPU(), f, x0, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { res.Close() })
	return res
}

func TestFPGDWithoutNoiseIsGradientDescent(t *testing.T) {
	// σ = 0: x_n − c = (1 − h a)^n (x_0 − c) coordinate by coordinate, at every trace row.
	curv, center := []float64{2, 0.5, 0}, []float64{1, -1, 3}
	q := mustQuadratic(t, curv, center)
	start := []float64{-2, 4, 7}
	const h, steps, thin = 0.1, 37, 4
	for _, c := range []struct {
		dt  tensor.DType
		tol float64 // relative: the recursion runs in f64; f32 rounds the result once
	}{{tensor.F64, 1e-12}, {tensor.F32, 1e-6}} {
		t.Run(c.dt.String(), func(t *testing.T) {
			x0 := constRows(t, c.dt, 3, start)
			res := runFPGD(t, q, x0, FPGDConfig{Hurst: 0.7, StepSize: h, Steps: steps, Thin: thin})
			want := func(n int) []float64 {
				out := make([]float64, len(curv))
				for j := range curv {
					out[j] = center[j] + math.Pow(1-h*curv[j], float64(n))*(start[j]-center[j])
				}
				return out
			}
			for _, row := range hostRows(t, res.Final) {
				assert.InDeltaSlice(t, want(steps), row, c.tol*10)
			}
			require.Equal(t, []int{steps/thin + 1, 3, 3}, res.Trace.Shape())
			tr, err := res.Trace.Float64s()
			require.NoError(t, err)
			for k, s := range res.TraceSteps {
				assert.Equal(t, k*thin, s)
				for i := 0; i < 3; i++ {
					assert.InDeltaSlice(t, want(s), tr[(k*3+i)*3:(k*3+i+1)*3], c.tol*10, "trace row %d chain %d", k, i)
				}
			}
			assert.Equal(t, int64(3*steps), res.GradEvals)
			assert.Zero(t, res.NaN.Chains)
			assert.Nil(t, res.Escape)
		})
	}
}

// zOK reports whether an estimate lies within zSE standard errors of its exact value.
func zOK(est, want, se float64) bool { return math.Abs(est-want) <= zSE*se }

func TestFPGDIncrementsAreScaledFGN(t *testing.T) {
	// On a flat objective x_{n+1} − x_n = σ h^H ξ_n: across independent paths (chains ×
	// coordinates) the increment at step s has variance σ² h^{2H}, and consecutive increments
	// have covariance σ² h^{2H} ρ(1). Standard errors: Var of a mean of M squares of N(0, v) is
	// 2v²/M; of M products of a pair with covariance c, (v² + c²)/M. zSE per comparison (see zSE).
	const n, d, steps, h, sigma = 2000, 2, 64, 0.05, 1.5
	flat := mustQuadratic(t, []float64{0, 0}, nil)
	for _, method := range []string{FGNDaviesHarte, FGNCholesky} {
		for _, hurst := range []float64{0.3, 0.5, 0.8} {
			t.Run(fmt.Sprintf("%s/H=%.1f", method, hurst), func(t *testing.T) {
				res := runFPGD(t, flat, constRows(t, tensor.F64, n, []float64{0, 0}),
					FPGDConfig{Hurst: hurst, StepSize: h, Sigma: sigma, Steps: steps, Thin: 1, Method: method, Seed: 11})
				tr, err := res.Trace.Float64s()
				require.NoError(t, err)
				inc := func(s, p int) float64 { return tr[(s+1)*n*d+p] - tr[s*n*d+p] } // path p = chain·d + j
				v := sigma * sigma * math.Pow(h, 2*hurst)
				c := v * fgnRho(hurst, 1)
				m := float64(n * d)
				for _, s := range []int{0, steps / 2, steps - 2} {
					sq, prod := 0.0, 0.0
					for p := 0; p < n*d; p++ {
						sq += inc(s, p) * inc(s, p)
						prod += inc(s, p) * inc(s+1, p)
					}
					sq, prod = sq/m, prod/m
					assert.True(t, zOK(sq, v, v*math.Sqrt(2/m)), "step %d: variance %.5g, want %.5g = σ² h^{2H}", s, sq, v)
					assert.True(t, zOK(prod, c, math.Sqrt((v*v+c*c)/m)), "steps %d,%d: covariance %.5g, want %.5g", s, s+1, prod, c)
				}
			})
		}
	}
}

func TestFPGDNoiseLayout(t *testing.T) {
	// On a flat objective x_{n+1} − x_n = σ h^H ΔB: the path of coordinate j of chain c must be
	// row c·d + j of Backend.FGN at Site(0, PurposeFractional), as documented. h^H ≠ 1 so the
	// scale is checked too; the tolerance covers the rounding of x_n and of the difference.
	const n, d, steps, first, h, sigma, hurst = 3, 2, 20, 5, 0.5, 2.0, 0.35
	res := runFPGD(t, mustQuadratic(t, []float64{0, 0}, nil), constRows(t, tensor.F64, n, []float64{1, -1}),
		FPGDConfig{Hurst: hurst, StepSize: h, Sigma: sigma, Steps: steps, Thin: 1, Seed: 99, FirstChain: first})
	plan, err := ops.NewFGNPlan(hurst, steps)
	require.NoError(t, err)
	ref, err := tensor.New(nil, tensor.F64, (first+n)*d, steps)
	require.NoError(t, err)
	require.NoError(t, ops.CPU().FGN(ref, plan, ops.FGNForm{}, ops.Draw{Seed: 99, Site: Site(0, PurposeFractional)}))
	xi, err := ref.Float64s()
	require.NoError(t, err)
	tr, err := res.Trace.Float64s()
	require.NoError(t, err)
	scale := sigma * math.Pow(h, hurst)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			row := (first+i)*d + j
			for s := 0; s < steps; s++ {
				got := tr[((s+1)*n+i)*d+j] - tr[(s*n+i)*d+j]
				want := scale * xi[row*steps+s]
				require.InDelta(t, want, got, 1e-13*(1+math.Abs(want)), "chain %d, coordinate %d, step %d", first+i, j, s)
			}
		}
	}
}

func TestFPGDStationaryVarianceOnAQuadratic(t *testing.T) {
	// f = a x²/2: x_{n+1} = r x_n + σ h^H ξ_n with r = 1 − h a, from x_0 = 0. H = ½: Var x_n =
	// σ² h (1 − r^{2n})/(1 − r²) → σ² h/(1 − r²). Any H: the exact double sum over ρ(k − l)
	// (arFGNVariance). After 128 steps with r = 0.8 the start is forgotten (r^256 ≈ 10⁻²⁵).
	// The final states of n chains × d coordinates are independent N(0, V): the sample second
	// moment has standard error V·sqrt(2/M).
	const n, d, steps, h, a, sigma = 4000, 2, 128, 0.1, 2.0, 0.7
	r := 1 - h*a
	q := mustQuadratic(t, []float64{a, a}, nil)
	m := float64(n * d)
	stat := sigma * sigma * h / (1 - r*r)
	require.InDelta(t, stat, arVariance(fgnIncrementCov(0.5, h), r, sigma, steps), 1e-12*stat, "the double sum at H = ½")
	for _, method := range []string{FGNDaviesHarte, FGNCholesky} {
		for _, hurst := range []float64{0.25, 0.5, 0.7, 0.9} {
			t.Run(fmt.Sprintf("%s/H=%.2f", method, hurst), func(t *testing.T) {
				want := arVariance(fgnIncrementCov(hurst, h), r, sigma, steps)
				se := want * math.Sqrt(2/m)
				if hurst != 0.5 {
					// The test has power against the two likely plumbing errors: independent
					// increments of the right scale, and correlated ones scaled by √h.
					white := sigma * sigma * math.Pow(h, 2*hurst) / (1 - r*r)
					sqrtH := want / math.Pow(h, 2*hurst) * h
					require.Greater(t, math.Abs(white-want), 2*zSE*se)
					require.Greater(t, math.Abs(sqrtH-want), 2*zSE*se)
				}
				res := runFPGD(t, q, constRows(t, tensor.F64, n, []float64{0, 0}),
					FPGDConfig{Hurst: hurst, StepSize: h, Sigma: sigma, Steps: steps, Method: method, Seed: 5})
				v, err := res.Final.Float64s()
				require.NoError(t, err)
				s := 0.0
				for _, e := range v {
					s += e * e
				}
				s /= m
				assert.True(t, zOK(s, want, se), "Var x_%d = %.5g, want %.5g ± %.2g", steps, s, want, zSE*se)
			})
		}
	}
}

func TestFPGDMAFBMIncrementsFollowTheApproximationsLaw(t *testing.T) {
	// The "mafbm" increments are ΔB̂_n = B̂((n+1)h) − B̂(nh) of the Markov approximation fitted on
	// [0, Steps·h], not rescaled: their exact covariance follows from ops.MAFBM.Covariance. Checked
	// at the first, a middle and the last step (the process is not stationary), for the variance
	// and the lag-1 covariance, on a flat objective; then the AR-filtered variance on a quadratic.
	// Standard errors and zSE as in TestFPGDIncrementsAreScaledFGN.
	const n, steps, h, sigma, a = 4000, 48, 0.05, 1.3, 4.0
	for _, hurst := range []float64{0.3, 0.5, 0.75} {
		t.Run(fmt.Sprintf("H=%.2f", hurst), func(t *testing.T) {
			cfg := FPGDConfig{Hurst: hurst, StepSize: h, Sigma: sigma, Steps: steps, Method: FGNMAFBM, Seed: 21, Thin: 1}
			// The horizon FPGD fits the weights on: Steps·h in floating point.
			m, err := ops.NewMAFBM(hurst, DefaultMAFBMOrder, DefaultMAFBMGammaMax, float64(cfg.Steps)*cfg.StepSize)
			require.NoError(t, err)
			cov := mafbmIncrementCov(m, h)
			res := runFPGD(t, mustQuadratic(t, []float64{0}, nil), constRows(t, tensor.F64, n, []float64{0}), cfg)
			assert.Equal(t, m.RelErrorSq(), res.NoiseRelErrorSq)
			tr, err := res.Trace.Float64s()
			require.NoError(t, err)
			inc := func(s, p int) float64 { return tr[(s+1)*n+p] - tr[s*n+p] }
			for _, s := range []int{0, steps / 2, steps - 2} {
				v0, v1, c := sigma*sigma*cov(s, s), sigma*sigma*cov(s+1, s+1), sigma*sigma*cov(s, s+1)
				sq, prod := 0.0, 0.0
				for p := 0; p < n; p++ {
					sq += inc(s, p) * inc(s, p)
					prod += inc(s, p) * inc(s+1, p)
				}
				sq, prod = sq/n, prod/n
				assert.True(t, zOK(sq, v0, v0*math.Sqrt(2.0/n)), "step %d: variance %.5g, want %.5g", s, sq, v0)
				assert.True(t, zOK(prod, c, math.Sqrt((v0*v1+c*c)/n)), "steps %d,%d: covariance %.5g, want %.5g", s, s+1, prod, c)
			}

			r := 1 - h*a
			want := arVariance(cov, r, sigma, steps)
			cfg.Thin = 0
			res = runFPGD(t, mustQuadratic(t, []float64{a}, nil), constRows(t, tensor.F64, n, []float64{0}), cfg)
			v, err := res.Final.Float64s()
			require.NoError(t, err)
			s2 := 0.0
			for _, e := range v {
				s2 += e * e
			}
			s2 /= n
			assert.True(t, zOK(s2, want, want*math.Sqrt(2.0/n)), "Var x_%d = %.5g, want %.5g", steps, s2, want)
		})
	}
}

func TestFPGDEscape(t *testing.T) {
	// σ = 0 on f = a (x − 1)²/2 from x_0 = 0: x_n = 1 − r^n, r = 1 − h a, crosses ½ at the first
	// n with r^n < ½.
	const h, a = 0.1, 1.5
	r := 1 - h*a
	first := int(math.Ceil(math.Log(0.5) / math.Log(r)))
	require.Less(t, math.Pow(r, float64(first)), 0.5)
	require.Greater(t, math.Pow(r, float64(first-1)), 0.5)
	q := mustQuadratic(t, []float64{a, a}, []float64{1, -1})
	x0 := fromRows(t, tensor.F64, [][]float64{{0, 0}, {0.7, 0}, {0, 0}})
	cases := []struct {
		name string
		spec EscapeSpec
		want []int
	}{
		{"above", EscapeSpec{Coord: 0, Threshold: 0.5}, []int{first, 0, first}},
		{"below", EscapeSpec{Coord: 1, Threshold: -0.5, Below: true}, []int{first, first, first}},
		{"never", EscapeSpec{Coord: 0, Threshold: 1.5}, []int{-1, -1, -1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := c.spec
			res := runFPGD(t, q, x0, FPGDConfig{Hurst: 0.5, StepSize: h, Steps: 40, Escape: &spec})
			assert.Equal(t, c.want, res.Escape)
		})
	}
	frac, mean, med := EscapeStats([]int{-1, 4, 10, -1, 7})
	assert.InDelta(t, 0.6, frac, 1e-15)
	assert.InDelta(t, 7, mean, 1e-15)
	assert.InDelta(t, 7, med, 1e-15)
	_, _, med = EscapeStats([]int{3, 8})
	assert.InDelta(t, 5.5, med, 1e-15)
	frac, mean, _ = EscapeStats([]int{-1})
	assert.Zero(t, frac)
	assert.True(t, math.IsNaN(mean))

	// With noise: the recorded step is the first trace row beyond the threshold.
	w, err := NewDoubleWell(2, 0.5)
	require.NoError(t, err)
	const n, steps = 300, 400
	spec := EscapeSpec{Threshold: 0.5}
	res := runFPGD(t, w, constRows(t, tensor.F64, n, []float64{-1, 0}),
		FPGDConfig{Hurst: 0.7, StepSize: 0.05, Sigma: 1.2, Steps: steps, Thin: 1, Escape: &spec, Seed: 9})
	tr, err := res.Trace.Float64s()
	require.NoError(t, err)
	escaped := 0
	for i := 0; i < n; i++ {
		want := -1
		for s := 0; s <= steps; s++ {
			if tr[(s*n+i)*2] > 0.5 {
				want = s
				break
			}
		}
		assert.Equal(t, want, res.Escape[i], "chain %d", i)
		if want > 0 {
			escaped++
		}
	}
	assert.Greater(t, escaped, 0, "no chain escaped: the check above saw only −1")
	assert.Less(t, escaped, n, "every chain escaped")
}

func TestFPGDReproducible(t *testing.T) {
	w, err := NewDoubleWell(3, 1)
	require.NoError(t, err)
	const n, steps = 10, 50
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
	}
	for _, method := range []string{FGNDaviesHarte, FGNMAFBM, FGNCholesky} {
		for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
			t.Run(method+"/"+dt.String(), func(t *testing.T) {
				cfg := FPGDConfig{Hurst: 0.65, StepSize: 0.02, Sigma: 0.8, Steps: steps, Method: method, Seed: 77, Thin: 5}
				final := func(cfg FPGDConfig, rows [][]float64) ([]float64, []float64) {
					res := runFPGD(t, w, fromRows(t, dt, rows), cfg)
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

				// Batches [0, 4) and [4, 10) with FirstChain reproduce the single run.
				second := cfg
				second.FirstChain = 4
				a, _ := final(cfg, rows[:4])
				b, _ := final(second, rows[4:])
				assert.Equal(t, whole, append(a, b...), "split by FirstChain")

				// Noise generated in blocks of one chain draws the same numbers.
				blocked := cfg
				blocked.NoiseBlock = 1
				x, tr := final(blocked, rows)
				assert.Equal(t, whole, x, "noise in blocks")
				assert.Equal(t, wholeTrace, tr, "noise in blocks (trace)")
			})
		}
	}
}

func TestFPGDReportsNonFiniteChains(t *testing.T) {
	// h a = 1000: x_{n+1} = −999 x_n overflows to ±Inf (and then NaN) unless x_0 = 0.
	q := mustQuadratic(t, []float64{1000}, nil)
	res := runFPGD(t, q, fromRows(t, tensor.F64, [][]float64{{0}, {1}, {0}, {-2}}),
		FPGDConfig{Hurst: 0.5, StepSize: 1, Steps: 200})
	step := func(x float64) int {
		for s := 1; ; s++ {
			x -= 1 * (1000 * x)
			if math.IsInf(x, 0) || math.IsNaN(x) {
				return s
			}
		}
	}
	assert.Equal(t, 2, res.NaN.Chains)
	assert.Equal(t, []int{1, 3}, res.NaN.Rows)
	assert.Equal(t, 1, res.NaN.First)
	assert.Equal(t, min(step(1), step(-2)), res.NaN.Step)

	// A non-finite start is seen at step 0.
	res = runFPGD(t, q, fromRows(t, tensor.F64, [][]float64{{0}, {math.NaN()}}), FPGDConfig{Hurst: 0.5, StepSize: 0.1, Steps: 2})
	assert.Equal(t, NaNReport{Chains: 1, First: 1, Step: 0, Rows: []int{1}}, res.NaN)
}

func TestFPGDBadInput(t *testing.T) {
	w, err := NewDoubleWell(2, 1)
	require.NoError(t, err)
	good := FPGDConfig{Hurst: 0.6, StepSize: 0.1, Sigma: 1, Steps: 10}
	x0 := constRows(t, tensor.F64, 3, []float64{-1, 0})
	cases := []struct {
		name string
		edit func(*FPGDConfig)
		f    Objective
		x0   *tensor.Tensor
		want string
	}{
		{"hurst 0", func(c *FPGDConfig) { c.Hurst = 0 }, w, x0, "hurst 0: must be in (0, 1)"},
		{"hurst 1", func(c *FPGDConfig) { c.Hurst = 1 }, w, x0, "hurst 1: must be in (0, 1)"},
		{"hurst NaN", func(c *FPGDConfig) { c.Hurst = math.NaN() }, w, x0, "hurst NaN"},
		{"step 0", func(c *FPGDConfig) { c.StepSize = 0 }, w, x0, "step size h = 0"},
		{"step negative", func(c *FPGDConfig) { c.StepSize = -0.1 }, w, x0, "step size h = -0.1"},
		{"sigma negative", func(c *FPGDConfig) { c.Sigma = -1 }, w, x0, "sigma -1: must be a finite number ≥ 0"},
		{"sigma inf", func(c *FPGDConfig) { c.Sigma = math.Inf(1) }, w, x0, "sigma +Inf"},
		{"steps 0", func(c *FPGDConfig) { c.Steps = 0 }, w, x0, "steps = 0"},
		{"unknown method", func(c *FPGDConfig) { c.Method = "hosking" }, w, x0, `unknown noise method "hosking"`},
		{"cholesky too long", func(c *FPGDConfig) { c.Method = FGNCholesky; c.Steps = 5000 }, w, x0, "at most 4096"},
		{"K negative", func(c *FPGDConfig) { c.Method = FGNMAFBM; c.K = -1 }, w, x0, "K = -1"},
		{"gamma max 1", func(c *FPGDConfig) { c.Method = FGNMAFBM; c.GammaMax = 1 }, w, x0, "gamma max 1"},
		{"thin negative", func(c *FPGDConfig) { c.Thin = -1 }, w, x0, "thin = -1"},
		{"thin beyond steps", func(c *FPGDConfig) { c.Thin = 11 }, w, x0, "thin = 11 > steps = 10"},
		{"escape coordinate", func(c *FPGDConfig) { c.Escape = &EscapeSpec{Coord: 2} }, w, x0, "escape coordinate 2"},
		{"dimension mismatch", func(*FPGDConfig) {}, w, constRows(t, tensor.F64, 3, []float64{-1, 0, 0}),
			"initial state has dimension 3, the objective 2"},
		{"nil objective", func(*FPGDConfig) {}, nil, x0, "nil objective"},
		{"nil state", func(*FPGDConfig) {}, w, nil, "initial state is nil"},
		{"chains beyond 2^32", func(c *FPGDConfig) { c.FirstChain = ops.MaxChains - 2 }, w, x0, "below 2^32"},
		{"noise paths beyond 2^32", func(c *FPGDConfig) { c.FirstChain = ops.MaxChains/2 - 2 }, w, x0, "chain·dim + coordinate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.edit(&cfg)
			res, err := FPGD(ops.CPU(), c.f, c.x0, cfg)
			require.Error(t, err)
			assert.Nil(t, res)
			assert.Contains(t, err.Error(), "fpgd: ")
			assert.Contains(t, err.Error(), c.want)
		})
	}
	_, err = FPGD(nil, w, x0, good)
	assert.ErrorContains(t, err, "nil backend")
}

func TestObjectives(t *testing.T) {
	w, err := NewDoubleWell(3, 2)
	require.NoError(t, err)
	r, err := NewRastrigin(2, 10)
	require.NoError(t, err)
	q := mustQuadratic(t, []float64{1, 3}, []float64{0.5, -1})
	// Closed-form values: minima, saddle, known points.
	assert.Zero(t, w.Value([]float64{1, 0, 0}))
	assert.Zero(t, w.Value([]float64{-1, 0, 0}))
	assert.InDelta(t, 2, w.Value([]float64{0, 0, 0}), 1e-15, "the barrier")
	assert.InDelta(t, 2*9+0.5*(4+1), w.Value([]float64{2, 2, -1}), 1e-12)
	assert.Zero(t, r.Value([]float64{0, 0}))
	assert.InDelta(t, 2, r.Value([]float64{1, 1}), 1e-12, "Rastrigin at an integer point: Σ x² = 2")
	assert.Zero(t, q.Value([]float64{0.5, -1}))
	assert.InDelta(t, 0.5*(1*0.25+3*4), q.Value([]float64{1, 1}), 1e-15)
	assert.Equal(t, 1.0, DoubleWell{D: 1}.Value([]float64{0}), "zero Barrier means 1")
	assert.Equal(t, 10.0, Rastrigin{D: 1}.Value([]float64{0.5})-0.25-10, "zero A means 10")

	// Gradients against central finite differences (error O(ε²) ≈ 10⁻¹⁰ relative).
	rng := rand.New(rand.NewPCG(4, 5))
	for _, f := range []Objective{w, r, q} {
		d := f.Dim()
		for trial := 0; trial < 20; trial++ {
			x := make([]float64, d)
			for j := range x {
				x[j] = 2 * rng.NormFloat64()
			}
			g := make([]float64, d)
			f.Grad(g, x)
			for j := 0; j < d; j++ {
				const eps = 1e-5
				xp, xm := append([]float64(nil), x...), append([]float64(nil), x...)
				xp[j] += eps
				xm[j] -= eps
				fd := (f.Value(xp) - f.Value(xm)) / (2 * eps)
				assert.InDelta(t, fd, g[j], 1e-6*(1+math.Abs(fd)), "%v: ∂_%d f at %v", f, j, x)
			}
		}
	}

	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"double well dim", func() error { _, err := NewDoubleWell(0, 1); return err }(), "dim 0"},
		{"double well barrier", func() error { _, err := NewDoubleWell(2, -1); return err }(), "barrier -1"},
		{"rastrigin a", func() error { _, err := NewRastrigin(2, -1); return err }(), "a -1"},
		{"quadratic empty", func() error { _, err := NewQuadratic(nil, nil); return err }(), "no curvatures"},
		{"quadratic curvature", func() error { _, err := NewQuadratic([]float64{1, -2}, nil); return err }(), "curvature 1 = -2"},
		{"quadratic center", func() error { _, err := NewQuadratic([]float64{1}, []float64{0, 0}); return err }(), "center has 2"},
	} {
		assert.ErrorContains(t, c.err, c.want, c.name)
	}
}

// BenchmarkFPGD runs fPGD on a 2-D double well on the CPU reference: the noise generation
// (Davies–Harte, or the host Cholesky reference) and the host recursion, per chain-step.
func BenchmarkFPGD(b *testing.B) {
	w, err := NewDoubleWell(2, 1)
	require.NoError(b, err)
	for _, c := range []struct {
		method        string
		chains, steps int
	}{
		{FGNDaviesHarte, 256, 1024},
		{FGNDaviesHarte, 256, 8192},
		{FGNDaviesHarte, 2048, 1024},
		{FGNMAFBM, 256, 1024},
		{FGNCholesky, 256, 1024},
	} {
		b.Run(fmt.Sprintf("%s/N=%d/K=%d", c.method, c.chains, c.steps), func(b *testing.B) {
			x0 := constRows(b, tensor.F64, c.chains, []float64{-1, 0})
			cfg := FPGDConfig{Hurst: 0.7, StepSize: 0.05, Sigma: 0.5, Steps: c.steps, Method: c.method}
			// The Cholesky factor is cached per (H, n): build it before the timer.
			res, err := FPGD(ops.CPU(), w, x0, cfg)
			require.NoError(b, err)
			res.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := FPGD(ops.CPU(), w, x0, cfg)
				if err != nil {
					b.Fatal(err)
				}
				res.Close()
			}
			b.ReportMetric(float64(c.chains)*float64(c.steps)*float64(b.N)/b.Elapsed().Seconds(), "chain-steps/s")
		})
	}
}
