package solvers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/mat"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// gfdmOffGrid are times that fall between the knots of every table size used here.
var gfdmOffGrid = []float64{0.00037, 0.0123457, 0.1234567, 0.5000731, 0.7777777, 0.9999123}

func newGFDM(t testing.TB, cfg GFDMConfig) *GFDMProcess {
	t.Helper()
	p, err := NewGFDMProcess(cfg)
	require.NoError(t, err)
	return p
}

// gfdmDriver builds a process on given speeds and weights (validated cfg, defaults filled).
func gfdmDriver(t testing.TB, cfg GFDMConfig, gammas, weights []float64) *GFDMProcess {
	t.Helper()
	cfg.Hurst, cfg.K = 0.5, len(gammas)
	cfg, err := cfg.validate()
	require.NoError(t, err)
	p, err := newGFDMProcess(cfg, gammas, weights, 0)
	require.NoError(t, err)
	return p
}

// gfdmTestDrift and gfdmTestDiffusion are μ(t) and g(t) of the base, written out again from
// docs/math.md §5.5 so that the references below do not share the code they check.
func gfdmTestDrift(cfg GFDMConfig, t float64) float64 {
	if cfg.Base == GFDMBaseFVP {
		return -0.5 * (cfg.BetaMin + t*(cfg.BetaMax-cfg.BetaMin))
	}
	return 0
}

func gfdmTestDiffusion(cfg GFDMConfig, t float64) float64 {
	if cfg.Base == GFDMBaseFVP {
		return math.Sqrt(cfg.BetaMin + t*(cfg.BetaMax-cfg.BetaMin))
	}
	r := cfg.SigmaMax / cfg.SigmaMin
	return cfg.SigmaMin * math.Pow(r, t) * math.Sqrt(2*math.Log(r))
}

// gfdmTestCoefficients builds F(t) and G(t) of the augmented SDE from §5.5:
// F = [[μ, −gω_1γ_1, …, −gω_Kγ_K], [0, −diag γ]], G = (g Σω, 1, …, 1)ᵀ.
func gfdmTestCoefficients(cfg GFDMConfig, gammas, weights []float64, t float64) (f, g []float64) {
	n := len(gammas) + 1
	f, g = make([]float64, n*n), make([]float64, n)
	gt := gfdmTestDiffusion(cfg, t)
	f[0] = gfdmTestDrift(cfg, t)
	for k, gk := range gammas {
		f[k+1] = -gt * weights[k] * gk
		f[(k+1)*n+k+1] = -gk
		g[0] += gt * weights[k]
		g[k+1] = 1
	}
	return f, g
}

// gfdmReference computes Σ(t) independently of the ODE, from the stochastic-integral form of the
// solution: with a(t, u) = exp(∫_u^t μ) and Y^k_t = ∫_0^t e^{−γ_k(t−u)} dW_u,
//
//	X_t − a(t, 0) x_0 = ∫_0^t a(t, s) g(s) dB̂_s = ∫_0^t h(t, u) dW_u,
//	h(t, u) = a(t, u) g(u) Σ_k ω_k − Σ_k ω_k γ_k ∫_u^t a(t, s) g(s) e^{−γ_k(s−u)} ds,
//
// so Σ_xx = ∫_0^t h² du, Σ_{x y_k} = ∫_0^t h(t, u) e^{−γ_k(t−u)} du and
// Σ_{y_j y_k} = (1 − e^{−(γ_j+γ_k)t})/(γ_j+γ_k), every integral by composite Gauss–Legendre
// quadrature (8 panels of 40 nodes, inner and outer).
func gfdmReference(p *GFDMProcess, t float64) []float64 {
	n, k := p.n, p.k
	cfg := p.cfg
	logA := func(u float64) float64 { // ∫_0^u μ
		if cfg.Base == GFDMBaseFVP {
			return -0.5 * (cfg.BetaMin*u + 0.5*(cfg.BetaMax-cfg.BetaMin)*u*u)
		}
		return 0
	}
	a := func(t, u float64) float64 { return math.Exp(logA(t) - logA(u)) }
	wsum := 0.0
	for _, w := range p.weights {
		wsum += w
	}
	integ := func(f func(float64) float64, lo, hi float64) float64 {
		const panels, nodes = 8, 40
		s := 0.0
		for q := 0; q < panels; q++ {
			l := lo + (hi-lo)*float64(q)/panels
			r := lo + (hi-lo)*float64(q+1)/panels
			s += quad.Fixed(f, l, r, nodes, quad.Legendre{}, 0)
		}
		return s
	}
	hk := func(u float64) float64 {
		v := a(t, u) * gfdmTestDiffusion(cfg, u) * wsum
		for j := 0; j < k; j++ {
			gj := p.gammas[j]
			in := integ(func(s float64) float64 { return a(t, s) * gfdmTestDiffusion(cfg, s) * math.Exp(-gj*(s-u)) }, u, t)
			v -= p.weights[j] * gj * in
		}
		return v
	}
	out := make([]float64, n*n)
	out[0] = integ(func(u float64) float64 { h := hk(u); return h * h }, 0, t)
	for j := 0; j < k; j++ {
		gj := p.gammas[j]
		c := integ(func(u float64) float64 { return hk(u) * math.Exp(-gj*(t-u)) }, 0, t)
		out[j+1], out[(j+1)*n] = c, c
		for l := 0; l < k; l++ {
			g := gj + p.gammas[l]
			if g == 0 {
				out[(j+1)*n+l+1] = t
			} else {
				out[(j+1)*n+l+1] = -math.Expm1(-g*t) / g
			}
		}
	}
	return out
}

