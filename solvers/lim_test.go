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

// limImbalanced is the 2-D mixture of the LIM tests: weights 0.9/0.1, modes 4 apart.
func limImbalanced(t testing.TB) target.GMM {
	return gmmTarget(t, ops.GMMSpec{Weights: []float64{0.9, 0.1}, Means: [][]float64{{-2, 0}, {2, 0.5}},
		Covs: [][][]float64{{{0.3, 0.1}, {0.1, 0.2}}, {{0.2, 0}, {0, 0.4}}}})
}

// The quadrature of A: a probability rule (weights sum to 1, nodes increasing), the single node
// 1 at α = 2, and the Laplace transform E e^{−λA} = e^{−λ^{α/2}} to within a bound that shrinks
// with Q (the measured errors are about 3e-4, 2e-4 at Q = 64 for α = 1.5, 1.8, and 4–6 times
// smaller at Q = 256).
func TestStableMixingQuadrature(t *testing.T) {
	nodes, w, err := StableMixingQuadrature(2, 64)
	require.NoError(t, err)
	assert.Equal(t, []float64{1}, nodes)
	assert.Equal(t, []float64{1}, w)
	for _, alpha := range []float64{1.5, 1.8} {
		a := alpha / 2
		laplaceErr := func(q int) float64 {
			nodes, w, err := StableMixingQuadrature(alpha, q)
			require.NoError(t, err)
			require.Len(t, nodes, q)
			sum := 0.0
			for i := range nodes {
				sum += w[i]
				require.Greater(t, w[i], 0.0)
				if i > 0 {
					require.Greater(t, nodes[i], nodes[i-1])
				}
			}
			assert.InDelta(t, 1, sum, 1e-14)
			worst := 0.0
			for _, lam := range []float64{0.01, 0.1, 0.5, 1, 3, 10, 100} {
				s := 0.0
				for i := range nodes {
					s += w[i] * math.Exp(-lam*nodes[i])
				}
				worst = math.Max(worst, math.Abs(s-math.Exp(-math.Pow(lam, a))))
			}
			return worst
		}
		// The largest node sits at the tail probability (1/(2Q))^3, where the tail is Pareto,
		// P(A > x) = x^{−a}/Γ(1 − a) (1 + O(x^{−a})).
		nodes, _, err := StableMixingQuadrature(alpha, 64)
		require.NoError(t, err)
		top := nodes[63]
		assert.InDelta(t, 1, math.Pow(top, -a)/math.Gamma(1-a)/math.Pow(1.0/128, 3), 0.01, "α = %g: largest node %g", alpha, top)
		e64, e256 := laplaceErr(64), laplaceErr(256)
		t.Logf("α = %g: Laplace-transform error %.2e at Q = 64, %.2e at Q = 256", alpha, e64, e256)
		assert.Less(t, e64, 1e-3)
		assert.Less(t, e256, e64/3)
	}
}

// The two evaluations of A's distribution function agree where both are accurate, and the tail
// series has the Pareto asymptote x^{−a}/Γ(1 − a).
func TestPositiveStableLaw(t *testing.T) {
	for _, a := range []float64{0.6, 0.75, 0.9} {
		l := newPositiveStableLaw(a)
		for _, x := range []float64{2, 5, 20} {
			lx := math.Log(x)
			integral := 0.0
			for _, pk := range l.plogK {
				integral += -math.Expm1(-math.Exp(pk - l.p*lx))
			}
			integral /= float64(len(l.plogK))
			assert.InDelta(t, integral, l.tailSeries(lx), 1e-9, "a = %g, x = %g", a, x)
		}
		x := 1e8
		assert.InDelta(t, 1, l.tailSeries(math.Log(x))*math.Gamma(1-a)*math.Pow(x, a), 1e-3)
	}
}

// LIMScales keeps a^α + s^α = 1 and s/a = ρ, and at α = 2 is VPFromSigma.
func TestLIMScales(t *testing.T) {
	for _, alpha := range []float64{1.2, 1.5, 1.8, 2} {
		for _, rho := range []float64{1e-3, 0.5, 1, 7, 80} {
			a, s := LIMScales(alpha, rho)
			assert.InDelta(t, 1, math.Pow(a, alpha)+math.Pow(s, alpha), 1e-14)
			assert.InDelta(t, rho, s/a, 1e-14*rho)
		}
	}
	a, s, _ := VPFromSigma(3)
	a2, s2 := LIMScales(2, 3)
	assert.Equal(t, a, a2)
	assert.Equal(t, s, s2)
}

