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

// gaussDenoiser is the closed-form denoiser of data N(μ, s² I): D(x; σ) = μ + s²/(s² + σ²)(x − μ),
// one Combine per call.
type gaussDenoiser struct {
	mu []float64
	s2 float64
}

func (g gaussDenoiser) Dim() int       { return len(g.mu) }
func (g gaussDenoiser) String() string { return "gaussian" }

func (g gaussDenoiser) Denoise(b ops.Backend, dst, x *tensor.Tensor, sigma float64) error {
	n, d := x.Dim(0), x.Dim(1)
	vals := make([]float64, n*d)
	for i := range vals {
		vals[i] = g.mu[i%d]
	}
	m, err := tensor.FromFloat64s(x.DType(), vals, n, d)
	if err != nil {
		return err
	}
	defer m.Close()
	a := g.s2 / (g.s2 + sigma*sigma)
	return b.Combine(dst, []ops.Term{{T: x, C: a}, {T: m, C: 1 - a}}, 0, ops.Draw{})
}

// SampleNoised draws the exact noised law of data N(μ, s² I), N(aμ, (a² s² + s) I), from the
// normals of Site(0, PurposeInit).
func (g gaussDenoiser) SampleNoised(dst []float64, a, s float64, seed, first uint64) error {
	d := len(g.mu)
	_, z, err := startDraws(len(dst)/d, d, seed, first)
	if err != nil {
		return err
	}
	sd := math.Sqrt(a*a*g.s2 + s)
	for i := range dst {
		dst[i] = a*g.mu[i%d] + sd*z[i]
	}
	return nil
}

// gaussFlow is the exact probability-flow ODE map of data N(μ, s²) from level σ0 to σ1:
// x(σ1) = μ + (x(σ0) − μ) sqrt((s² + σ1²)/(s² + σ0²)).
func gaussFlow(x, mu, s2, sigma0, sigma1 float64) float64 {
	return mu + (x-mu)*math.Sqrt((s2+sigma1*sigma1)/(s2+sigma0*sigma0))
}

// lsSlope is the least-squares slope of y against x.
func lsSlope(x, y []float64) float64 {
	n := float64(len(x))
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
		sxx += x[i] * x[i]
		sxy += x[i] * y[i]
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

// orderGrid is the EDM grid (ρ = 7, σ ∈ [0.002, 80]) of k steps that stops at σ_min: the order
// tests compare with the exact flow at σ_min, so no final jump to 0 hides the solver's error.
func orderGrid(t testing.TB, k int) []float64 {
	s, err := EDMSigmas(k+1, DefaultSigmaMin, DefaultSigmaMax, DefaultRho)
	require.NoError(t, err)
	return s[:k+1]
}

// orderError runs method on the 1-D Gaussian N(μ, s²) from fixed starting points at σ = 80 with
// k steps of orderGrid and returns the largest error against the exact flow at σ_min.
func orderError(t testing.TB, den Denoiser, method string, classic bool, k int) float64 {
	const mu, s2 = 0.5, 1.0
	starts := []float64{-80, -20, 30, 100, 160}
	x0, err := tensor.FromF64(starts, len(starts), 1)
	require.NoError(t, err)
	grid := orderGrid(t, k)
	res, err := Diffusion(ops.CPU(), den, len(starts), tensor.F64, DiffusionConfig{Method: method, Sigmas: grid, X0: x0, Classic: classic})
	require.NoError(t, err, "%s k=%d", method, k)
	defer res.Close()
	got, err := res.Samples.Float64s()
	require.NoError(t, err)
	worst := 0.0
	for i, s := range starts {
		worst = math.Max(worst, math.Abs(got[i]-gaussFlow(s, mu, s2, grid[0], grid[k])))
	}
	return worst
}

// orderSteps are the step counts of the order fits: the asymptotic range of every method here on
// the EDM grid (below 32 steps the multistep methods are still pre-asymptotic, see
// docs/diffusion-orders.md).
var orderSteps = []int{32, 64, 128, 256}

// Convergence orders on the 1-D Gaussian N(0.5, 1), σ from 80 to 0.002 on the EDM grid, against
// the closed-form flow: the least-squares slope of log error against log steps over orderSteps.
// Measured (both denoisers give the same to three digits): euler 0.98, heun 2.03, dpm2 2.02,
// dpmpp-2m 2.05, dpmpp-3m 3.06, ipndm 3.69 (order 4 still approaching), ddim 0.98; the classic
// coefficients: dpmpp-3m 1.61 (drifting down to 2 from above 3 at fewer steps), ipndm 2.05.
// Deterministic runs: the tolerances are about the pre-asymptotic drift, not noise.
func TestDiffusionConvergenceOrders(t *testing.T) {
	const mu, s2 = 0.5, 1.0
	dens := []Denoiser{
		gaussDenoiser{mu: []float64{mu}, s2: s2},
		TargetDenoiser(gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{mu}}, Vars: []float64{s2}})),
	}
	for _, c := range []struct {
		method   string
		classic  bool
		min, max float64
	}{
		{MethodEuler, false, 0.85, 1.15},
		{MethodHeun, false, 1.85, 2.15},
		{MethodDPM2, false, 1.85, 2.15},
		{MethodDPMPP2M, false, 1.85, 2.2},
		{MethodDPMPP3M, false, 2.75, 3.3},
		{MethodIPNDM, false, 3.3, 4.2},
		{MethodDDIM, false, 0.85, 1.15},
		{MethodDPMPP3M, true, 1.3, 2.3},
		{MethodIPNDM, true, 1.85, 2.2},
	} {
		for _, den := range dens {
			name := fmt.Sprintf("%s classic=%t %s", c.method, c.classic, den)
			var lk, le []float64
			for _, k := range orderSteps {
				e := orderError(t, den, c.method, c.classic, k)
				require.Greater(t, e, 0.0, name)
				lk = append(lk, math.Log(float64(k)))
				le = append(le, math.Log(e))
			}
			slope := -lsSlope(lk, le)
			t.Logf("%-40s slope %.2f, error at %d steps %.2e", name, slope, orderSteps[len(orderSteps)-1], math.Exp(le[len(le)-1]))
			assert.GreaterOrEqual(t, slope, c.min, name)
			assert.LessOrEqual(t, slope, c.max, name)
		}
	}
	// The classic third-order weight is the less accurate: at 256 steps its error is many times
	// the Taylor-weighted one's.
	den := dens[0]
	k := orderSteps[len(orderSteps)-1]
	assert.Greater(t, orderError(t, den, MethodDPMPP3M, true, k), 5*orderError(t, den, MethodDPMPP3M, false, k))
}