// scaledMaxDiff is max_ab |x_ab − y_ab| / √(y_aa y_bb): the error of each entry on the scale of
// the reference's standard deviations.
func scaledMaxDiff(x, y []float64, n int) float64 {
	worst := 0.0
	for a := 0; a < n; a++ {
		for b := 0; b < n; b++ {
			s := math.Sqrt(y[a*n+a] * y[b*n+b])
			worst = math.Max(worst, math.Abs(x[a*n+b]-y[a*n+b])/s)
		}
	}
	return worst
}

func TestGFDMConfigErrors(t *testing.T) {
	fve := GFDMConfig{Base: GFDMBaseFVE, Hurst: 0.7, K: 3}
	with := func(f func(c *GFDMConfig)) GFDMConfig { c := fve; f(&c); return c }
	cases := []struct {
		cfg  GFDMConfig
		want string
	}{
		{with(func(c *GFDMConfig) { c.Base = "" }), "no base process"},
		{with(func(c *GFDMConfig) { c.Base = "vp" }), `unknown base process "vp"`},
		{with(func(c *GFDMConfig) { c.Hurst = 0 }), "hurst = 0: must be in (0, 1)"},
		{with(func(c *GFDMConfig) { c.Hurst = 1 }), "hurst = 1: must be in (0, 1)"},
		{with(func(c *GFDMConfig) { c.Hurst = -0.2 }), "hurst = -0.2"},
		{with(func(c *GFDMConfig) { c.Hurst = math.NaN() }), "hurst = NaN"},
		{with(func(c *GFDMConfig) { c.K = 0 }), "K = 0 OU processes: must be in [1, 5]"},
		{with(func(c *GFDMConfig) { c.K = 6 }), "K = 6 OU processes: must be in [1, 5]"},
		{with(func(c *GFDMConfig) { c.K = -1 }), "K = -1"},
		{with(func(c *GFDMConfig) { c.GammaMax = -3 }), "gamma max = -3: must be a finite number > 1"},
		{with(func(c *GFDMConfig) { c.GammaMax = 0.5 }), "gamma max = 0.5"},
		{with(func(c *GFDMConfig) { c.GammaMax = math.NaN() }), "gamma max = NaN"},
		{with(func(c *GFDMConfig) { c.GammaMax = math.Inf(1) }), "gamma max = +Inf"},
		{with(func(c *GFDMConfig) { c.SigmaMin = 50; c.SigmaMax = 50 }), "sigma min = 50 ≥ sigma max = 50"},
		{with(func(c *GFDMConfig) { c.SigmaMin = 60 }), "sigma min = 60 ≥ sigma max = 50"},
		{with(func(c *GFDMConfig) { c.SigmaMin = -1 }), "sigma min = -1: must be a finite number > 0"},
		{with(func(c *GFDMConfig) { c.SigmaMax = math.NaN() }), "sigma max = NaN"},
		{with(func(c *GFDMConfig) { c.SigmaMax = math.Inf(1) }), "sigma max = +Inf"},
		{with(func(c *GFDMConfig) { c.BetaMin = 1 }), `beta min and beta max are parameters of "fvp" only`},
		{with(func(c *GFDMConfig) { c.Base = GFDMBaseFVP; c.SigmaMax = 3 }), `sigma min and sigma max are parameters of "fve" only`},
		{with(func(c *GFDMConfig) { c.Base = GFDMBaseFVP; c.BetaMin = 30 }), "beta min = 30 > beta max = 20"},
		{with(func(c *GFDMConfig) { c.Base = GFDMBaseFVP; c.BetaMax = -2 }), "beta max = -2: must be a finite number > 0"},
		{with(func(c *GFDMConfig) { c.Base = GFDMBaseFVP; c.BetaMin = math.NaN() }), "beta min = NaN"},
		{with(func(c *GFDMConfig) { c.TableSteps = 8 }), "table steps = 8: must be in [16, 1048576]"},
		{with(func(c *GFDMConfig) { c.SigmaMin = 1e-300; c.SigmaMax = 1e300 }), "not finite"},
	}
	for _, tc := range cases {
		p, err := NewGFDMProcess(tc.cfg)
		require.Error(t, err, "%+v", tc.cfg)
		assert.Nil(t, p)
		assert.Contains(t, err.Error(), tc.want)
		assert.Contains(t, err.Error(), "gfdm")
	}

	p := newGFDM(t, fve)
	for _, tt := range []float64{-1e-9, 1.0000001, math.NaN(), math.Inf(1)} {
		_, err := p.Mean(tt)
		assert.ErrorContains(t, err, "must be in [0, 1]")
		_, err = p.Covariance(tt)
		assert.ErrorContains(t, err, "must be in [0, 1]")
		_, _, err = p.Coefficients(tt)
		assert.ErrorContains(t, err, "must be in [0, 1]")
		_, err = p.Drift(tt)
		assert.ErrorContains(t, err, "must be in [0, 1]")
		_, err = p.Diffusion(tt)
		assert.ErrorContains(t, err, "must be in [0, 1]")
	}

	b := ops.CPU()
	good := constRows(t, tensor.F64, 3, []float64{1, 2})
	bad := constRows(t, tensor.F64, 3, []float64{1, 2})
	v, _ := bad.F64()
	v[3] = math.NaN()
	rank1, err := tensor.New(nil, tensor.F64, 4)
	require.NoError(t, err)
	empty, err := tensor.New(nil, tensor.F64, 0, 2)
	require.NoError(t, err)
	closed := constRows(t, tensor.F64, 3, []float64{1, 2})
	require.NoError(t, closed.Close())
	sampleCases := []struct {
		b     ops.Backend
		x     *tensor.Tensor
		tt    float64
		first uint64
		step  uint64
		want  string
	}{
		{nil, good, 0.5, 0, 0, "nil backend"},
		{b, nil, 0.5, 0, 0, "x0 is nil or closed"},
		{b, closed, 0.5, 0, 0, "x0 is nil or closed"},
		{b, rank1, 0.5, 0, 0, "shape [4]: want (N, d)"},
		{b, empty, 0.5, 0, 0, "shape [0 2]: want (N, d)"},
		{b, bad, 0.5, 0, 0, "x0[1, 1] = NaN: the data must be finite"},
		{b, good, 1.5, 0, 0, "time t = 1.5: must be in [0, 1]"},
		{b, good, math.NaN(), 0, 0, "time t = NaN"},
		{b, good, 0.5, ops.MaxChains - 1, 0, "chain indices must be below 2^32"},
		{b, good, 0.5, 0, MaxSteps + 1, "step"},
	}
	for _, tc := range sampleCases {
		z, err := p.SampleForward(tc.b, tc.x, tc.tt, 1, tc.step, tc.first)
		require.Error(t, err, tc.want)
		assert.Nil(t, z)
		assert.Contains(t, err.Error(), tc.want)
		assert.Contains(t, err.Error(), "gfdm forward sample")
	}
}

