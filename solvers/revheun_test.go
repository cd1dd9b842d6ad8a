package solvers

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// levyAreaSDE is dX1 = dW1, dX2 = X1 ∘ dW2: non-commutative noise (g_1 ∂g_2/∂x ≠ g_2 ∂g_1/∂x),
// whose solution X2(T) = X2(0) + X1(0) W2(T) + ∫ W1 ∘ dW2 holds the Lévy area of (W1, W2), which
// no scheme driven by the increments alone sees: strong order ½ at best, and reversible Heun's.
type levyAreaSDE struct{}

func (levyAreaSDE) Dim() int            { return 2 }
func (levyAreaSDE) NoiseDim() int       { return 2 }
func (levyAreaSDE) DiagonalNoise() bool { return false }
func (levyAreaSDE) Drift(dst, x []float64, n int, t float64) error {
	clear(dst[:2*n])
	return nil
}
func (levyAreaSDE) Diffusion(dst, x []float64, n int, t float64) error {
	for c := range n {
		copy(dst[4*c:4*c+4], []float64{1, 0, 0, x[2*c]})
	}
	return nil
}

func testOU(t testing.TB) ops.AffineSDE {
	s, err := ops.OrnsteinUhlenbeck(1, 0.5, 0.8)
	require.NoError(t, err)
	return s
}

func testGBM(t testing.TB) ops.AffineSDE {
	s, err := ops.GeometricBrownian(0.3, 0.6)
	require.NoError(t, err)
	return s
}

// startValues returns n·d distinct starts in [0.3, 1.3).
func startValues(n, d int) []float64 {
	x := make([]float64, n*d)
	for i := range x {
		x[i] = 0.3 + math.Mod(0.0137*float64(i), 1)
	}
	return x
}

// maxAbsOf returns max |v| over the slices.
func maxAbsOf(vs ...[]float64) float64 {
	m := 0.0
	for _, v := range vs {
		for _, x := range v {
			m = math.Max(m, math.Abs(x))
		}
	}
	return m
}

// maxDiff returns max |a − b|.
func maxDiff(a, b []float64) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

// Reconstruction of x0 from (y_N, z_N) by the inverse steps, in float64. Bound: each inverse step
// recomputes the forward step's products from the same operands, so it returns the previous state
// up to the rounding of its few additions, a few ε·S (S the largest state magnitude, ε = 2^−52);
// the step map has one marginally stable mode (z − y flips sign each step) and, over these
// horizons, no growing one, so the errors of N steps add up to at most about N·ε·S. The test
// asserts max |ŷ_0 − x_0|, |ẑ_0 − x_0| ≤ N·ε·S; measured (64 chains): 4–110 ε·S at 1024 steps,
// 11–166 ε·S at 8192 (logged), a fiftieth of the bound or less, growing about like √N (a random
// walk of roundings). A wrong sign in an inverse formula leaves an O(h) error per step: far above
// it (1e−4 … 1e−2 measured).
func TestReversibleHeunReconstructsTheStart(t *testing.T) {
	gmm, err := ops.NewGMM(ops.GMMSpec{Weights: []float64{0.3, 0.7}, Means: [][]float64{{-1, 0.5}, {1.5, -0.5}},
		Vars: []float64{0.4, 0.25}})
	require.NoError(t, err)
	for _, c := range []struct {
		name  string
		sde   StratonovichSDE
		steps []int
	}{
		{"ou", AffineFamily{SDE: testOU(t), D: 3}, []int{1024, 8192}},
		{"gbm", AffineFamily{SDE: testGBM(t), D: 2}, []int{1024, 8192}},
		{"gmm-langevin", GMMLangevin{GMM: gmm}, []int{1024}},
		{"levy-area", levyAreaSDE{}, []int{1024}},
	} {
		for _, steps := range c.steps {
			const n = 64
			x0 := startValues(n, c.sde.Dim())
			r := ReversibleHeun{SDE: c.sde, Horizon: 1, Steps: steps, Seed: 5, FirstChain: 3}
			fin, err := r.Solve(x0, n)
			require.NoError(t, err, c.name)
			assert.Greater(t, maxDiff(fin.Y, x0), 0.1, "%s: the solve moves the state", c.name)
			back, err := r.Reconstruct(fin)
			require.NoError(t, err, c.name)
			s := maxAbsOf(x0, fin.Y, fin.Z)
			bound := float64(steps) * 0x1p-52 * s
			ey, ez := maxDiff(back.Y, x0), maxDiff(back.Z, x0)
			t.Logf("%s, %d steps: max |ŷ0 − x0| = %.3g, max |ẑ0 − x0| = %.3g (%.0f and %.0f ε·S, S = %.3g; bound N·ε·S = %.3g)",
				c.name, steps, ey, ez, ey/(0x1p-52*s), ez/(0x1p-52*s), s, bound)
			assert.LessOrEqual(t, ey, bound, "%s, %d steps: y", c.name, steps)
			assert.LessOrEqual(t, ez, bound, "%s, %d steps: z", c.name, steps)
		}
	}
}