// The forward law: a·y + s·S for one data point y = 0 has the characteristic function
// exp(−(s²‖u‖²/2)^{α/2}); the empirical one (mean of cos⟨u, X⟩, the sine part vanishing by
// symmetry) is within 5 Monte-Carlo standard errors at several u (a false failure about 6e-7 per
// comparison); for the test mixture the same with its own characteristic function at a·u. At
// α = 2 the samples are SampleNoised's, bit for bit.
func TestSampleLIMNoisedLaw(t *testing.T) {
	data, err := tensor.FromF64([]float64{0, 0}, 1, 2)
	require.NoError(t, err)
	set, err := ops.NewEmpirical(data)
	require.NoError(t, err)
	point := target.Empirical{DataSet: set}
	const n = 200000
	for _, alpha := range []float64{1.5, 1.8} {
		a, s := LIMScales(alpha, 1.3)
		x, err := SampleLIMNoised(point, n, alpha, a, s, 11, 0)
		require.NoError(t, err)
		for _, u := range [][2]float64{{0.2, 0}, {0.5, 0.5}, {0, 1}, {1.5, -0.7}} {
			sum, sq := 0.0, 0.0
			for i := 0; i < n; i++ {
				c := math.Cos(u[0]*x[2*i] + u[1]*x[2*i+1])
				sum += c
				sq += c * c
			}
			mean := sum / n
			se := math.Sqrt((sq/n - mean*mean) / n)
			want := math.Exp(-math.Pow(s*s*(u[0]*u[0]+u[1]*u[1])/2, alpha/2))
			assert.InDelta(t, want, mean, 5*se, "α = %g, u = %v", alpha, u)
		}
	}
	// The mixture: E cos⟨u, X⟩ = Re φ_{X_0}(a u) · exp(−(s²‖u‖²/2)^{α/2}), φ_{X_0}(v) =
	// Σ_k w_k e^{i⟨v, μ_k⟩ − vᵀΣ_k v/2}.
	g := limImbalanced(t)
	p := g.Mixture.Params()
	for _, alpha := range []float64{1.5, 1.8} {
		a, s := LIMScales(alpha, 0.8)
		x, err := SampleLIMNoised(g, n, alpha, a, s, 12, 0)
		require.NoError(t, err)
		for _, u := range [][2]float64{{0.3, 0}, {0.8, 0.4}, {0, 1.2}} {
			sum, sq := 0.0, 0.0
			for i := 0; i < n; i++ {
				c := math.Cos(u[0]*x[2*i] + u[1]*x[2*i+1])
				sum += c
				sq += c * c
			}
			mean := sum / n
			se := math.Sqrt((sq/n - mean*mean) / n)
			re := 0.0
			for k := 0; k < p.K; k++ {
				c := covOf(p, k)
				v := [2]float64{a * u[0], a * u[1]}
				quad := v[0]*v[0]*c[0][0] + 2*v[0]*v[1]*c[0][1] + v[1]*v[1]*c[1][1]
				re += math.Exp(p.LogWeights[k]) * math.Cos(v[0]*p.Means[2*k]+v[1]*p.Means[2*k+1]) * math.Exp(-quad/2)
			}
			want := re * math.Exp(-math.Pow(s*s*(u[0]*u[0]+u[1]*u[1])/2, alpha/2))
			assert.InDelta(t, want, mean, 5*se, "mixture, α = %g, u = %v", alpha, u)
		}
	}
	a, s := LIMScales(2, 2.5)
	lim, err := SampleLIMNoised(g, 500, 2, a, s, 3, 7)
	require.NoError(t, err)
	gauss, err := SampleNoised(g, 500, a, s*s, 3, 7)
	require.NoError(t, err)
	assert.Equal(t, gauss, lim)
}