// TestGFDMCoefficients: F, G, μ and g of the process are those of docs/math.md §5.5.
func TestGFDMCoefficients(t *testing.T) {
	for _, cfg := range []GFDMConfig{
		{Base: GFDMBaseFVE, Hurst: 0.3, K: 4},
		{Base: GFDMBaseFVP, Hurst: 0.6, K: 2, BetaMin: 0.3, BetaMax: 12},
		{Base: GFDMBaseFVE, Hurst: 0.6, K: 1, SigmaMin: 0.1, SigmaMax: 5},
	} {
		p := newGFDM(t, cfg)
		for _, tt := range []float64{0, 0.3, 1} {
			f, g, err := p.Coefficients(tt)
			require.NoError(t, err)
			wf, wg := gfdmTestCoefficients(p.Config(), p.Gammas(), p.Weights(), tt)
			assert.InDeltaSlice(t, wf, f, 1e-12*(1+math.Abs(wf[1])), "%s F(%g)", cfg.Base, tt)
			assert.InDeltaSlice(t, wg, g, 1e-12*(1+math.Abs(wg[0])), "%s G(%g)", cfg.Base, tt)
			mu, err := p.Drift(tt)
			require.NoError(t, err)
			assert.InDelta(t, gfdmTestDrift(p.Config(), tt), mu, 1e-14)
			gt, err := p.Diffusion(tt)
			require.NoError(t, err)
			assert.InDelta(t, gfdmTestDiffusion(p.Config(), tt), gt, 1e-12*gt)
		}
	}
}