// The fused path (SolveOn, ReconstructOn: BrownianIncrements and the ReversibleHeun op per chunk
// of RevHeunChunk steps) is defined as the step-by-step solver for an AffineFamily: in float64
// the same bits, forward and back, over several chunks and a partial last one. In float32 the
// state is rounded between chunks: its final state is the float64 one within the float32 tolerance
// below, and its reconstruction within the f32 bound.
//
// f32 bounds. Each chunk boundary rounds y and z (relative 2^−24); the roundings then propagate
// like any perturbation of the state, through a map whose sensitivity over [0, T] is that of the
// SDE's flow (OU: e^{−θt} ≤ 1; GBM with these μ, σ: |∂X_T/∂X_t| = X_T/X_t, at most S/s_0 with
// s_0 = 0.3 the smallest start) plus the marginal mode, so the final state is within
// C·ceil(N/256)·2^−24·S of float64's, C = 1 + S/s_0; the reconstruction likewise (the inverse
// rounds at the same boundaries).
func TestRevHeunFusedPathEqualsStepByStep(t *testing.T) {
	for _, c := range []struct {
		name string
		sde  ops.AffineSDE
	}{{"ou", testOU(t)}, {"gbm", testGBM(t)}} {
		const n, d, steps = 5, 3, 2*RevHeunChunk + 37
		x0 := startValues(n, d)
		r := ReversibleHeun{SDE: AffineFamily{SDE: c.sde, D: d}, Horizon: 1.5, Steps: steps, Seed: 77, FirstChain: 11}
		fin, err := r.Solve(x0, n)
		require.NoError(t, err)
		back, err := r.Reconstruct(fin)
		require.NoError(t, err)
		for _, b := range []ops.Backend{ops.Reference(), ops.CPU()} {
			got, err := r.SolveOn(b, tensor.F64, x0, n)
			require.NoError(t, err)
			requireSameBits(t, fin.Y, got.Y, c.name+" y")
			requireSameBits(t, fin.Z, got.Z, c.name+" z")
			gb, err := r.ReconstructOn(b, tensor.F64, got)
			require.NoError(t, err)
			requireSameBits(t, back.Y, gb.Y, c.name+" reconstructed y")
			requireSameBits(t, back.Z, gb.Z, c.name+" reconstructed z")
		}
		got, err := r.SolveOn(ops.CPU(), tensor.F32, x0, n)
		require.NoError(t, err)
		s := maxAbsOf(x0, fin.Y, fin.Z)
		tol := (1 + s/0.3) * math.Ceil(float64(steps)/RevHeunChunk) * 0x1p-24 * s
		e := math.Max(maxDiff(got.Y, fin.Y), maxDiff(got.Z, fin.Z))
		gb, err := r.ReconstructOn(ops.CPU(), tensor.F32, got)
		require.NoError(t, err)
		eb := math.Max(maxDiff(gb.Y, x0), maxDiff(gb.Z, x0))
		t.Logf("%s f32: final state within %.3g of f64's, reconstruction within %.3g (bound %.3g)", c.name, e, eb, tol)
		assert.LessOrEqual(t, e, tol, c.name)
		assert.LessOrEqual(t, eb, tol, c.name)
	}
}