// limBruteForce is E[X_0 | X_0 + ρ√A G = y] for the mixture by Monte Carlo over A (draws of
// ops.StablePositive, independent of the quadrature), with the standard error of each
// coordinate of the ratio estimator (delta method).
func limBruteForce(t testing.TB, g target.GMM, alpha, rho float64, y []float64, m int) (mean, se []float64) {
	at, err := tensor.New(tensor.CPU(), tensor.F64, m, 1)
	require.NoError(t, err)
	_, err = ops.CPU().Stable(at, ops.StableSpec{Kind: ops.StablePositive, Alpha: alpha / 2}, ops.Draw{Seed: 99})
	require.NoError(t, err)
	as, _ := at.F64()
	p := g.Mixture.Params()
	d := p.D
	num := make([][]float64, d)
	den := make([]float64, m)
	for j := range num {
		num[j] = make([]float64, m)
	}
	for i, A := range as {
		// p(y | A) and p(y | A)·E[X_0 | y, A] = Σ_k w_k N_k (μ_k + Σ_k (Σ_k + vI)^{−1}(y − μ_k)).
		v := rho * rho * A
		for k := 0; k < p.K; k++ {
			mu, c := p.Means[k*d:(k+1)*d], covOf(p, k)
			wk := math.Exp(p.LogWeights[k]) * gaussDensity(y, mu, c, v)
			a, b, dd := c[0][0]+v, c[0][1], c[1][1]+v
			det := a*dd - b*b
			x0, x1 := y[0]-mu[0], y[1]-mu[1]
			i0, i1 := (dd*x0-b*x1)/det, (-b*x0+a*x1)/det // (Σ + vI)^{−1}(y − μ)
			den[i] += wk
			num[0][i] += wk * (mu[0] + c[0][0]*i0 + c[0][1]*i1)
			num[1][i] += wk * (mu[1] + c[1][0]*i0 + c[1][1]*i1)
		}
	}
	mean, se = make([]float64, d), make([]float64, d)
	mD, vD := meanVar(den)
	for j := 0; j < d; j++ {
		mN, vN := meanVar(num[j])
		cov := 0.0
		for i := range den {
			cov += (num[j][i] - mN) * (den[i] - mD)
		}
		cov /= float64(m)
		r := mN / mD
		mean[j] = r
		se[j] = math.Sqrt((vN-2*r*cov+r*r*vD)/float64(m)) / mD
	}
	return mean, se
}

func meanVar(v []float64) (float64, float64) {
	m := 0.0
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	s := 0.0
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	return m, s / float64(len(v))
}

// covOf returns component k's covariance U diag(λ) Uᵀ as a dense matrix.
func covOf(p ops.GMMParams, k int) [][]float64 {
	d := p.D
	c := make([][]float64, d)
	for r := range c {
		c[r] = make([]float64, d)
		for s := range c[r] {
			for j := 0; j < d; j++ {
				c[r][s] += p.U[k*d*d+r*d+j] * p.Lambda[k*d+j] * p.U[k*d*d+s*d+j]
			}
		}
	}
	return c
}

// gaussDensity is N(y; μ, C + v I) for d = 2 by the explicit 2×2 inverse.
func gaussDensity(y, mu []float64, c [][]float64, v float64) float64 {
	a, b, dd := c[0][0]+v, c[0][1], c[1][1]+v
	det := a*dd - b*b
	x0, x1 := y[0]-mu[0], y[1]-mu[1]
	q := (dd*x0*x0 - 2*b*x0*x1 + a*x1*x1) / det
	return math.Exp(-q/2) / (2 * math.Pi * math.Sqrt(det))
}

// limDenoiseRow is the denoiser of one row y at level rho on the CPU.
func limDenoiseRow(t *testing.T, den *LIMDenoiser, y []float64, rho float64) []float64 {
	t.Helper()
	yt, err := tensor.FromF64(append([]float64(nil), y...), 1, len(y))
	require.NoError(t, err)
	dst, err := tensor.New(nil, tensor.F64, 1, len(y))
	require.NoError(t, err)
	require.NoError(t, den.Denoise(ops.CPU(), dst, yt, rho))
	out, err := dst.F64()
	require.NoError(t, err)
	return out
}