// TestGFDMMeanClosedForm: the y rows of F have no x column and y starts at 0, so the mean map's
// first column is (e^{∫_0^t μ}, 0, …, 0): 1 for FVE, e^{−½(β_min t + ½(β_max − β_min) t²)} for FVP.
func TestGFDMMeanClosedForm(t *testing.T) {
	for _, cfg := range []GFDMConfig{
		{Base: GFDMBaseFVE, Hurst: 0.3, K: 3},
		{Base: GFDMBaseFVP, Hurst: 0.3, K: 3},
		{Base: GFDMBaseFVP, Hurst: 0.8, K: 5, BetaMin: 0.5, BetaMax: 30},
	} {
		p := newGFDM(t, cfg)
		worst := 0.0
		for _, tt := range append([]float64{0, 1}, gfdmOffGrid...) {
			phi, err := p.Mean(tt)
			require.NoError(t, err)
			want := 1.0
			if cfg.Base == GFDMBaseFVP {
				c := p.Config()
				want = math.Exp(-0.5 * (c.BetaMin*tt + 0.5*(c.BetaMax-c.BetaMin)*tt*tt))
			}
			worst = math.Max(worst, math.Abs(phi[0]-want)/want)
			for k := 1; k <= cfg.K; k++ {
				assert.Zero(t, phi[k], "t = %g, component %d", tt, k)
			}
		}
		t.Logf("%s K=%d: max relative error of φ_x: %.2g", cfg.Base, cfg.K, worst)
		assert.Less(t, worst, 1e-12, cfg.Base)
	}
}

// TestGFDMCovarianceAgainstQuadrature compares Σ at times between the knots with the independent
// quadrature of gfdmReference (which also holds the closed-form OU block Σ_yy): scaled error
// below 1e-12 for t ≥ 0.1 and below 2e-8 at every time (the worst case is a tiny Σ_xx at
// t < 1e-3 when Σω nearly cancels, see GFDMProcess).
func TestGFDMCovarianceAgainstQuadrature(t *testing.T) {
	worstLate, worstAll := 0.0, 0.0
	ks := []int{1, 2, 3, 5}
	if testing.Short() { // the ends: K = 1 (special-cased) and the ill-conditioned K = 5
		ks = []int{1, 5}
	}
	for _, base := range GFDMBases() {
		for _, k := range ks {
			for _, h := range []float64{0.2, 0.8} {
				p := newGFDM(t, GFDMConfig{Base: base, Hurst: h, K: k})
				late, all := 0.0, 0.0
				for _, tt := range append([]float64{1}, gfdmOffGrid...) {
					got, err := p.Covariance(tt)
					require.NoError(t, err)
					e := scaledMaxDiff(got, gfdmReference(p, tt), k+1)
					all = math.Max(all, e)
					if tt >= 0.1 {
						late = math.Max(late, e)
					}
				}
				t.Logf("%s K=%d H=%.1f (Σω = %.3g): max scaled error %.2g (t ≥ 0.1), %.2g (all t)", base, k, h, p.weightSum, late, all)
				assert.Less(t, late, 1e-12, "%s K=%d H=%g, t ≥ 0.1", base, k, h)
				assert.Less(t, all, 2e-8, "%s K=%d H=%g", base, k, h)
				worstLate, worstAll = math.Max(worstLate, late), math.Max(worstAll, all)
			}
		}
	}
	t.Logf("max scaled error over all: %.2g (t ≥ 0.1), %.2g (all t)", worstLate, worstAll)
}

