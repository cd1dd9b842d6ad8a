package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/scorekit/scorekit/tensor"
)

func mustMAFBM(t *testing.T, h float64, k int, gammaMax, horizon float64) *MAFBM {
	t.Helper()
	m, err := NewMAFBM(h, k, gammaMax, horizon)
	require.NoError(t, err)
	return m
}

// runMAFBM runs S steps of size h from the state y0 (one row, repeated for every path) and
// returns dst (paths, S) and the final states (paths, K).
func runMAFBM(t *testing.T, b Backend, dt tensor.DType, m *MAFBM, paths, steps int, h float64, y0 []float64, d Draw, stride uint64) ([]float64, []float64) {
	t.Helper()
	k := m.K()
	init := make([]float64, paths*k)
	for i := 0; i < paths; i++ {
		copy(init[i*k:], y0)
	}
	y := mustHost(t, dt, init, paths, k)
	dst, err := tensor.New(nil, dt, paths, steps)
	require.NoError(t, err)
	require.NoError(t, b.MAFBM(dst, y, m, h, d, stride))
	return vals(t, dst), vals(t, y)
}

func TestMAFBMRejectsBadArguments(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		h, gmax, horizon float64
		k                int
		want             string
	}{
		{0, 20, 1, 3, "hurst 0"},
		{1, 20, 1, 3, "hurst 1"},
		{nan, 20, 1, 3, "hurst NaN"},
		{0.3, 20, 1, 0, "K = 0"},
		{0.3, 20, 1, MaxMAFBMStates + 1, "K = 65"},
		{0.3, 1, 1, 3, "γ_max = 1"},
		{0.3, nan, 1, 3, "γ_max = NaN"},
		{0.3, math.Inf(1), 1, 3, "γ_max = +Inf"},
		{0.3, 20, 0, 3, "T = 0"},
		{0.3, 20, -1, 3, "T = -1"},
		{0.3, 20, nan, 3, "T = NaN"},
	} {
		_, err := NewMAFBM(c.h, c.k, c.gmax, c.horizon)
		assert.ErrorContains(t, err, c.want)
	}
	m := mustMAFBM(t, 0.3, 3, 20, 1)
	_, _, err := m.Transition(0)
	assert.ErrorContains(t, err, "step h = 0")
	dst, _ := tensor.New(nil, tensor.F64, 4, 5)
	y, _ := tensor.New(nil, tensor.F64, 4, 3)
	b := CPU()
	assert.ErrorContains(t, b.MAFBM(dst, y, nil, 0.1, Draw{}, 1), "nil approximation")
	assert.ErrorContains(t, b.MAFBM(dst, y, m, -0.1, Draw{}, 1), "step h")
	assert.ErrorContains(t, b.MAFBM(dst, y, m, nan, Draw{}, 1), "step h")
	assert.ErrorContains(t, b.MAFBM(dst, y, m, 0.1, Draw{}, 0), "stride 0")
	assert.ErrorContains(t, b.MAFBM(dst, y, m, 0.1, Draw{Site: math.MaxUint64 - 7}, 2), "overflow")
	assert.NoError(t, b.MAFBM(dst, y, m, 0.1, Draw{Site: math.MaxUint64 - 8}, 2))
	y2, _ := tensor.New(nil, tensor.F64, 4, 2)
	assert.ErrorContains(t, b.MAFBM(dst, y2, m, 0.1, Draw{}, 1), "state y")
	y32, _ := tensor.New(nil, tensor.F32, 4, 3)
	assert.ErrorContains(t, b.MAFBM(dst, y32, m, 0.1, Draw{}, 1), "state y")
	assert.ErrorContains(t, b.MAFBM(nil, y, m, 0.1, Draw{}, 1), "nil")
	empty, _ := tensor.New(nil, tensor.F64, 4, 0)
	assert.NoError(t, b.MAFBM(empty, y, m, 0.1, Draw{}, 1), "zero steps")
}