// The mixture denoiser against a brute-force Monte-Carlo evaluation (2·10^5 draws of A, its own
// 2×2 algebra): within 5 standard errors plus the quadrature's own error, measured here as the
// difference of Q = 64 and Q = 512 and bounded by 2e-3 (it is at most a few 1e-4).
func TestLIMDenoiserBruteForce(t *testing.T) {
	g := limImbalanced(t)
	for _, alpha := range []float64{1.5, 1.8} {
		d64, err := NewLIMDenoiser(g, alpha, 64)
		require.NoError(t, err)
		d512, err := NewLIMDenoiser(g, alpha, 512)
		require.NoError(t, err)
		for _, rho := range []float64{0.3, 1, 4} {
			for _, y := range [][]float64{{0, 0.2}, {-1.5, 1}, {3, -2}, {12, 5}} {
				got, fine := limDenoiseRow(t, d64, y, rho), limDenoiseRow(t, d512, y, rho)
				mc, se := limBruteForce(t, g, alpha, rho, y, 200000)
				for j := range got {
					q := math.Abs(got[j] - fine[j])
					assert.Less(t, q, 2e-3, "α = %g, ρ = %g, y = %v: Q = 64 vs 512", alpha, rho, y)
					assert.InDelta(t, mc[j], got[j], 5*se[j]+q, "α = %g, ρ = %g, y = %v (MC %v ± %v)", alpha, rho, y, mc, se)
				}
				t.Logf("α = %g ρ = %-3g y = %-9v D = (%.5f, %.5f), |Q64 − Q512| ≤ %.1e, MC (%.5f, %.5f) ± (%.1e, %.1e)",
					alpha, rho, y, got[0], got[1], math.Max(math.Abs(got[0]-fine[0]), math.Abs(got[1]-fine[1])), mc[0], mc[1], se[0], se[1])
			}
		}
	}
}

// The empirical path (ops.Backend.EmpiricalScore on the data set with the quadrature as its scale
// mixture) is the posterior mean Σ r_iq y_i written out here, and at α = 2 the mixture path is
// TargetDenoiser's to round-off.
func TestLIMDenoiserPaths(t *testing.T) {
	pts := []float64{-1, 0, 2, 1, 0.5, -2}
	data, err := tensor.FromF64(pts, 3, 2)
	require.NoError(t, err)
	set, err := ops.NewEmpirical(data)
	require.NoError(t, err)
	emp := target.Empirical{DataSet: set}
	den, err := NewLIMDenoiser(emp, 1.6, 32)
	require.NoError(t, err)
	ys := [][]float64{{0, 0}, {3, 3}, {-4, 1}, {0.4, -1.9}}
	x := fromRows(t, tensor.F64, ys)
	dst, err := tensor.New(nil, tensor.F64, len(ys), 2)
	require.NoError(t, err)
	nodes, w := den.Nodes(), den.Weights()
	for _, rho := range []float64{0.2, 1, 5} {
		require.NoError(t, den.Denoise(ops.CPU(), dst, x, rho))
		got := hostRows(t, dst)
		for r, y := range ys {
			var num [2]float64
			tot := 0.0
			for i := 0; i < 3; i++ {
				for q := range nodes {
					v := rho * rho * nodes[q]
					dx, dy := y[0]-pts[2*i], y[1]-pts[2*i+1]
					wt := w[q] / v * math.Exp(-(dx*dx+dy*dy)/(2*v))
					tot += wt
					num[0] += wt * pts[2*i]
					num[1] += wt * pts[2*i+1]
				}
			}
			assert.InDelta(t, num[0]/tot, got[r][0], 1e-10, "ρ = %g, y = %v", rho, y)
			assert.InDelta(t, num[1]/tot, got[r][1], 1e-10, "ρ = %g, y = %v", rho, y)
		}
	}
	g := limImbalanced(t)
	l2, err := NewLIMDenoiser(g, 2, 0)
	require.NoError(t, err)
	ref, err := tensor.New(nil, tensor.F64, len(ys), 2)
	require.NoError(t, err)
	for _, rho := range []float64{0.05, 1, 30} {
		require.NoError(t, l2.Denoise(ops.CPU(), dst, x, rho))
		require.NoError(t, TargetDenoiser(g).Denoise(ops.CPU(), ref, x, rho))
		a, b := hostRows(t, dst), hostRows(t, ref)
		for r := range a {
			for j := range a[r] {
				assert.InDelta(t, b[r][j], a[r][j], 1e-12*(1+math.Abs(b[r][j])))
			}
		}
	}
}