// TestGFDMTableSteps: the table is an RK4 integration, so its error falls like M^{-4} in the
// number of knots M (8 RK4 steps between knots); at the times checked a table 8 times coarser is
// about 8^4 = 4096 times less accurate.
func TestGFDMTableSteps(t *testing.T) {
	errAt := func(m int) float64 {
		p := newGFDM(t, GFDMConfig{Base: GFDMBaseFVE, Hurst: 0.3, K: 5, TableSteps: m})
		worst := 0.0
		for _, tt := range []float64{0.1234567, 0.5000731, 1} {
			got, err := p.Covariance(tt)
			require.NoError(t, err)
			worst = math.Max(worst, scaledMaxDiff(got, gfdmReference(p, tt), p.n))
		}
		return worst
	}
	coarse, fine := errAt(16), errAt(128)
	t.Logf("max scaled error: M = 16: %.3g, M = 128: %.3g, ratio %.0f", coarse, fine, coarse/fine)
	assert.Greater(t, coarse, 1e-8, "a coarse table must show its integration error")
	assert.Greater(t, coarse/fine, 1000.0, "fourth-order convergence in the step")
}

// TestGFDMVELimit: with K = 1, γ = 0 and ω = 1 the driver is W itself, so X is the ordinary
// diffusion: Var X_t = ∫_0^t g² = σ_min²((σ_max/σ_min)^{2t} − 1) for FVE and 1 − e^{−∫_0^t β} for
// FVP; for small γ > 0 the x variance approaches it linearly in γ.
func TestGFDMVELimit(t *testing.T) {
	for _, base := range GFDMBases() {
		cfg := GFDMConfig{Base: base}
		ref := func(p *GFDMProcess, tt float64) float64 {
			c := p.Config()
			if base == GFDMBaseFVE {
				r := c.SigmaMax / c.SigmaMin
				return c.SigmaMin * c.SigmaMin * math.Expm1(2*tt*math.Log(r))
			}
			return -math.Expm1(-(c.BetaMin*tt + 0.5*(c.BetaMax-c.BetaMin)*tt*tt))
		}
		p := gfdmDriver(t, cfg, []float64{0}, []float64{1})
		worst := 0.0
		for _, tt := range append([]float64{1}, gfdmOffGrid...) {
			s, err := p.Covariance(tt)
			require.NoError(t, err)
			worst = math.Max(worst, math.Abs(s[0]-ref(p, tt))/ref(p, tt))
			// Y = W: Var Y_t = t and Cov(X_t, Y_t) = ∫_0^t a(t,u) g(u) du.
			assert.InDelta(t, tt, s[3], 1e-12*tt+1e-300, "%s Var Y at t = %g", base, tt)
		}
		t.Logf("%s, γ = 0: max relative error of Var X: %.2g", base, worst)
		assert.Less(t, worst, 1e-10, base)

		var prev float64
		for i, g := range []float64{1e-2, 1e-3, 1e-4} {
			q := gfdmDriver(t, cfg, []float64{g}, []float64{1})
			s, err := q.Covariance(1)
			require.NoError(t, err)
			rel := math.Abs(s[0]-ref(q, 1)) / ref(q, 1)
			t.Logf("%s, γ = %g: relative deviation of Var X_1: %.3g", base, g, rel)
			assert.Less(t, rel, 2*g, "%s γ = %g", base, g)
			if i > 0 {
				assert.InDelta(t, 10, prev/rel, 1, "%s: the deviation must fall linearly with γ", base)
			}
			prev = rel
		}
	}
}

// TestGFDMCovarianceSymmetricPSD checks every knot of the table: Σ symmetric to rounding (the
// equation is integrated on the full matrix, never symmetrised) and positive semidefinite (its
// smallest eigenvalue ≥ −gfdmPSDTol·λ_max).
func TestGFDMCovarianceSymmetricPSD(t *testing.T) {
	for _, base := range GFDMBases() {
		for _, k := range []int{1, 3, 5} {
			p := newGFDM(t, GFDMConfig{Base: base, Hurst: 0.25, K: k, TableSteps: 512})
			n := p.n
			worstAsym, worstNeg := 0.0, 0.0
			for i := 0; i <= p.m; i++ {
				_, s := p.knot(i)
				sym := mat.NewSymDense(n, nil)
				top := 0.0
				for a := 0; a < n; a++ {
					top = math.Max(top, math.Abs(s[a*n+a]))
					for b := a; b < n; b++ {
						sym.SetSym(a, b, s[a*n+b])
					}
				}
				for a := 0; a < n; a++ {
					for b := 0; b < n; b++ {
						if top > 0 {
							worstAsym = math.Max(worstAsym, math.Abs(s[a*n+b]-s[b*n+a])/top)
						}
					}
				}
				var eig mat.EigenSym
				require.True(t, eig.Factorize(sym, false))
				ev := eig.Values(nil)
				if ev[n-1] > 0 {
					worstNeg = math.Max(worstNeg, -ev[0]/ev[n-1])
				}
				require.GreaterOrEqual(t, ev[0], -gfdmPSDTol*ev[n-1], "%s K=%d knot %d: eigenvalues %v", base, k, i, ev)
			}
			t.Logf("%s K=%d: max asymmetry %.2g (relative), most negative eigenvalue %.2g (relative)", base, k, worstAsym, worstNeg)
			assert.Less(t, worstAsym, 1e-14, "%s K=%d", base, k)
		}
	}
}