// The weights of DPM-Solver++(3M) integrate a D quadratic in λ exactly (the property that makes
// the method third order); the classic weight does not.
func TestDPMPP3MExactForQuadraticD(t *testing.T) {
	sig := []float64{9, 5, 2.5, 1.1, 0.4}
	lam := func(s float64) float64 { return -math.Log(s) }
	q := func(l float64) float64 { return 0.3 - 0.7*l + 0.45*l*l }
	for i := 2; i+1 < len(sig); i++ {
		h := lam(sig[i+1]) - lam(sig[i])
		// ∫_0^h e^{u−h} q(λ_i + u) du by composite Simpson on 2000 panels (error ≪ 1e-12 here).
		exact, m := 0.0, 2000
		for j := 0; j <= m; j++ {
			u := h * float64(j) / float64(m)
			w := 2.0
			if j == 0 || j == m {
				w = 1
			} else if j%2 == 1 {
				w = 4
			}
			exact += w * math.Exp(u-h) * q(lam(sig[i])+u)
		}
		exact *= h / float64(3*m)
		for _, classic := range []bool{false, true} {
			c := dpmpp3mCoeffs(sig, i, classic)
			require.Len(t, c, 3)
			got := 0.0
			for k, ck := range c {
				got += ck * q(lam(sig[i-k]))
			}
			if classic {
				assert.Greater(t, math.Abs(got-exact), 1e-3, "step %d: the classic weight misses the curvature term", i)
			} else {
				assert.InDelta(t, exact, got, 1e-10, "step %d", i)
			}
		}
	}
	// First and second step: orders 1 and 2 (exact for constant and linear D).
	for i, deg := range []int{0, 1} {
		c := dpmpp3mCoeffs(sig, i, false)
		require.Len(t, c, i+1)
		h := lam(sig[i+1]) - lam(sig[i])
		lin := func(l float64) float64 { return 2 + float64(deg)*1.3*l }
		exact := -math.Expm1(-h)*lin(lam(sig[i])) + float64(deg)*1.3*(h-1+math.Exp(-h))
		got := 0.0
		for k, ck := range c {
			got += ck * lin(lam(sig[i-k]))
		}
		assert.InDelta(t, exact, got, 1e-12, "step %d", i)
	}
}