// A traced solve (SolveTrace, SolveTraceOn) hands out y after steps 0, every, 2·every, … and the
// last step, and changes nothing: its final state is Solve's bit for bit, the fused path's trace
// in float64 is the step-by-step one's (every not dividing the steps, not dividing RevHeunChunk,
// and larger than it), y_0 is x0 and the last record is the final y.
func TestRevHeunTraceEqualsSolve(t *testing.T) {
	const n, d, steps = 4, 2, RevHeunChunk + 45
	x0 := startValues(n, d)
	r := ReversibleHeun{SDE: AffineFamily{SDE: testOU(t), D: d}, Horizon: 1.25, Steps: steps, Seed: 5, FirstChain: 3}
	fin, err := r.Solve(x0, n)
	require.NoError(t, err)
	for _, every := range []int{1, 7, RevHeunChunk + 3} {
		type rec struct {
			k int
			y []float64
		}
		collect := func(out *[]rec) RevHeunRecord {
			return func(k int, y []float64) error {
				*out = append(*out, rec{k, append([]float64(nil), y...)})
				return nil
			}
		}
		var host, fused []rec
		got, err := r.SolveTrace(x0, n, every, collect(&host))
		require.NoError(t, err)
		requireSameBits(t, fin.Y, got.Y, "traced y")
		requireSameBits(t, fin.Z, got.Z, "traced z")
		_, err = r.SolveTraceOn(ops.CPU(), tensor.F64, x0, n, every, collect(&fused))
		require.NoError(t, err)
		want := (steps + every - 1) / every
		require.Len(t, host, want+1, "every %d", every)
		require.Len(t, fused, want+1, "every %d", every)
		for i := range host {
			k := min(i*every, steps)
			assert.Equal(t, k, host[i].k, "every %d record %d", every, i)
			assert.Equal(t, k, fused[i].k, "every %d record %d", every, i)
			requireSameBits(t, host[i].y, fused[i].y, fmt.Sprintf("every %d step %d", every, k))
		}
		requireSameBits(t, x0, host[0].y, "y_0")
		requireSameBits(t, fin.Y, host[len(host)-1].y, "last record")
	}
	stop := errors.New("stop")
	_, err = r.SolveTrace(x0, n, 10, func(k int, y []float64) error {
		if k == 20 {
			return stop
		}
		return nil
	})
	assert.ErrorIs(t, err, stop)
	_, err = r.SolveTraceOn(ops.CPU(), tensor.F64, x0, n, 0, func(int, []float64) error { return nil })
	assert.ErrorContains(t, err, "trace every 0 steps")
}

func requireSameBits(t *testing.T, want, got []float64, what string) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for i := range want {
		if math.Float64bits(want[i]) != math.Float64bits(got[i]) {
			require.Failf(t, "values differ", "%s: element %d: %v, want %v", what, i, got[i], want[i])
		}
	}
}