// The speeds are the geometric grid from 1/γ_max to γ_max (K = 1: γ_1 = 1); the weights solve
// A ω = b, and the A, b, c of the doc comment agree with a direct quadrature of the error
// ∫_0^T ∫_0^t (k(u) − Σ ω_k e^{−γ_k u})² du dt = ∫_0^T (T − u)(k(u) − Σ ω_k e^{−γ_k u})² du,
// which must equal RelErrorSq·c.
func TestMAFBMGridWeightsAndError(t *testing.T) {
	m1 := mustMAFBM(t, 0.4, 1, 20, 1)
	assert.Equal(t, []float64{1}, m1.Gammas())
	for _, k := range []int{2, 3, 5, 8} {
		m := mustMAFBM(t, 0.4, k, 20, 2)
		g := m.Gammas()
		assert.InEpsilon(t, 1/20.0, g[0], 1e-15)
		assert.InEpsilon(t, 20.0, g[k-1], 1e-15)
		for i := 1; i < k; i++ {
			assert.InEpsilon(t, math.Pow(20, 2/float64(k-1)), g[i]/g[i-1], 1e-13, "K=%d ratio %d", k, i)
		}
		assert.Equal(t, k, m.K())
		assert.Equal(t, 0.4, m.Hurst())
		assert.Equal(t, 2.0, m.Horizon())
		assert.Equal(t, 20.0, m.GammaMax())
	}
	for _, c := range []struct {
		h, gmax, horizon float64
		k                int
	}{{0.2, 20, 1, 3}, {0.5, 20, 1, 2}, {0.7, 20, 1, 5}, {0.9, 5, 3, 4}, {0.3, 100, 0.5, 1}} {
		m := mustMAFBM(t, c.h, c.k, c.gmax, c.horizon)
		g, w := m.Gammas(), m.Weights()
		a := c.h + 0.5
		ga := math.Gamma(a)
		T := c.horizon
		// u = T s^p, p = 2/H: the terms of the integrand behave like s^{1+1/H}, s³ and s^{2/H−1}
		// at s = 0 (the kernel u^{H−½} is singular for H < ½, not smooth for H > ½), smooth
		// enough for Simpson's rule.
		p := 2 / c.h
		integrand := func(s float64) float64 {
			if s == 0 {
				return 0
			}
			u := T * math.Pow(s, p)
			e := math.Pow(u, c.h-0.5) / ga
			for k := range g {
				e -= w[k] * math.Exp(-g[k]*u)
			}
			return (T - u) * e * e * T * p * math.Pow(s, p-1)
		}
		const n = 20000 // Simpson on [0, 1]
		sum := integrand(0) + integrand(1)
		for i := 1; i < n; i++ {
			coef := 2.0
			if i%2 == 1 {
				coef = 4
			}
			sum += coef * integrand(float64(i)/n)
		}
		quad := sum / (3 * n)
		cc := math.Pow(T, 2*c.h+1) / (2 * c.h * (2*c.h + 1) * ga * ga)
		assert.InDelta(t, m.RelErrorSq()*cc, quad, 1e-7*cc, "%+v: RelError %g, quadrature %g", c, m.RelErrorSq(), quad/cc)
		assert.Greater(t, m.RelErrorSq(), -1e-12)
		assert.Less(t, m.RelErrorSq(), 1.0)
		assert.Positive(t, m.Condition())
	}
}

// The grids are nested from K to 2K − 1 (every other speed of the finer grid is a speed of the
// coarser one), so the optimal error can only go down along K = 1, 2 → 3, 3 → 5, 5 → 9, 9 → 17
// (up to the rounding floor of 1 − bᵀω/c, about 1e-13). Between grids that are not nested it
// need not: at H = 0.9, γ_max = 20 the error of K = 5 exceeds that of K = 4 (5.91e-5 vs 5.90e-5),
// so monotonicity in K itself is not asserted; the GFDM range K = 1..4 at γ_max = 20 does
// decrease for every H here, and that is checked.
func TestMAFBMErrorDecreasesOnNestedGrids(t *testing.T) {
	for _, h := range []float64{0.1, 0.3, 0.5, 0.7, 0.9} {
		for _, gmax := range []float64{5, 20, 100} {
			for _, k := range []int{2, 3, 5, 9} {
				coarse := mustMAFBM(t, h, k, gmax, 1)
				fine := mustMAFBM(t, h, 2*k-1, gmax, 1)
				assert.LessOrEqual(t, fine.RelErrorSq(), coarse.RelErrorSq()+1e-13,
					"H=%g γ_max=%g: K=%d %g → K=%d %g", h, gmax, k, coarse.RelErrorSq(), 2*k-1, fine.RelErrorSq())
			}
			one, three := mustMAFBM(t, h, 1, gmax, 1), mustMAFBM(t, h, 3, gmax, 1)
			assert.Less(t, three.RelErrorSq(), one.RelErrorSq(), "H=%g γ_max=%g: K=1 → 3", h, gmax)
		}
		prev := math.Inf(1)
		for k := 1; k <= 4; k++ {
			e := mustMAFBM(t, h, k, 20, 1).RelErrorSq()
			assert.Less(t, e, prev, "H=%g γ_max=20 K=%d", h, k)
			prev = e
		}
	}
}