// LIM at α = 2 is DDIM: the same grid, the same exact start (bit for bit), the same update, and
// denoisers equal to round-off, so the samples agree to round-off in f64 (measured ≤ 1e-13)
// and, in f32, to a few ulp of the state (measured below 1e-5).
func TestLIMAlpha2IsDDIM(t *testing.T) {
	g := limImbalanced(t)
	den, err := NewLIMDenoiser(g, 2, 0)
	require.NoError(t, err)
	for _, c := range []struct {
		dt  tensor.DType
		tol float64
	}{{tensor.F64, 1e-11}, {tensor.F32, 5e-5}} {
		const n = 2000
		ddim, err := Diffusion(ops.CPU(), TargetDenoiser(g), n, c.dt, DiffusionConfig{Method: MethodDDIM, Steps: 24, Seed: 5})
		require.NoError(t, err)
		lim, err := LIM(ops.CPU(), den, n, c.dt, LIMConfig{Alpha: 2, Steps: 24, Seed: 5})
		require.NoError(t, err)
		a, b := hostRows(t, ddim.Samples), hostRows(t, lim.Samples)
		worst := 0.0
		for i := range a {
			for j := range a[i] {
				worst = math.Max(worst, math.Abs(a[i][j]-b[i][j]))
			}
		}
		t.Logf("%v: max |LIM(α = 2) − DDIM| = %.2e over %d chains", c.dt, worst, n)
		assert.Less(t, worst, c.tol)
		assert.Equal(t, ddim.ScoreEvals, lim.ScoreEvals)
		require.NoError(t, ddim.Close())
		require.NoError(t, lim.Close())
	}
}

// The imbalanced mixture's minority weight 0.1 is recovered at α = 1.5 and 1.8, by the
// deterministic sampler at 40 steps and the stochastic one (η = 1, no clamp) at 160: the fraction
// of samples nearer the minority mode is within 4.5 binomial standard errors (sqrt(0.09/N) =
// 0.0042 at N = 5000; a false failure about 7e-6 per run, misclassification at these separations
// about 1e-6). The stochastic sampler's heavy-tailed kicks make its discretisation bias larger
// than the deterministic one's (at α = 1.5 and N = 20000 the minority weight is 0.088 at 40
// steps, 0.093 at 160 and 0.097 at 480, standard error 0.002; docs/math.md §5.2.1), hence its
// longer grid here.
func TestLIMMinorityWeight(t *testing.T) {
	if testing.Short() {
		t.Skip("sampling run")
	}
	g := limImbalanced(t)
	const n = 5000
	means := [][]float64{{-2, 0}, {2, 0.5}}
	se := math.Sqrt(0.1 * 0.9 / n)
	for _, alpha := range []float64{1.5, 1.8} {
		den, err := NewLIMDenoiser(g, alpha, 0)
		require.NoError(t, err)
		for _, c := range []struct {
			eta   float64
			steps int
		}{{0, 40}, {1, 160}} {
			res, err := LIM(ops.CPU(), den, n, tensor.F64, LIMConfig{Alpha: alpha, Steps: c.steps, Eta: c.eta, Seed: 21})
			require.NoError(t, err)
			assert.Zero(t, res.NaN.Chains)
			groups := byNearestMean(hostRows(t, res.Samples), means)
			frac := float64(len(groups[1])) / n
			t.Logf("α = %g, η = %g, %d steps: minority weight %.4f ± %.4f (want 0.1)", alpha, c.eta, c.steps, frac, se)
			assert.InDelta(t, 0.1, frac, 4.5*se, "α = %g, η = %g", alpha, c.eta)
			for k, grp := range groups {
				m, _ := meanCov(grp)
				assert.InDelta(t, means[k][0], m[0], 0.1, "α = %g, η = %g: mode %d", alpha, c.eta, k)
			}
			require.NoError(t, res.Close())
		}
	}
}