// strongSlope fits log E|error| = p·log h + c by least squares over the step sizes.
func strongSlope(h, e []float64) float64 {
	var sx, sy, sxx, sxy float64
	n := float64(len(h))
	for i := range h {
		x, y := math.Log(h[i]), math.Log(e[i])
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

// Strong order: the mean absolute error E|y_N − X_T| against the exact solution driven by the same
// Brownian path, over steps h = 2^−4 … 2^−9 (T = 1, 1000 paths), and the least-squares slope of
// log error against log h. The slope's Monte-Carlo standard error is estimated by resampling the
// paths (400 bootstrap resamples; errors at different h share paths, which the resampling keeps);
// the test asserts |slope − p| ≤ 4 SE + 0.03, the 0.03 allowing for the pre-asymptotic curvature
// of the fit (measured below), so that a false failure needs a 4σ deviation (≈ 6e−5 for a normal
// estimate). Exact solutions:
//
//   - OU (additive noise, p = 1): X_T on a grid of 2^14 steps of the exact recursion
//     X ← μ + e^{−θδ}(X − μ) + σ e^{−θδ/2} ΔW, whose own strong error, σθδ√(T/12) ≈ 1.4e−5, is
//     under 7% of the smallest error measured.
//   - GBM (multiplicative scalar noise, p = 1): X_0 exp((μ − σ²/2)T + σ W_T), exact. Scalar noise
//     is commutative: the oscillating mode z − y (of size √h) cancels in the average ½(g(z_n) +
//     g(z_{n+1})), and reversible Heun keeps Heun's order 1; the general guarantee, ½, is what
//     the non-commutative case shows.
//   - Lévy area (non-commutative noise, p = ½): X2(T) = X2(0) + X1(0) W2(T) + ∫ W1 ∘ dW2, the
//     integral as the trapezoid sum on 2^14 steps, which misses the Lévy areas below δ = 2^−14:
//     its error variance Tδ/12 makes the measured E|error| ∝ √(h − δ), a slope bias below 0.005.
//
// Dropping the drift correction of GBM's Stratonovich form (B = μ instead of μ − σ²/2) leaves a
// bias that does not vanish with h: the slope falls to about 0 (checked once by hand).
func TestRevHeunStrongOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("strong-order sweep: 1000 paths × 6 step sizes")
	}
	const paths, fine, depth = 1000, 1 << 14, 20
	ou, gbm := testOU(t), testGBM(t)
	for _, c := range []struct {
		name  string
		sde   StratonovichSDE
		order float64
		exact func(bi []*ops.BrownianInterval, x0 []float64) float64
	}{
		{"ou", AffineFamily{SDE: ou, D: 1}, 1, func(bi []*ops.BrownianInterval, x0 []float64) float64 {
			const theta, mu, sigma, dl = 1.0, 0.5, 0.8, 1.0 / fine
			a, s := math.Exp(-theta*dl), sigma*math.Exp(-theta*dl/2)
			x := x0[0]
			for k := range fine {
				w, err := bi[0].Increment(float64(k)*dl, float64(k+1)*dl)
				require.NoError(t, err)
				x = mu + a*(x-mu) + s*w
			}
			return x
		}},
		{"gbm", AffineFamily{SDE: gbm, D: 1}, 1, func(bi []*ops.BrownianInterval, x0 []float64) float64 {
			w, err := bi[0].At(1)
			require.NoError(t, err)
			return GBMExact(0.3, 0.6, x0[0], 1, w)
		}},
		{"levy-area", levyAreaSDE{}, 0.5, func(bi []*ops.BrownianInterval, x0 []float64) float64 {
			const dl = 1.0 / fine
			w1, area := 0.0, 0.0
			for k := range fine {
				d1, err := bi[0].Increment(float64(k)*dl, float64(k+1)*dl)
				require.NoError(t, err)
				d2, err := bi[1].Increment(float64(k)*dl, float64(k+1)*dl)
				require.NoError(t, err)
				area += (w1 + 0.5*d1) * d2
				w1 += d1
			}
			w2, err := bi[1].At(1)
			require.NoError(t, err)
			return x0[1] + x0[0]*w2 + area
		}},
	} {
		d, m := c.sde.Dim(), c.sde.NoiseDim()
		x0 := make([]float64, paths*d)
		for i := range x0 {
			x0[i] = 1
		}
		base := ReversibleHeun{SDE: c.sde, Horizon: 1, Steps: 1, Depth: depth, Seed: 11}
		spec, draw := base.Interval()
		exact := make([]float64, paths)
		for p := range exact {
			bi := make([]*ops.BrownianInterval, m)
			for k := range bi {
				var err error
				bi[k], err = ops.NewBrownianInterval(spec, draw, uint64(p*m+k))
				require.NoError(t, err)
			}
			exact[p] = c.exact(bi, x0[p*d:(p+1)*d])
		}
		var hs []float64
		var errs [][]float64
		for k := 4; k <= 9; k++ {
			r := base
			r.Steps = 1 << k
			fin, err := r.Solve(x0, paths)
			require.NoError(t, err)
			e := make([]float64, paths)
			for p := range e {
				e[p] = math.Abs(fin.Y[p*d+d-1] - exact[p])
			}
			hs, errs = append(hs, r.StepSize()), append(errs, e)
		}
		mean := func(idx func(int) int) []float64 {
			out := make([]float64, len(errs))
			for j, e := range errs {
				for p := range paths {
					out[j] += e[idx(p)] / paths
				}
			}
			return out
		}
		me := mean(func(p int) int { return p })
		slope := strongSlope(hs, me)
		rng := rand.New(rand.NewPCG(1, 2))
		const boot = 400
		var sum, sum2 float64
		for range boot {
			pick := make([]int, paths)
			for i := range pick {
				pick[i] = rng.IntN(paths)
			}
			s := strongSlope(hs, mean(func(p int) int { return pick[p] }))
			sum, sum2 = sum+s, sum2+s*s
		}
		se := math.Sqrt((sum2 - sum*sum/boot) / (boot - 1))
		tol := 4*se + 0.03
		t.Logf("%s: E|error| %s over h = 2^-4 … 2^-9: slope %.3f ± %.3f (1 SE), expected %.1f, tolerance %.3f",
			c.name, fmtErrs(me), slope, se, c.order, tol)
		assert.InDelta(t, c.order, slope, tol, c.name)
	}
}