// Var B̂_t against the exact type-II variance t^{2H}/(2H Γ(H+½)²): by Cauchy–Schwarz,
// |Var B̂_t − Var B_t| ≤ e_t + 2 sqrt(Var B_t · e_t) with e_t = E(B_t − B̂_t)², so that
// ∫_0^T |Var B̂_t − Var B_t| dt ≤ c (ε + 2√ε), ε = RelErrorSq: the variance error is bounded by
// the weights' error and shrinks with it. Checked on a grid of t for several (H, K), and the
// integrated variance error itself falls from K = 1 to 3 to 5 (nested grids) in these cases.
func TestMAFBMVarianceApproachesTypeII(t *testing.T) {
	for _, h := range []float64{0.2, 0.5, 0.8} {
		prev := math.Inf(1)
		for _, k := range []int{1, 3, 5} {
			m := mustMAFBM(t, h, k, 20, 1)
			const n = 2000
			sum := 0.0
			for i := 1; i <= n; i++ {
				tt := (float64(i) - 0.5) / n
				sum += math.Abs(m.Variance(tt)-m.ExactVariance(tt)) / n
			}
			ga := math.Gamma(h + 0.5)
			c := 1 / (2 * h * (2*h + 1) * ga * ga)
			eps := math.Max(m.RelErrorSq(), 0)
			assert.LessOrEqual(t, sum, c*(eps+2*math.Sqrt(eps))*1.001, "H=%g K=%d", h, k)
			assert.Less(t, sum, prev, "H=%g K=%d: integrated variance error %g", h, k, sum)
			prev = sum
		}
	}
	// The exact law's variance at t = 1 is 1/(2H Γ(H+½)²); at H = ½ it is t.
	m := mustMAFBM(t, 0.5, 5, 20, 1)
	assert.InEpsilon(t, 0.7, m.ExactVariance(0.7), 1e-15)
}

// The factor of Transition reproduces C(h) within rounding of its largest entry (down to steps
// where C is numerically of rank one), is lower triangular with a non-negative diagonal, equals
// gonum's Cholesky factor where C is well conditioned, and the transitions compose: two steps of
// h/2 are one step of h in law (decay(h/2)² = decay(h), D C(h/2) D + C(h/2) = C(h)).
func TestMAFBMTransition(t *testing.T) {
	for _, k := range []int{1, 2, 5, 16} {
		m := mustMAFBM(t, 0.3, k, 20, 1)
		g := m.Gammas()
		cov := func(h float64) []float64 {
			c := make([]float64, k*k)
			for i := range g {
				for j := range g {
					c[i*k+j] = -math.Expm1(-(g[i]+g[j])*h) / (g[i] + g[j])
				}
			}
			return c
		}
		for _, h := range []float64{1e-9, 1e-5, 1e-3, 0.1, 2, 1e3} {
			decay, l, err := m.Transition(h)
			require.NoError(t, err, "K=%d h=%g", k, h)
			c := cov(h)
			top := 0.0
			for i := 0; i < k; i++ {
				top = math.Max(top, c[i*k+i])
				assert.Equal(t, math.Exp(-g[i]*h), decay[i])
				assert.GreaterOrEqual(t, l[i*k+i], 0.0)
				for j := i + 1; j < k; j++ {
					assert.Zero(t, l[i*k+j], "K=%d h=%g: L[%d,%d] above the diagonal", k, h, i, j)
				}
			}
			for i := 0; i < k; i++ {
				for j := 0; j < k; j++ {
					s := 0.0
					for q := 0; q < k; q++ {
						s += l[i*k+q] * l[j*k+q]
					}
					assert.InDelta(t, c[i*k+j], s, 1e-13*top, "K=%d h=%g: (L Lᵀ)[%d,%d]", k, h, i, j)
				}
			}
			var ch mat.Cholesky
			if ch.Factorize(mat.NewSymDense(k, c)) && ch.Cond() < 1e6 {
				var lt mat.TriDense
				ch.LTo(&lt)
				for i := 0; i < k; i++ {
					for j := 0; j <= i; j++ {
						assert.InDelta(t, lt.At(i, j), l[i*k+j], 1e-10*math.Sqrt(top), "K=%d h=%g: Cholesky [%d,%d]", k, h, i, j)
					}
				}
			}
			half, _, err := m.Transition(h / 2)
			require.NoError(t, err)
			ch2 := cov(h / 2)
			for i := 0; i < k; i++ {
				assert.InDelta(t, decay[i], half[i]*half[i], 1e-14*decay[i])
				for j := 0; j < k; j++ {
					assert.InDelta(t, c[i*k+j], half[i]*ch2[i*k+j]*half[j]+ch2[i*k+j], 1e-14*top)
				}
			}
		}
	}
}