// gfdmEulerMaruyama simulates paths of the augmented SDE dZ = F Z dt + G dW from Z_0 = (x0, 0, …)
// (F and G from gfdmTestCoefficients, not from the process)
// by Euler–Maruyama with `steps` steps on [0, 1] (math/rand/v2, seeded) and returns the states at
// the given step indices: out[r][path] is Z at step at[r].
func gfdmEulerMaruyama(p *GFDMProcess, x0 float64, paths, steps int, at []int, seed uint64) [][][]float64 {
	n := p.n
	h := 1 / float64(steps)
	sq := math.Sqrt(h)
	out := make([][][]float64, len(at))
	for r := range out {
		out[r] = make([][]float64, paths)
	}
	// the coefficients of each step, shared by all paths (built by the test from §5.5)
	fs, gs := make([][]float64, steps), make([][]float64, steps)
	for s := 0; s < steps; s++ {
		fs[s], gs[s] = gfdmTestCoefficients(p.cfg, p.gammas, p.weights, float64(s)*h)
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	z, dz := make([]float64, n), make([]float64, n)
	for i := 0; i < paths; i++ {
		clear(z)
		z[0] = x0
		r := 0
		for s := 0; s < steps; s++ {
			dw := sq * rng.NormFloat64()
			fm, gv := fs[s], gs[s]
			for a := 0; a < n; a++ {
				acc := 0.0
				for c := 0; c < n; c++ {
					acc += fm[a*n+c] * z[c]
				}
				dz[a] = acc*h + gv[a]*dw
			}
			for a := range z {
				z[a] += dz[a]
			}
			if r < len(at) && s+1 == at[r] {
				out[r][i] = append([]float64(nil), z...)
				r++
			}
		}
	}
	return out
}

// covCheck compares the sample mean and covariance of rows (each row one draw of an n-vector)
// with mean and cov: every entry within z standard errors (the standard error of a covariance
// entry estimated from the spread of the products (z_a − m_a)(z_b − m_b)) plus slack·√(cov_aa cov_bb).
func covCheck(t *testing.T, name string, rows [][]float64, mean, cov []float64, n int, z, slack float64) (worstSE float64) {
	t.Helper()
	m, c := meanCov(rows)
	cnt := float64(len(rows))
	for a := 0; a < n; a++ {
		se := math.Sqrt(cov[a*n+a] / cnt)
		dev := math.Abs(m[a] - mean[a])
		if se > 0 {
			worstSE = math.Max(worstSE, dev/se)
		}
		assert.LessOrEqual(t, dev, z*se+slack*math.Sqrt(cov[a*n+a])+1e-300, "%s: mean[%d] = %g, want %g (SE %.3g)", name, a, m[a], mean[a], se)
		for b := a; b < n; b++ {
			// standard error of the sample covariance from the spread of the products
			sum, sum2 := 0.0, 0.0
			for _, r := range rows {
				q := (r[a] - m[a]) * (r[b] - m[b])
				sum += q
				sum2 += q * q
			}
			mq := sum / cnt
			se := math.Sqrt((sum2/cnt - mq*mq) / cnt)
			dev := math.Abs(c[a][b] - cov[a*n+b])
			worstSE = math.Max(worstSE, dev/se)
			assert.LessOrEqual(t, dev, z*se+slack*math.Sqrt(cov[a*n+a]*cov[b*n+b]),
				"%s: cov[%d][%d] = %.6g, want %.6g (SE %.3g)", name, a, b, c[a][b], cov[a*n+b], se)
		}
	}
	return worstSE
}

// TestGFDMCovarianceMonteCarlo simulates the augmented SDE itself by Euler–Maruyama (4000 steps,
// 12000 paths, seeded) and compares the mean and every entry of the covariance block of Z_t with
// the table at t = 0.25, 0.5, 1: within 5 standard errors plus 0.5% of the scale for the
// Euler–Maruyama bias (O(h): about (γ_max + 2 log(σ_max/σ_min)) h/2 ≈ 0.5% here at the worst).
// 2 bases × 3 times × 15 entries at 5 SE each: a fresh seed fails with probability about 1e-4.
func TestGFDMCovarianceMonteCarlo(t *testing.T) {
	if testing.Short() {
		t.Skip("Monte-Carlo of the augmented SDE: seconds")
	}
	const paths, steps = 12000, 4000
	at := []int{1000, 2000, 4000}
	for i, cfg := range []GFDMConfig{
		{Base: GFDMBaseFVE, Hurst: 0.3, K: 3},
		{Base: GFDMBaseFVP, Hurst: 0.7, K: 3},
	} {
		p := newGFDM(t, cfg)
		x0 := 1.5
		sims := gfdmEulerMaruyama(p, x0, paths, steps, at, uint64(11+i))
		for r, s := range at {
			tt := float64(s) / steps
			phi, err := p.Mean(tt)
			require.NoError(t, err)
			cov, err := p.Covariance(tt)
			require.NoError(t, err)
			mean := make([]float64, p.n)
			for a := range mean {
				mean[a] = x0 * phi[a]
			}
			name := fmt.Sprintf("%s t=%g", cfg.Base, tt)
			w := covCheck(t, name, sims[r], mean, cov, p.n, 5, 0.005)
			t.Logf("%s: Var X = %.5g (table) vs %.5g (Euler–Maruyama); worst deviation %.2f SE",
				name, cov[0], sampleVar(sims[r], 0), w)
		}
	}
}

func sampleVar(rows [][]float64, a int) float64 {
	m, s := 0.0, 0.0
	for _, r := range rows {
		m += r[a]
	}
	m /= float64(len(rows))
	for _, r := range rows {
		s += (r[a] - m) * (r[a] - m)
	}
	return s / float64(len(rows))
}

// TestGFDMSampleForward draws Z_t for many chains and coordinates and checks the residuals
// Z_t − x_0 φ(t) against N(0, Σ(t)) (mean and every covariance entry within 5 standard errors),
// the independence of coordinates, t = 0, reproducibility from the seed and batch splitting.
func TestGFDMSampleForward(t *testing.T) {
	b := ops.CPU()
	const n, d = 20000, 3
	for _, cfg := range []GFDMConfig{
		{Base: GFDMBaseFVE, Hurst: 0.2, K: 2},
		{Base: GFDMBaseFVP, Hurst: 0.9, K: 4},
	} {
		p := newGFDM(t, cfg)
		k1 := p.n
		xv := make([]float64, n*d)
		for i := range xv {
			xv[i] = float64(i%7) - 3 + 0.25*float64(i%d)
		}
		x0, err := tensor.FromF64(xv, n, d)
		require.NoError(t, err)
		for _, tt := range []float64{0.05, 0.5003, 1} {
			z, err := p.SampleForward(b, x0, tt, 42, 3, 0)
			require.NoError(t, err)
			require.Equal(t, []int{k1, n, d}, z.Shape())
			zv, err := z.Float64s()
			require.NoError(t, err)
			phi, _ := p.Mean(tt)
			cov, _ := p.Covariance(tt)
			rows := make([][]float64, 0, n*d)
			cross := 0.0 // Σ_i res_x(i, 0) res_x(i, 1): coordinates must be independent
			for i := 0; i < n; i++ {
				for j := 0; j < d; j++ {
					r := make([]float64, k1)
					for a := 0; a < k1; a++ {
						r[a] = zv[a*n*d+i*d+j] - xv[i*d+j]*phi[a]
					}
					rows = append(rows, r)
				}
				cross += (zv[i*d] - xv[i*d]*phi[0]) * (zv[i*d+1] - xv[i*d+1]*phi[0])
			}
			name := fmt.Sprintf("%s t=%g", cfg.Base, tt)
			w := covCheck(t, name, rows, make([]float64, k1), cov, k1, 5, 0)
			t.Logf("%s: worst deviation %.2f SE", name, w)
			corr := cross / float64(n) / cov[0]
			assert.Less(t, math.Abs(corr), 5/math.Sqrt(n), "%s: correlation of coordinates 0 and 1: %g", name, corr)

			// a batch split by FirstChain draws the same numbers
			lo, err := x0.View(0, n/2, d)
			require.NoError(t, err)
			hi, err := x0.View((n/2)*d, n-n/2, d)
			require.NoError(t, err)
			zl, err := p.SampleForward(b, lo, tt, 42, 3, 0)
			require.NoError(t, err)
			zh, err := p.SampleForward(b, hi, tt, 42, 3, uint64(n/2))
			require.NoError(t, err)
			lv, _ := zl.Float64s()
			hv, _ := zh.Float64s()
			for a := 0; a < k1; a++ {
				require.Equal(t, zv[a*n*d:a*n*d+(n/2)*d], lv[a*(n/2)*d:(a+1)*(n/2)*d], "%s: first half, component %d", name, a)
				require.Equal(t, zv[a*n*d+(n/2)*d:(a+1)*n*d], hv[a*(n-n/2)*d:(a+1)*(n-n/2)*d], "%s: second half, component %d", name, a)
			}
			// another step draws other numbers
			z2, err := p.SampleForward(b, x0, tt, 42, 4, 0)
			require.NoError(t, err)
			v2, _ := z2.Float64s()
			assert.NotEqual(t, zv[:10], v2[:10])
			for _, zz := range []*tensor.Tensor{z, zl, zh, z2} {
				require.NoError(t, zz.Close())
			}
		}

		// t = 0: Z_0 = (x0, 0, …, 0) exactly, in either dtype
		for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
			xs, err := tensor.FromFloat64s(dt, xv[:12], 4, d)
			require.NoError(t, err)
			z, err := p.SampleForward(b, xs, 0, 7, 0, 0)
			require.NoError(t, err)
			assert.Equal(t, dt, z.DType())
			zv, _ := z.Float64s()
			want := make([]float64, k1*12)
			for i := 0; i < 12; i++ {
				want[i] = float64(float32(xv[i]))
				if dt == tensor.F64 {
					want[i] = xv[i]
				}
			}
			assert.Equal(t, want, zv, "t = 0, %v", dt)
		}
	}
}