// φ_k by series and by recursion agree across the switch at |z| = 1, and k-diffusion's φ
// expressions are h φ2(−h) and −h φ3(−h).
func TestPhi(t *testing.T) {
	for k := 0; k <= 3; k++ {
		for _, z := range []float64{-1, 1} {
			in, out := phi(k, z*(1-1e-9)), phi(k, z*(1+1e-9))
			assert.InDelta(t, in, out, 1e-8, "φ_%d at %g", k, z)
		}
	}
	assert.InDelta(t, math.Exp(0.3), phi(0, 0.3), 1e-15)
	assert.InDelta(t, math.Expm1(-2)/-2, phi(1, -2), 1e-15)
	for _, h := range []float64{0.05, 0.5, 2, 9} {
		kd2 := math.Expm1(-h)/h + 1
		kd3 := kd2/h - 0.5 // cancels for small h: relative rounding ≈ 1e-16/h²
		assert.InDelta(t, kd2, h*phi(2, -h), 1e-13*kd2, "h = %g", h)
		assert.InDelta(t, -kd3, h*phi(3, -h), 1e-12*math.Abs(kd3), "h = %g", h)
	}
	// Small h, where the closed forms cancel: the Taylor series h/2 − h²/6 + h³/24 and h/6 − h²/24.
	const h = 1e-4
	assert.InDelta(t, h/2-h*h/6+h*h*h/24, h*phi(2, -h), 1e-17) // next term h⁴/120 ≈ 8e-19
	assert.InDelta(t, h/6-h*h/24+h*h*h/120, h*phi(3, -h), 1e-17)
}

// On a grid uniform in σ the variable-step iPNDM weights are the classic Adams–Bashforth ones, and
// on any grid they integrate polynomials of degree < q exactly.
func TestIPNDMWeights(t *testing.T) {
	uniform := []float64{10, 9, 8, 7, 6, 5}
	for i := 0; i+1 < len(uniform); i++ {
		assert.InDeltaSlice(t, ipndmWeights(uniform, i, true), ipndmWeights(uniform, i, false), 1e-13, "step %d", i)
	}
	sig := []float64{80, 41, 17.5, 6.2, 1.9, 0.3}
	poly := func(s float64) float64 { return 1.5 - 0.2*s + 0.03*s*s - 0.004*s*s*s }
	prim := func(s float64) float64 { return 1.5*s - 0.1*s*s + 0.01*s*s*s - 0.001*s*s*s*s }
	for i := 3; i+1 < len(sig); i++ {
		w := ipndmWeights(sig, i, false)
		require.Len(t, w, 4)
		got := 0.0
		for k, wk := range w {
			got += wk * poly(sig[i-k])
		}
		assert.InDelta(t, prim(sig[i+1])-prim(sig[i]), got, 1e-9*math.Abs(prim(sig[i])), "step %d", i)
	}
}

// Evaluation counts per chain, exactly, with grids ending at 0 and at σ_min > 0.
func TestDiffusionEvalCounts(t *testing.T) {
	den := gaussDenoiser{mu: []float64{0, 1}, s2: 0.5}
	const n, k = 3, 7
	for _, c := range []struct {
		method       string
		toZero, toMn int
	}{
		{MethodEuler, k, k}, {MethodHeun, 2*k - 1, 2 * k}, {MethodDPM2, 2*k - 1, 2 * k},
		{MethodDPMPP2M, k, k}, {MethodDPMPP3M, k, k}, {MethodIPNDM, k, k},
		{MethodEDMSDE, 2*k - 1, 2 * k}, {MethodDDIM, k, k}, {MethodDDPM, k, k},
	} {
		res, err := Diffusion(ops.CPU(), den, n, tensor.F64, DiffusionConfig{Method: c.method, Steps: k, Seed: 1})
		require.NoError(t, err, c.method)
		assert.Equal(t, int64(n*c.toZero), res.ScoreEvals, "%s to 0", c.method)
		assert.Equal(t, int64(c.toZero), res.ScoreCalls, "%s to 0", c.method)
		require.NoError(t, res.Close())
		res, err = Diffusion(ops.CPU(), den, n, tensor.F64, DiffusionConfig{Method: c.method, Sigmas: orderGrid(t, k), Seed: 1})
		require.NoError(t, err, c.method)
		assert.Equal(t, int64(n*c.toMn), res.ScoreEvals, "%s to sigma min", c.method)
		require.NoError(t, res.Close())
	}
}