// The clamp clips the injected noise and counts exactly the values the isotropic draws of the
// steps clip (recounted here from the same draws); the exact start is not clipped.
func TestLIMClampCount(t *testing.T) {
	g := limImbalanced(t)
	den, err := NewLIMDenoiser(g, 1.5, 16)
	require.NoError(t, err)
	const n, steps = 300, 6
	cfg := LIMConfig{Alpha: 1.5, Steps: steps, Eta: 1, Clamp: 1.5, Seed: 4}
	res, err := LIM(ops.CPU(), den, n, tensor.F64, cfg)
	require.NoError(t, err)
	defer res.Close()
	noise, err := tensor.New(nil, tensor.F64, n, 2)
	require.NoError(t, err)
	want := int64(0)
	for i := 0; i < steps-1; i++ { // the last step, to ρ = 0, draws nothing
		c, err := ops.CPU().Stable(noise, ops.StableSpec{Kind: ops.StableIsotropic, Alpha: 1.5, Clamp: 1.5},
			drawAt(4, i+1, PurposeLIM, 0))
		require.NoError(t, err)
		want += c
	}
	assert.Equal(t, want, res.Clamped)
	assert.Greater(t, res.Clamped, int64(0))
	cfg.Clamp = 0
	free, err := LIM(ops.CPU(), den, n, tensor.F64, cfg)
	require.NoError(t, err)
	defer free.Close()
	assert.Zero(t, free.Clamped)
	assert.NotEqual(t, hostRows(t, free.Samples), hostRows(t, res.Samples))
}

// Trajectories, the registry and batching: rows of the trace, the method's options, and a run split
// into two batches of chains equals the single run.
func TestLIMRegistryAndBatches(t *testing.T) {
	g := limImbalanced(t)
	m, err := LookupMethod(MethodLIM)
	require.NoError(t, err)
	for _, o := range []string{"alpha", "clamp", "eta", "sigma-max", "init"} {
		assert.True(t, m.Takes(o), o)
	}
	run, err := m.Run(ops.CPU(), g, 40, tensor.F64, MethodOptions{Budget: 8, Seed: 2, Alpha: 1.7, Eta: 0.5,
		Clamp: 20, Trajectory: true})
	require.NoError(t, err)
	defer run.Close()
	assert.Equal(t, 8, run.Steps)
	assert.Equal(t, []int{9, 40, 2}, run.Trace.Shape())
	assert.Equal(t, int64(8*40), run.ScoreEvals)
	den, err := NewLIMDenoiser(g, 1.7, 0)
	require.NoError(t, err)
	cfg := LIMConfig{Alpha: 1.7, Steps: 8, Eta: 0.5, Clamp: 20, Seed: 2}
	whole, err := LIM(ops.CPU(), den, 40, tensor.F64, cfg)
	require.NoError(t, err)
	defer whole.Close()
	assert.Equal(t, hostRows(t, run.Samples), hostRows(t, whole.Samples))
	cfg.FirstChain = 25
	tail, err := LIM(ops.CPU(), den, 15, tensor.F64, cfg)
	require.NoError(t, err)
	defer tail.Close()
	assert.Equal(t, hostRows(t, whole.Samples)[25:], hostRows(t, tail.Samples))
	_, err = m.Run(ops.CPU(), g, 4, tensor.F64, MethodOptions{Budget: 3, Churn: 2})
	assert.ErrorContains(t, err, "does not take")
}