// From a fixed state y0, one step of h leaves Y' ~ N(decay ∘ y0, C(h)): sample means within 5 SE
// (SE = sqrt(C_kk / n)) and sample covariances within 5 SE (SE = sqrt((C_ii C_jj + C_ij²) / n)),
// each exceeded with probability 5.7e-7. The same holds after two steps of h/2 (the step size
// does not change the law) and in both dtypes.
func TestMAFBMOneStepMoments(t *testing.T) {
	const paths = 40000
	m := mustMAFBM(t, 0.35, 3, 20, 1)
	k := m.K()
	y0 := []float64{0.5, -1, 2}
	const h = 0.3
	decay, l, err := m.Transition(h)
	require.NoError(t, err)
	c := make([]float64, k*k)
	for i := 0; i < k; i++ {
		for j := 0; j < k; j++ {
			for q := 0; q < k; q++ {
				c[i*k+j] += l[i*k+q] * l[j*k+q]
			}
		}
	}
	for _, run := range []struct {
		name  string
		steps int
		dt    tensor.DType
	}{{"one step f64", 1, tensor.F64}, {"two half steps f64", 2, tensor.F64}, {"one step f32", 1, tensor.F32}} {
		_, ys := runMAFBM(t, CPU(), run.dt, m, paths, run.steps, h/float64(run.steps), y0, Draw{Seed: 11, Site: 100}, 1)
		for i := 0; i < k; i++ {
			mean := 0.0
			for p := 0; p < paths; p++ {
				mean += ys[p*k+i] / paths
			}
			assert.InDelta(t, decay[i]*y0[i], mean, 5*math.Sqrt(c[i*k+i]/paths), "%s: mean of Y^%d", run.name, i)
			for j := 0; j <= i; j++ {
				s := 0.0
				for p := 0; p < paths; p++ {
					s += (ys[p*k+i] - decay[i]*y0[i]) * (ys[p*k+j] - decay[j]*y0[j])
				}
				se := math.Sqrt((c[i*k+i]*c[j*k+j] + c[i*k+j]*c[i*k+j]) / paths)
				assert.InDelta(t, c[i*k+j], s/paths, 5*se, "%s: Cov(Y^%d, Y^%d)", run.name, i, j)
			}
		}
	}
}

// Sample covariances of B̂ at step pairs (s, t) from fresh paths against Covariance(s, t): the
// estimator mean(B̂_s B̂_t) of jointly Gaussian zero-mean values has
// SE = sqrt((Var_s Var_t + Cov²) / n); 5 SE each (false-failure rate 5.7e-7 per pair).
func TestMAFBMPathCovariance(t *testing.T) {
	const paths, steps = 20000, 10
	for _, c := range []struct {
		hurst float64
		k     int
		dt    tensor.DType
	}{{0.3, 3, tensor.F64}, {0.75, 5, tensor.F32}} {
		m := mustMAFBM(t, c.hurst, c.k, 20, 1)
		const h = 0.1
		b, _ := runMAFBM(t, CPU(), c.dt, m, paths, steps, h, make([]float64, c.k), Draw{Seed: 3, Site: 1000}, 16)
		for _, st := range [][2]int{{1, 1}, {3, 7}, {5, 10}, {10, 10}, {2, 9}} {
			s, u := st[0], st[1]
			sum := 0.0
			for p := 0; p < paths; p++ {
				sum += b[p*steps+s-1] * b[p*steps+u-1]
			}
			want := m.Covariance(float64(s)*h, float64(u)*h)
			se := math.Sqrt((m.Variance(float64(s)*h)*m.Variance(float64(u)*h) + want*want) / paths)
			assert.InDelta(t, want, sum/paths, 5*se, "H=%g K=%d %v: Cov(B̂ at step %d, step %d)", c.hurst, c.k, c.dt, s, u)
		}
	}
}