// The trajectories: shapes, the grid, row 0 the start, row K the samples, and Denoised row i the
// denoiser at (x_i, σ_i); every method whose last step goes to σ = 0 by a pure denoising step ends
// exactly at D(x_{K−1}; σ_{K−1}).
func TestDiffusionTrajectory(t *testing.T) {
	b := ops.CPU()
	tg := twoModeFull(t)
	den := TargetDenoiser(tg)
	const n, k = 5, 9
	for _, m := range DiffusionMethods() {
		res, err := Diffusion(b, den, n, tensor.F64, DiffusionConfig{Method: m, Steps: k, Seed: 3, Trajectory: true})
		require.NoError(t, err, m)
		require.Equal(t, []int{k + 1, n, 2}, res.Trace.Shape(), m)
		require.Equal(t, []int{k, n, 2}, res.Denoised.Shape(), m)
		want, err := EDMSigmas(k, DefaultSigmaMin, DefaultSigmaMax, DefaultRho)
		require.NoError(t, err)
		assert.Equal(t, want, res.Sigmas, m)
		assert.Len(t, res.TraceSteps, k+1, m)
		tr, err := res.Trace.Float64s()
		require.NoError(t, err)
		dn, err := res.Denoised.Float64s()
		require.NoError(t, err)
		x, err := res.Samples.Float64s()
		require.NoError(t, err)
		assert.Equal(t, tr[k*n*2:], x, "%s: last trajectory row = samples", m)
		// Row 0 is the exact law of the target noised to σ_0.
		start, err := SampleNoised(tg, n, 1, want[0]*want[0], 3, 0)
		require.NoError(t, err)
		assert.Equal(t, start, tr[:n*2], "%s: initial state", m)
		if m != MethodEDMSDE { // edm-sde evaluates at the churned (x̂_i, σ̂_i)
			for i := 0; i < k; i++ {
				row, err := tensor.FromF64(tr[i*n*2:(i+1)*n*2], n, 2)
				require.NoError(t, err)
				d := newLike(t, row)
				require.NoError(t, den.Denoise(b, d, row, want[i]))
				dv, err := d.Float64s()
				require.NoError(t, err)
				assert.Equal(t, dv, dn[i*n*2:(i+1)*n*2], "%s: denoised row %d", m, i)
			}
		}
		switch m {
		case MethodEuler, MethodHeun, MethodDPM2, MethodDPMPP2M, MethodDPMPP3M, MethodEDMSDE, MethodDDIM, MethodDDPM:
			assert.Equal(t, dn[(k-1)*n*2:], x, "%s: the last step to 0 is x = D(x_{K-1}; σ_{K-1})", m)
		}
		assert.Equal(t, 0, res.NaN.Chains, m)
		require.NoError(t, res.Close())
	}
}

// DDIM is the Euler method in VE coordinates (η = 0), DDPM is DDIM with η = 1, and one DDIM step
// equals the VP formula of Song et al. computed literally on the host:
// x_s = α_s x̂0 + sqrt(s_s² − c²)(x_t − α_t x̂0)/s_t + c ξ, c = η (s_s/s_t) sqrt(1 − α_t²/α_s²).
func TestDDIMOnTheVPParametrisation(t *testing.T) {
	b := ops.CPU()
	tg := twoModeFull(t)
	den := TargetDenoiser(tg)
	run := func(cfg DiffusionConfig) []float64 {
		res, err := Diffusion(b, den, 6, tensor.F64, cfg)
		require.NoError(t, err, cfg.Method)
		defer res.Close()
		v, err := res.Samples.Float64s()
		require.NoError(t, err)
		return v
	}
	assert.Equal(t, run(DiffusionConfig{Method: MethodEuler, Steps: 12, Seed: 5}), run(DiffusionConfig{Method: MethodDDIM, Steps: 12, Seed: 5}))
	assert.Equal(t, run(DiffusionConfig{Method: MethodDDPM, Steps: 12, Seed: 5}), run(DiffusionConfig{Method: MethodDDIM, Eta: 1, Steps: 12, Seed: 5}))

	const seed = 8
	for _, c := range []struct{ s, sn, eta float64 }{{3, 1.2, 0.5}, {40, 10, 1}, {0.8, 0.05, 0.3}, {2, 0, 0.7}} {
		y0 := normalRows(t, 6, 2, c.s, 6) // the VE state at σ_i
		res, err := Diffusion(b, den, 6, tensor.F64, DiffusionConfig{Method: MethodDDIM, Eta: c.eta, Sigmas: []float64{c.s, c.sn}, X0: y0, Seed: seed})
		require.NoError(t, err)
		got := hostRows(t, res.Samples)
		require.NoError(t, res.Close())

		xhat := newLike(t, y0)
		require.NoError(t, den.Denoise(b, xhat, y0, c.s))
		xi := newLike(t, y0)
		require.NoError(t, b.Normal(xi, drawAt(seed, 0, PurposeDiffusion, 0)))
		at, st, _ := VPFromSigma(c.s)
		as, ss, _ := VPFromSigma(c.sn)
		cc := c.eta * ss / st * math.Sqrt(1-at*at/(as*as))
		ys, xs, xis := hostRows(t, y0), hostRows(t, xhat), hostRows(t, xi)
		for i := range ys {
			for j := range ys[i] {
				xt := at * ys[i][j] // the VP state
				x0 := xs[i][j]
				want := as*x0 + math.Sqrt(ss*ss-cc*cc)*(xt-at*x0)/st + cc*xis[i][j]
				assert.InDelta(t, want/as, got[i][j], 1e-11*(1+math.Abs(want/as)), "%+v row %d", c, i)
			}
		}
	}
}