// TestGFDMTransition: the transition map Ψ(t, s) = Φ(t)Φ(s)⁻¹ of the exponential integrator
// carries the tabulated mean map, Ψ(t, s) φ(s) = φ(t), and composes, Ψ(t, u) Ψ(u, s) = Ψ(t, s),
// to the table's accuracy (1e-11 of the entries' scale), both bases, K ∈ {2, 3}; Ψ(t, t) = I.
func TestGFDMTransition(t *testing.T) {
	for _, base := range GFDMBases() {
		for _, k := range []int{2, 3} {
			p := newGFDM(t, GFDMConfig{Base: base, Hurst: 0.3, K: k})
			n := p.K() + 1
			for _, c := range [][3]float64{{1, 0.6, 0.2}, {0.41, 0.3, 0.07}, {0.09, 0.05, 0.004}} {
				tt, u, s := c[0], c[1], c[2]
				ts, tu, us := make([]float64, n*n), make([]float64, n*n), make([]float64, n*n)
				p.transition(ts, tt, s)
				p.transition(tu, tt, u)
				p.transition(us, u, s)
				phiT, err := p.Mean(tt)
				require.NoError(t, err)
				phiS, err := p.Mean(s)
				require.NoError(t, err)
				scale := 0.0
				for _, v := range ts {
					scale = math.Max(scale, math.Abs(v))
				}
				for a := 0; a < n; a++ {
					got := 0.0
					for b := 0; b < n; b++ {
						got += ts[a*n+b] * phiS[b]
						comp := 0.0
						for m := 0; m < n; m++ {
							comp += tu[a*n+m] * us[m*n+b]
						}
						assert.InDelta(t, ts[a*n+b], comp, 1e-11*scale, "%s K=%d Ψ(%g,%g)Ψ(%g,%g) entry %d,%d", base, k, tt, u, u, s, a, b)
					}
					assert.InDelta(t, phiT[a], got, 1e-11*math.Max(1, math.Abs(phiT[a])), "%s K=%d Ψ(%g,%g)φ(%g) entry %d", base, k, tt, s, s, a)
				}
			}
			id := make([]float64, n*n)
			p.transition(id, 0.5, 0.5)
			for a := 0; a < n; a++ {
				for b := 0; b < n; b++ {
					want := 0.0
					if a == b {
						want = 1
					}
					assert.Equal(t, want, id[a*n+b])
				}
			}
		}
	}
}