// Bad input is an error that names the problem, never a panic.
func TestLIMErrors(t *testing.T) {
	g := limImbalanced(t)
	den, err := NewLIMDenoiser(g, 1.5, 8)
	require.NoError(t, err)
	for _, alpha := range []float64{1, 0.5, 2.5, math.NaN(), math.Inf(1), -1.5} {
		_, err := NewLIMDenoiser(g, alpha, 8)
		assert.ErrorContains(t, err, "must be in (1, 2]", "α = %g", alpha)
		_, err = LIM(ops.CPU(), den, 4, tensor.F64, LIMConfig{Alpha: alpha, Steps: 3})
		assert.ErrorContains(t, err, "must be in (1, 2]", "α = %g", alpha)
		_, err = SampleLIMNoised(g, 4, alpha, 1, 1, 0, 0)
		assert.ErrorContains(t, err, "must be in (1, 2]")
	}
	_, _, err = StableMixingQuadrature(1.5, 0)
	assert.ErrorContains(t, err, "0 nodes")
	_, err = NewLIMDenoiser(g, 1.5, -3)
	assert.ErrorContains(t, err, "nodes")
	cases := []struct {
		name string
		cfg  LIMConfig
		want string
	}{
		{"no steps", LIMConfig{Alpha: 1.5}, "need at least one step"},
		{"negative steps", LIMConfig{Alpha: 1.5, Steps: -2}, "need at least one step"},
		{"increasing grid", LIMConfig{Alpha: 1.5, Sigmas: []float64{1, 2, 0}}, "decrease strictly"},
		{"flat grid", LIMConfig{Alpha: 1.5, Sigmas: []float64{2, 2, 0}}, "decrease strictly"},
		{"NaN level", LIMConfig{Alpha: 1.5, Sigmas: []float64{math.NaN(), 1, 0}}, "finite"},
		{"infinite level", LIMConfig{Alpha: 1.5, Sigmas: []float64{math.Inf(1), 1, 0}}, "finite"},
		{"NaN sigma max", LIMConfig{Alpha: 1.5, Steps: 3, SigmaMax: math.NaN()}, "sigma max"},
		{"eta", LIMConfig{Alpha: 1.5, Steps: 3, Eta: 1.5}, "eta"},
		{"NaN eta", LIMConfig{Alpha: 1.5, Steps: 3, Eta: math.NaN()}, "eta"},
		{"clamp", LIMConfig{Alpha: 1.5, Steps: 3, Clamp: -1}, "clamp"},
		{"infinite clamp", LIMConfig{Alpha: 1.5, Steps: 3, Clamp: math.Inf(1)}, "clamp"},
		{"other alpha", LIMConfig{Alpha: 1.8, Steps: 3}, "denoiser is for alpha = 1.5"},
		{"init", LIMConfig{Alpha: 1.5, Steps: 3, Init: "zero"}, "init"},
	}
	for _, c := range cases {
		_, err := LIM(ops.CPU(), den, 4, tensor.F64, c.cfg)
		assert.ErrorContains(t, err, c.want, c.name)
	}
	_, err = LIM(ops.CPU(), den, 0, tensor.F64, LIMConfig{Steps: 3})
	assert.ErrorContains(t, err, "at least one chain")
	_, err = LIM(nil, den, 4, tensor.F64, LIMConfig{Steps: 3})
	assert.ErrorContains(t, err, "nil backend")
	_, err = LIM(ops.CPU(), nil, 4, tensor.F64, LIMConfig{Steps: 3})
	assert.ErrorContains(t, err, "nil denoiser")
	_, err = LIM(ops.CPU(), TargetDenoiser(g), 4, tensor.F64, LIMConfig{Steps: 3})
	assert.ErrorContains(t, err, "cannot draw its noised law")
	x, err := tensor.New(nil, tensor.F64, 3, 2)
	require.NoError(t, err)
	for _, rho := range []float64{math.NaN(), -1, math.Inf(1)} {
		assert.ErrorContains(t, den.Denoise(ops.CPU(), x, x, rho), "finite number ≥ 0")
	}
	bad, err := tensor.New(nil, tensor.F64, 3, 5)
	require.NoError(t, err)
	assert.ErrorContains(t, den.Denoise(ops.CPU(), x, bad, 1), "dimension")
	data, err := tensor.FromF64([]float64{0, 1}, 1, 2)
	require.NoError(t, err)
	set, err := ops.NewEmpirical(data)
	require.NoError(t, err)
	mixed, err := set.WithMixture([]float64{1, 1}, []float64{1, 2})
	require.NoError(t, err)
	_, err = NewLIMDenoiser(target.Empirical{DataSet: mixed}, 1.5, 8)
	assert.ErrorContains(t, err, "scale mixture")
	_, err = SampleLIMNoised(g, 3, 1.5, math.NaN(), 1, 0, 0)
	assert.ErrorContains(t, err, "finite")
	_, err = SampleLIMNoised(g, 3, 1.5, 1, -1, 0, 0)
	assert.ErrorContains(t, err, "finite")
}

// BenchmarkLIM measures the CPU sampler's throughput on the 2-D mixture (64 quadrature nodes,
// 32 steps), deterministic and stochastic, in samples per second.
func BenchmarkLIM(b *testing.B) {
	g := limImbalanced(b)
	den, err := NewLIMDenoiser(g, 1.8, 0)
	require.NoError(b, err)
	for _, n := range []int{1000, 10000} {
		for _, eta := range []float64{0, 1} {
			name := map[float64]string{0: "deterministic", 1: "stochastic"}[eta]
			b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					res, err := LIM(ops.CPU(), den, n, tensor.F32, LIMConfig{Alpha: 1.8, Steps: 32, Eta: eta, Clamp: 20, Seed: uint64(i)})
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