// Mode weights, per-mode means and covariances of 10^4 samples of a 2-D three-mode mixture with
// full covariances match the mixture for heun, dpmpp-2m, edm-sde and ddpm. Each tolerance is 5
// Monte-Carlo standard errors (weight: sqrt(w(1−w)/N); mean: sqrt(Σ_jj/n_k); covariance entry:
// sqrt((Σ_jj Σ_ll + Σ_jl²)/n_k)) — a false-failure rate below 1e-5 over the 4 × 18 comparisons
// for exact samples — plus a discretisation allowance of 2% of the scale (0.005 for a weight).
// Measured over two seeds, the largest deviations were 2.1–2.7 standard errors for heun (32
// steps), 2.9–3.3 for dpmpp-2m (32), 3.1–3.9 for edm-sde (64) and 3.9–4.1 for ddpm (128), the
// stochastic samplers' first-order bias showing in the covariances (with twice the steps: 1.9–2.1
// for edm-sde, 2.4–3.7 for ddpm).
//
// The mixture's mean is 0: the default start σ_max ξ ignores the data's mean μ, which biases the
// samples by about μ s/σ_max (s the data's scale) — 4% of a mode's spread for μ = 4, s = 5.
func TestDiffusionSamplesGMM(t *testing.T) {
	spec := ops.GMMSpec{
		Weights: []float64{0.2, 0.3, 0.5},
		Means:   [][]float64{{-6, -4}, {4, -4}, {0, 4}},
		Covs:    [][][]float64{{{1, 0.5}, {0.5, 1}}, {{0.5, 0}, {0, 2}}, {{1.5, -0.6}, {-0.6, 0.8}}},
	}
	den := TargetDenoiser(gmmTarget(t, spec))
	const n = 10000
	for _, c := range []struct {
		method string
		steps  int
	}{
		{MethodHeun, 32}, {MethodDPMPP2M, 32}, {MethodEDMSDE, 64}, {MethodDDPM, 128},
	} {
		res, err := Diffusion(ops.CPU(), den, n, tensor.F64, DiffusionConfig{Method: c.method, Steps: c.steps, Seed: 21})
		require.NoError(t, err, c.method)
		rows := hostRows(t, res.Samples)
		require.NoError(t, res.Close())
		groups := byNearestMean(rows, spec.Means)
		for k, g := range groups {
			w := spec.Weights[k]
			assert.InDelta(t, w, float64(len(g))/n, 5*math.Sqrt(w*(1-w)/n)+0.005, "%s: weight of mode %d", c.method, k)
			m, cov := meanCov(g)
			nk := float64(len(g))
			S := spec.Covs[k]
			for j := 0; j < 2; j++ {
				assert.InDelta(t, spec.Means[k][j], m[j], 5*math.Sqrt(S[j][j]/nk)+0.02*math.Sqrt(S[j][j]), "%s: mode %d mean[%d]", c.method, k, j)
				for l := j; l < 2; l++ {
					se := math.Sqrt((S[j][j]*S[l][l] + S[j][l]*S[j][l]) / nk)
					assert.InDelta(t, S[j][l], cov[j][l], 5*se+0.02*math.Sqrt(S[j][j]*S[l][l]), "%s: mode %d cov[%d][%d]", c.method, k, j, l)
				}
			}
		}
	}
}