func fmtErrs(e []float64) string {
	s := ""
	for i, v := range e {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.3g", v)
	}
	return s
}

// Bad input gives an error naming the problem, never a panic.
func TestReversibleHeunRejectsBadInput(t *testing.T) {
	ou := AffineFamily{SDE: testOU(t), D: 2}
	good := ReversibleHeun{SDE: ou, Horizon: 1, Steps: 8, Seed: 1}
	x0 := startValues(2, 2)
	_, err := good.Solve(x0, 2)
	require.NoError(t, err)
	for _, c := range []struct {
		name string
		r    ReversibleHeun
		x0   []float64
		n    int
		want string
	}{
		{"no sde", ReversibleHeun{Horizon: 1, Steps: 8}, x0, 2, "no SDE"},
		{"steps 0", ReversibleHeun{SDE: ou, Horizon: 1, Steps: 0}, x0, 2, "steps = 0"},
		{"steps < 0", ReversibleHeun{SDE: ou, Horizon: 1, Steps: -3}, x0, 2, "steps = -3"},
		{"horizon 0", ReversibleHeun{SDE: ou, Horizon: 0, Steps: 8}, x0, 2, "horizon T = 0"},
		{"horizon < 0", ReversibleHeun{SDE: ou, Horizon: -1, Steps: 8}, x0, 2, "horizon T = -1"},
		{"horizon NaN", ReversibleHeun{SDE: ou, Horizon: math.NaN(), Steps: 8}, x0, 2, "horizon T = NaN"},
		{"horizon Inf", ReversibleHeun{SDE: ou, Horizon: math.Inf(1), Steps: 8}, x0, 2, "horizon T = +Inf"},
		{"depth 34", ReversibleHeun{SDE: ou, Horizon: 1, Steps: 8, Depth: 34}, x0, 2, "interval depth 34"},
		{"depth too shallow", ReversibleHeun{SDE: ou, Horizon: 1, Steps: 8, Depth: 2}, x0, 2, "fewer than the 8 steps"},
		{"x0 NaN", good, []float64{0, 1, math.NaN(), 2}, 2, "x0: chain 1, coordinate 0 is NaN"},
		{"x0 Inf", good, []float64{0, math.Inf(-1), 1, 2}, 2, "x0: chain 0, coordinate 1 is -Inf"},
		{"x0 length", good, x0[:3], 2, "x0 has 3 values"},
		{"chains", ReversibleHeun{SDE: ou, Horizon: 1, Steps: 8, FirstChain: 1 << 31}, x0, 2, "below 2^32"},
		{"diagonal", ReversibleHeun{SDE: badDiagonal{}, Horizon: 1, Steps: 8}, x0, 2, "diagonal noise needs"},
		{"nan coefficients", ReversibleHeun{SDE: AffineFamily{SDE: ops.AffineSDE{A: math.NaN()}, D: 2}, Horizon: 1, Steps: 8}, x0, 2, ""},
	} {
		var err error
		assert.NotPanics(t, func() { _, err = c.r.Solve(c.x0, c.n) }, c.name)
		if c.name == "nan coefficients" {
			// The generic path evaluates f and g as given and reports the non-finite state; the
			// fused path refuses the coefficients.
			require.Error(t, err, c.name)
			assert.Contains(t, err.Error(), "no longer finite", c.name)
			_, err = c.r.SolveOn(ops.CPU(), tensor.F64, c.x0, c.n)
			assert.ErrorContains(t, err, "must be finite", c.name)
			continue
		}
		assert.ErrorContains(t, err, c.want, c.name)
		_, err = c.r.SolveOn(ops.CPU(), tensor.F64, c.x0, c.n)
		assert.ErrorContains(t, err, c.want, c.name+" (fused)")
	}
	// A final state that is not finite, and one of the wrong size.
	fin, err := good.Solve(x0, 2)
	require.NoError(t, err)
	fin.Z[3] = math.Inf(1)
	_, err = good.Reconstruct(fin)
	assert.ErrorContains(t, err, "final z: chain 1, coordinate 1 is +Inf")
	_, err = good.ReconstructOn(ops.CPU(), tensor.F32, fin)
	assert.ErrorContains(t, err, "final z: chain 1, coordinate 1 is +Inf")
	fin.Z = fin.Z[:2]
	_, err = good.Reconstruct(fin)
	assert.ErrorContains(t, err, "state has 4 and 2 values")
	// A blow-up is reported, not returned silently.
	huge := ReversibleHeun{SDE: AffineFamily{SDE: ops.AffineSDE{B: 1e100}, D: 1}, Horizon: 1, Steps: 8, Seed: 1}
	_, err = huge.Solve([]float64{1}, 1)
	assert.ErrorContains(t, err, "no longer finite")
	// The fused path integrates affine families only.
	_, err = ReversibleHeun{SDE: levyAreaSDE{}, Horizon: 1, Steps: 8}.SolveOn(ops.CPU(), tensor.F64, x0, 2)
	assert.ErrorContains(t, err, "integrates an AffineFamily")
	// The families refuse bad parameters.
	for _, c := range []struct {
		name string
		err  error
	}{
		{"ou θ", second(ops.OrnsteinUhlenbeck(math.NaN(), 0, 1))},
		{"ou μ", second(ops.OrnsteinUhlenbeck(1, math.Inf(1), 1))},
		{"ou σ < 0", second(ops.OrnsteinUhlenbeck(1, 0, -1))},
		{"ou θμ", second(ops.OrnsteinUhlenbeck(1e200, 1e200, 1))},
		{"gbm μ", second(ops.GeometricBrownian(math.NaN(), 1))},
		{"gbm σ", second(ops.GeometricBrownian(0, math.Inf(1)))},
		{"gbm μ − σ²/2", second(ops.GeometricBrownian(0, 1e200))},
	} {
		assert.Error(t, c.err, c.name)
	}
}

func second[T any](_ T, err error) error { return err }

type badDiagonal struct{ levyAreaSDE }

func (badDiagonal) NoiseDim() int       { return 3 }
func (badDiagonal) DiagonalNoise() bool { return true }