// The draw contract: step s uses the normals of site Site + s·stride (one call of S steps equals
// S calls of one step at those sites, exactly, in float64), the first step from y = 0 is
// ω·L ξ with ξ the Normal fill's columns 0..K−1, rows are chains (FirstChain) and the worker
// count changes nothing.
func TestMAFBMDrawContract(t *testing.T) {
	m := mustMAFBM(t, 0.6, 4, 20, 1)
	const paths, steps, h = 7, 5, 0.05
	d := Draw{Seed: 21, Site: 40, FirstChain: 9}
	y0 := []float64{0.1, 0.2, -0.3, 0.4}
	whole, yWhole := runMAFBM(t, CPU(), tensor.F64, m, paths, steps, h, y0, d, 3)

	y := mustHost(t, tensor.F64, repeat(y0, paths), paths, 4)
	for s := 0; s < steps; s++ {
		one, _ := tensor.New(nil, tensor.F64, paths, 1)
		require.NoError(t, CPU().MAFBM(one, y, m, h, Draw{Seed: d.Seed, Site: d.Site + uint64(3*s), FirstChain: d.FirstChain}, 1))
		for p := 0; p < paths; p++ {
			assert.Equal(t, whole[p*steps+s], vals(t, one)[p], "step %d path %d", s, p)
		}
	}
	assert.Equal(t, yWhole, vals(t, y), "final state")

	for _, dt := range []tensor.DType{tensor.F64, tensor.F32} {
		first, _ := runMAFBM(t, CPU(), dt, m, paths, 1, h, make([]float64, 4), d, 1)
		xi := fill(t, CPU(), "normal", dt, paths, 4, d)
		_, l, _ := m.Transition(h)
		w := m.Weights()
		for p := 0; p < paths; p++ {
			want := 0.0
			for r := 0; r < 4; r++ {
				lr := 0.0
				for j := 0; j <= r; j++ {
					lr += l[r*4+j] * xi[p*4+j]
				}
				want += w[r] * lr
			}
			tol := 1e-13
			if dt == tensor.F32 {
				tol = 1e-6
			}
			assert.InDelta(t, want, first[p], tol*(1+math.Abs(want)), "%v path %d", dt, p)
		}
	}

	big, _ := runMAFBM(t, CPU(), tensor.F32, m, 3000, 4, h, y0, Draw{Seed: 5}, 2)
	alone, _ := runMAFBM(t, CPU(), tensor.F32, m, 1, 4, h, y0, Draw{Seed: 5, FirstChain: 2222}, 2)
	assert.Equal(t, big[2222*4:2223*4], alone)
	one, _ := runMAFBM(t, CPUWorkers(1), tensor.F32, m, 3000, 4, h, y0, Draw{Seed: 5}, 2)
	assert.Equal(t, big, one)
}

func repeat(row []float64, n int) []float64 {
	out := make([]float64, 0, n*len(row))
	for i := 0; i < n; i++ {
		out = append(out, row...)
	}
	return out
}

func ExampleNewMAFBM() {
	m, err := NewMAFBM(0.3, 5, 20, 1)
	if err != nil {
		panic(err)
	}
	fmt.Printf("K = %d, γ from %.3g to %.3g, squared relative L² error %.1e (relative L² error %.3f)\n",
		m.K(), m.Gammas()[0], m.Gammas()[4], m.RelErrorSq(), math.Sqrt(m.RelErrorSq()))
	// Output: K = 5, γ from 0.05 to 20, squared relative L² error 7.8e-03 (relative L² error 0.088)
}