// DDIM inversion (and Heun's): encoding data to noise and decoding it back returns the data, the
// error shrinking with the steps at the method's order; the codes of exact data are Gaussian of
// standard deviation ≈ σ_max.
func TestDiffusionEncodeDecode(t *testing.T) {
	spec := ops.GMMSpec{Weights: []float64{0.5, 0.5}, Means: [][]float64{{-2, 0}, {2, 1}}, Vars: []float64{0.5, 0.3}}
	g := gmmTarget(t, spec)
	den := TargetDenoiser(g)
	const n = 200
	data, err := SampleGMM(g.Mixture, n, 9)
	require.NoError(t, err)
	x, err := tensor.FromF64(data, n, 2)
	require.NoError(t, err)
	for _, c := range []struct {
		method   string
		minSlope float64
	}{{MethodDDIM, 0.8}, {MethodHeun, 1.7}} {
		var lk, le []float64
		for _, k := range []int{16, 32, 64, 128} {
			grid := orderGrid(t, k)
			enc, err := DiffusionEncode(ops.CPU(), den, x, DiffusionConfig{Method: c.method, Sigmas: grid})
			require.NoError(t, err, c.method)
			assert.Equal(t, grid[0], enc.Sigmas[len(enc.Sigmas)-1], "%s: encoding ends at σ_max", c.method)
			codes := hostRows(t, enc.Samples)
			_, cov := meanCov(codes)
			for j := 0; j < 2; j++ {
				// the exact flow carries the data to p_{σ_max}, of standard deviation
				// sqrt(σ_max² + O(1)) ≈ σ_max; the sample standard deviation of 200 points has a
				// standard error of 5%, so 20% is 4 of them (false-failure rate ≈ 6e-5 each)
				assert.InDelta(t, 1, math.Sqrt(cov[j][j])/grid[0], 0.2, "%s k=%d: code spread", c.method, k)
			}
			dec, err := Diffusion(ops.CPU(), den, n, tensor.F64, DiffusionConfig{Method: c.method, Sigmas: grid, X0: enc.Samples})
			require.NoError(t, err)
			back, err := dec.Samples.Float64s()
			require.NoError(t, err)
			worst := 0.0
			for i := range back {
				worst = math.Max(worst, math.Abs(back[i]-data[i]))
			}
			t.Logf("%s k=%d: round-trip error %.2e", c.method, k, worst)
			lk = append(lk, math.Log(float64(k)))
			le = append(le, math.Log(worst))
			require.NoError(t, enc.Close())
			require.NoError(t, dec.Close())
		}
		for i := 1; i < len(le); i++ {
			assert.Less(t, le[i], le[i-1], "%s: error must shrink with the steps", c.method)
		}
		assert.GreaterOrEqual(t, -lsSlope(lk, le), c.minSlope, c.method)
	}
}

// Same seed, same samples; another seed, other samples; a run split by FirstChain reproduces the
// rows of the whole run exactly, for every stochastic method and dtype.
func TestDiffusionReproducibleAndSplittable(t *testing.T) {
	den := TargetDenoiser(twoModeFull(t))
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		for _, cfg := range []DiffusionConfig{
			{Method: MethodEDMSDE, Steps: 10, STMin: 0.01, STMax: math.Inf(1)},
			{Method: MethodDDIM, Eta: 0.5, Steps: 10},
			{Method: MethodDDPM, Steps: 10},
			{Method: MethodDPMPP3M, Steps: 10},
		} {
			run := func(n int, first, seed uint64) [][]float64 {
				c := cfg
				c.Seed, c.FirstChain = seed, first
				res, err := Diffusion(ops.CPU(), den, n, dt, c)
				require.NoError(t, err, cfg.Method)
				defer res.Close()
				return hostRows(t, res.Samples)
			}
			all := run(7, 0, 11)
			assert.Equal(t, all, run(7, 0, 11), "%s %v: same seed", cfg.Method, dt)
			assert.NotEqual(t, all, run(7, 0, 12), "%s %v: another seed", cfg.Method, dt)
			split := append(run(3, 0, 11), run(4, 3, 11)...)
			assert.Equal(t, all, split, "%s %v: split at chain 3", cfg.Method, dt)
		}
	}
}

// A chain whose start is not finite is reported, the others are not affected.
func TestDiffusionReportsNaN(t *testing.T) {
	den := TargetDenoiser(twoModeFull(t))
	x0, err := tensor.FromF64([]float64{1, 2, math.NaN(), 0, 3, -1}, 3, 2)
	require.NoError(t, err)
	for _, traj := range []bool{false, true} {
		res, err := Diffusion(ops.CPU(), den, 3, tensor.F64, DiffusionConfig{Method: MethodHeun, Steps: 6, X0: x0, Trajectory: traj})
		require.NoError(t, err)
		assert.Equal(t, 1, res.NaN.Chains)
		assert.Equal(t, 1, res.NaN.First)
		assert.Equal(t, []int{1}, res.NaN.Rows)
		wantStep := 6
		if traj {
			wantStep = 0 // seen on the first trajectory row
		}
		assert.Equal(t, wantStep, res.NaN.Step, "trajectory %t", traj)
		rows := hostRows(t, res.Samples)
		for _, i := range []int{0, 2} {
			for _, v := range rows[i] {
				assert.False(t, math.IsNaN(v) || math.IsInf(v, 0), "row %d", i)
			}
		}
		require.NoError(t, res.Close())
	}
}

func TestDiffusionErrors(t *testing.T) {
	b := ops.CPU()
	den := gaussDenoiser{mu: []float64{0, 0}, s2: 1}
	x32, err := tensor.New(nil, tensor.F32, 4, 2)
	require.NoError(t, err)
	x3, err := tensor.New(nil, tensor.F64, 4, 3)
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		cfg  DiffusionConfig
		want string
	}{
		{"no method", DiffusionConfig{Steps: 4}, `no method: set Method to one of "euler", "heun", "dpm2", "dpmpp-2m", "dpmpp-3m", "ipndm", "edm-sde", "ddim", "ddpm"`},
		{"unknown method", DiffusionConfig{Method: "rk4", Steps: 4}, `unknown method "rk4" (want one of "euler", "heun"`},
		{"no steps", DiffusionConfig{Method: MethodEuler}, "steps = 0: need at least one step"},
		{"negative steps", DiffusionConfig{Method: MethodEuler, Steps: -1}, "steps = -1"},
		{"too many steps", DiffusionConfig{Method: MethodEuler, Steps: MaxDiffusionSteps + 1}, "at most"},
		{"unknown schedule", DiffusionConfig{Method: MethodEuler, Steps: 4, Schedule: "cosine"}, `unknown schedule "cosine"`},
		{"rho on logsnr", DiffusionConfig{Method: MethodEuler, Steps: 4, Schedule: ScheduleLogSNR, Rho: 3}, `only the "edm" schedule takes rho`},
		{"min ≥ max", DiffusionConfig{Method: MethodEuler, Steps: 4, SigmaMin: 90}, "sigma min = 90 ≥ sigma max = 80"},
		{"bad grid", DiffusionConfig{Method: MethodEuler, Sigmas: []float64{1, 2, 0}}, "levels must decrease strictly"},
		{"grid and schedule", DiffusionConfig{Method: MethodEuler, Sigmas: []float64{2, 1, 0}, SigmaMax: 2}, "give either Sigmas or a schedule"},
		{"grid and steps", DiffusionConfig{Method: MethodEuler, Sigmas: []float64{2, 1, 0}, Steps: 3}, "steps = 3, but the 3 levels of Sigmas make 2 steps"},
		{"eta on heun", DiffusionConfig{Method: MethodHeun, Steps: 4, Eta: 0.5}, `eta is a parameter of "ddim" only`},
		{"eta on ddpm", DiffusionConfig{Method: MethodDDPM, Steps: 4, Eta: 0.5}, `"ddpm" is eta = 1`},
		{"eta > 1", DiffusionConfig{Method: MethodDDIM, Steps: 4, Eta: 1.5}, "eta = 1.5: must be in [0, 1]"},
		{"eta NaN", DiffusionConfig{Method: MethodDDIM, Steps: 4, Eta: math.NaN()}, "eta = NaN"},
		{"churn on heun", DiffusionConfig{Method: MethodHeun, Steps: 4, SChurn: 10}, `parameters of "edm-sde" only`},
		{"negative churn", DiffusionConfig{Method: MethodEDMSDE, Steps: 4, SChurn: -1}, "s_churn = -1"},
		{"tmax ≤ tmin", DiffusionConfig{Method: MethodEDMSDE, Steps: 4, STMin: 5, STMax: 1}, "s_tmax = 1: must be > s_tmin = 5"},
		{"negative tmin", DiffusionConfig{Method: MethodEDMSDE, Steps: 4, STMin: -1}, "s_tmin = -1"},
		{"negative s_noise", DiffusionConfig{Method: MethodEDMSDE, Steps: 4, SNoise: -1}, "s_noise = -1"},
		{"classic on euler", DiffusionConfig{Method: MethodEuler, Steps: 4, Classic: true}, "classic coefficients exist for"},
		{"chains out of range", DiffusionConfig{Method: MethodEuler, Steps: 4, FirstChain: ops.MaxChains}, "chain indices must be below 2^32"},
		{"X0 dtype", DiffusionConfig{Method: MethodEuler, Steps: 4, X0: x32}, "initial state is f32, the run is f64"},
		{"X0 shape", DiffusionConfig{Method: MethodEuler, Steps: 4, X0: x3}, "initial state has shape [4 3], want (4, 2)"},
	} {
		_, err := Diffusion(b, den, 4, tensor.F64, c.cfg)
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
	}
	_, err = Diffusion(b, den, 0, tensor.F64, DiffusionConfig{Method: MethodEuler, Steps: 4})
	assert.ErrorContains(t, err, "chains n = 0")
	_, err = Diffusion(nil, den, 4, tensor.F64, DiffusionConfig{Method: MethodEuler, Steps: 4})
	assert.ErrorContains(t, err, "nil backend")
	_, err = Diffusion(b, nil, 4, tensor.F64, DiffusionConfig{Method: MethodEuler, Steps: 4})
	assert.ErrorContains(t, err, "nil denoiser")
	_, err = Diffusion(b, den, 4, tensor.DType(9), DiffusionConfig{Method: MethodEuler, Steps: 4})
	assert.ErrorContains(t, err, "want f32 or f64")

	x, err := tensor.New(nil, tensor.F64, 4, 2)
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		cfg  DiffusionConfig
		want string
	}{
		{"stochastic", DiffusionConfig{Method: MethodEDMSDE, Steps: 4}, "stochastic"},
		{"ddpm", DiffusionConfig{Method: MethodDDPM, Steps: 4}, "stochastic"},
		{"ddim eta", DiffusionConfig{Method: MethodDDIM, Steps: 4, Eta: 0.2}, "eta = 0.2"},
		{"X0", DiffusionConfig{Method: MethodEuler, Steps: 4, X0: x}, "X0 must be nil"},
		{"one level", DiffusionConfig{Method: MethodEuler, Steps: 1}, "encoding needs at least two"},
	} {
		_, err := DiffusionEncode(b, den, x, c.cfg)
		require.Error(t, err, c.name)
		assert.Contains(t, err.Error(), c.want, c.name)
	}
	_, err = DiffusionEncode(b, den, x3, DiffusionConfig{Method: MethodEuler, Steps: 4})
	assert.ErrorContains(t, err, "want (4, 2)")
}

// A denoiser failure surfaces as an error naming the step.
type failingDenoiser struct{ gaussDenoiser }

func (f failingDenoiser) Denoise(b ops.Backend, dst, x *tensor.Tensor, sigma float64) error {
	if sigma < 1 {
		return fmt.Errorf("out of range")
	}
	return f.gaussDenoiser.Denoise(b, dst, x, sigma)
}

// The prior start is σ_0 ξ with ξ the normals of Site(0, PurposeInit); a denoiser that cannot
// draw its noised law runs with it and is refused the exact start with a message naming it.
func TestDiffusionPriorStart(t *testing.T) {
	b := ops.CPU()
	const n, k = 5, 3
	den := TargetDenoiser(twoModeFull(t))
	res, err := Diffusion(b, den, n, tensor.F64, DiffusionConfig{Method: MethodEuler, Steps: k, Seed: 3,
		Trajectory: true, Init: InitPrior})
	require.NoError(t, err)
	defer res.Close()
	tr, err := res.Trace.Float64s()
	require.NoError(t, err)
	xi := newLike(t, res.Samples)
	require.NoError(t, b.Normal(xi, drawAt(3, 0, PurposeInit, 0)))
	xiv, err := xi.Float64s()
	require.NoError(t, err)
	for j := range xiv {
		assert.InDelta(t, res.Sigmas[0]*xiv[j], tr[j], 1e-12*res.Sigmas[0], "initial state")
	}
	plain := plainDenoiser{den}
	_, err = Diffusion(b, plain, n, tensor.F64, DiffusionConfig{Method: MethodEuler, Steps: k})
	assert.ErrorContains(t, err, `cannot draw its noised law exactly (the default start): start from the Gaussian prior with Init "prior"`)
	res2, err := Diffusion(b, plain, n, tensor.F64, DiffusionConfig{Method: MethodEuler, Steps: k, Init: InitPrior})
	require.NoError(t, err)
	res2.Close()
	_, err = Diffusion(b, den, n, tensor.F64, DiffusionConfig{Method: MethodEuler, Steps: k, Init: "gaussian"})
	assert.ErrorContains(t, err, `init "gaussian": want "exact"`)
}

// plainDenoiser hides every method but the Denoiser interface's.
type plainDenoiser struct{ d Denoiser }

func (p plainDenoiser) Dim() int       { return p.d.Dim() }
func (p plainDenoiser) String() string { return "a plain denoiser" }
func (p plainDenoiser) Denoise(b ops.Backend, dst, x *tensor.Tensor, sigma float64) error {
	return p.d.Denoise(b, dst, x, sigma)
}

func TestDiffusionDenoiserError(t *testing.T) {
	den := failingDenoiser{gaussDenoiser{mu: []float64{0}, s2: 1}}
	_, err := Diffusion(ops.CPU(), den, 2, tensor.F32, DiffusionConfig{Method: MethodHeun, Sigmas: []float64{4, 2, 0.5, 0}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "step 1 (sigma 2 → 0.5)")
	assert.Contains(t, err.Error(), "out of range")
}

// A generated grid whose neighbouring levels round to the same number is refused up front.
func TestDiffusionRefusesDegenerateGrids(t *testing.T) {
	den := TargetDenoiser(gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{0}}, Vars: []float64{1}}))
	_, err := Diffusion(ops.CPU(), den, 4, tensor.F64, DiffusionConfig{Method: MethodDPMPP2M, Steps: 1000, SigmaMin: 1, SigmaMax: 1 + 1e-13})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "edm schedule with 1000 steps")
}
