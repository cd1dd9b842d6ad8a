package solvers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
)

// storedBackprop is the reference the adjoint is checked against: the forward solve keeps every
// state (y_n, z_n), then the same vector–Jacobian products run backward on the stored states,
// with no reconstruction. Its memory grows with the number of steps.
func storedBackprop(r ReversibleHeun, x0 []float64, n int, cotY, cotZ []float64) (RevHeunGradient, error) {
	p, err := r.checkAdjoint(n, [][]float64{x0}, cotY, cotZ)
	if err != nil {
		return RevHeunGradient{}, err
	}
	paths, err := r.intervals(n)
	if err != nil {
		return RevHeunGradient{}, err
	}
	w, h := newAdjointWork(r.SDE, n), r.StepSize()
	ys, zs := make([][]float64, r.Steps+1), make([][]float64, r.Steps+1)
	ys[0], zs[0] = append([]float64(nil), x0...), append([]float64(nil), x0...)
	for k := 0; k < r.Steps; k++ {
		ys[k+1], zs[k+1] = append([]float64(nil), ys[k]...), append([]float64(nil), zs[k]...)
		if err := r.increments(w.heunWork, paths, k); err != nil {
			return RevHeunGradient{}, err
		}
		if err := r.forward(w.heunWork, ys[k+1], zs[k+1], k, h); err != nil {
			return RevHeunGradient{}, err
		}
	}
	g := RevHeunGradient{X0: make([]float64, len(x0)), Params: make([]float64, len(p.Params())),
		Start: RevHeunState{Y: ys[0], Z: zs[0], N: n}}
	copy(w.ay, cotY)
	copy(w.az, cotZ)
	for k := r.Steps - 1; k >= 0; k-- {
		if err := r.increments(w.heunWork, paths, k); err != nil {
			return RevHeunGradient{}, err
		}
		if err := r.backwardHalf1(p, w, g.Params, zs[k+1], k, h); err != nil {
			return RevHeunGradient{}, err
		}
		if err := r.backwardHalf2(p, w, g.Params, zs[k], k, h); err != nil {
			return RevHeunGradient{}, err
		}
	}
	for i := range g.X0 {
		g.X0[i] = w.ay[i] + w.az[i]
	}
	return g, nil
}

// adjointFamily is one parametric SDE under test, with starts that suit it.
type adjointFamily struct {
	name string
	sde  ParametricSDE
}

func adjointFamilies(t testing.TB) []adjointFamily {
	ou, err := NewOUFamily(1.2, 0.5, 0.8, 2)
	require.NoError(t, err)
	gbm, err := NewGBMFamily(0.3, 0.6, 2)
	require.NoError(t, err)
	gmm, err := NewGMMLangevinFamily(2, []float64{-1, 0.5, 1.5, 0, 0.3, -1.2}, []float64{0.2, -0.4, 0.1}, []float64{0.5, 0.8, 0.3})
	require.NoError(t, err)
	net, err := ops.RandomMLP(ops.MLPConfig{Dim: 2, Width: 6, Depth: 2, BlockLayers: 2, Fourier: 2, SigmaData: 1,
		BranchMult: 0.7, OutMult: 0.5}, 4)
	require.NoError(t, err)
	mlp, err := NewMLPDriftFamily(net, 0.8, 0.6)
	require.NoError(t, err)
	return []adjointFamily{{"ou", ou}, {"gbm", gbm}, {"gmm-langevin", gmm}, {"mlp-drift", mlp}}
}

type adjointLoss struct {
	name string
	f    func(y []float64, n, d int) (float64, []float64, error)
}

var adjointLosses = []adjointLoss{{"mean", TerminalMeanLoss}, {"variance", TerminalVarianceLoss}}

// lossAt solves from x0 with the family's parameters p and returns the loss of y_N.
func lossAt(t *testing.T, r ReversibleHeun, fam ParametricSDE, p, x0 []float64, n int, loss adjointLoss) float64 {
	sde, err := fam.WithParams(p)
	require.NoError(t, err)
	r.SDE = sde
	st, err := r.Solve(x0, n)
	require.NoError(t, err)
	l, _, err := loss.f(st.Y, n, sde.Dim())
	require.NoError(t, err)
	return l
}

// The VJPs of each family against central differences of vfᵀf(x) + vgᵀg(x), in x and in θ, at
// random points and cotangents. Step ε = 1e-6 (relative to max(1, |value|)): the truncation error
// ε²·|third derivative| ≈ 1e-12 and the cancellation error ≈ 1e-16/ε ≈ 1e-10, so the test asserts
// |vjp − fd| ≤ 1e-7·(1 + |fd|), a thousand times the expected error; a dropped or mis-signed
// term (say the responsibilities' derivative in the GMM score) is off by O(1).
func TestFamilyVJPsMatchFiniteDifferences(t *testing.T) {
	const n, eps, tol = 3, 1e-6, 1e-7
	rng := rand.New(rand.NewPCG(7, 11))
	for _, fam := range adjointFamilies(t) {
		t.Run(fam.name, func(t *testing.T) {
			d, p0 := fam.sde.Dim(), fam.sde.Params()
			x := make([]float64, n*d)
			vf, vg := make([]float64, n*d), make([]float64, n*d)
			for i := range x {
				x[i] = 0.3 + rng.NormFloat64()
				vf[i], vg[i] = rng.NormFloat64(), rng.NormFloat64()
			}
			inner := func(sde ParametricSDE, x []float64) float64 {
				f, g := make([]float64, n*d), make([]float64, n*d)
				require.NoError(t, sde.Drift(f, x, n, 0.3))
				require.NoError(t, sde.Diffusion(g, x, n, 0.3))
				s := 0.0
				for i := range f {
					s += vf[i]*f[i] + vg[i]*g[i]
				}
				return s
			}
			dx, dp := make([]float64, n*d), make([]float64, len(p0))
			require.NoError(t, fam.sde.VJP(dx, dp, vf, vg, x, n, 0.3))
			worst := 0.0
			for i := range x {
				e := eps * math.Max(1, math.Abs(x[i]))
				xp, xm := append([]float64(nil), x...), append([]float64(nil), x...)
				xp[i] += e
				xm[i] -= e
				fd := (inner(fam.sde, xp) - inner(fam.sde, xm)) / (2 * e)
				worst = math.Max(worst, math.Abs(dx[i]-fd)/(1+math.Abs(fd)))
				assert.InDelta(t, fd, dx[i], tol*(1+math.Abs(fd)), "d/dx[%d]", i)
			}
			for i := range p0 {
				e := eps * math.Max(1, math.Abs(p0[i]))
				pp, pm := append([]float64(nil), p0...), append([]float64(nil), p0...)
				pp[i] += e
				pm[i] -= e
				sp, err := fam.sde.WithParams(pp)
				require.NoError(t, err)
				sm, err := fam.sde.WithParams(pm)
				require.NoError(t, err)
				fd := (inner(sp, x) - inner(sm, x)) / (2 * e)
				worst = math.Max(worst, math.Abs(dp[i]-fd)/(1+math.Abs(fd)))
				assert.InDelta(t, fd, dp[i], tol*(1+math.Abs(fd)), "d/dθ[%d]", i)
			}
			t.Logf("max |vjp − fd|/(1 + |fd|) = %.2e", worst)
		})
	}
}

// GMMLangevinFamily's drift is the score ops.GMMScore computes for the same mixture (weights
// softmax(α), isotropic variances): the hand-written score the VJP differentiates is the
// library's. Tolerance 1e-12 relative: two float64 evaluations of the same formula.
func TestGMMLangevinFamilyDriftIsTheGMMScore(t *testing.T) {
	fam := adjointFamilies(t)[2].sde.(*GMMLangevinFamily)
	m := fam.Mixture()
	k, d, logits, mu := m.K(), m.Dim(), m.Logits(), m.Means()
	w := make([]float64, k)
	means := make([][]float64, k)
	for i := range w {
		w[i] = math.Exp(logits[i])
		means[i] = mu[i*d : (i+1)*d]
	}
	gmm, err := ops.NewGMM(ops.GMMSpec{Weights: w, Means: means, Vars: m.Vars()})
	require.NoError(t, err)
	const n = 5
	x := startValues(n, d)
	for i := range x {
		x[i] = 3*x[i] - 2
	}
	want, got := make([]float64, n*d), make([]float64, n*d)
	require.NoError(t, GMMLangevin{GMM: gmm}.Drift(want, x, n, 0))
	require.NoError(t, fam.Drift(got, x, n, 0))
	assert.LessOrEqual(t, maxDiff(want, got), 1e-12*(1+maxAbsOf(want)))
}

// The adjoint's dL/dθ and dL/dx_0 against central differences of the whole solve (Brownian path
// fixed by the seed, the solve is a smooth function of θ and x_0), every family, both losses.
// Step ε = 1e-5·max(1, |value|): the truncation error ε²·|L”'| stays below 1e-9 here and the
// cancellation error, about (50 steps of rounding ≈ 1e-14·|L|)/ε, below 1e-9 as well, so the test
// asserts |adjoint − fd| ≤ 1e-6·(1 + |fd|); measured worst values are logged (about 1e-9). A
// dropped term of a VJP or of the step's pull-back is off by O(h) per step, O(1) in total.
func TestAdjointMatchesFiniteDifferences(t *testing.T) {
	const n, steps, eps, tol = 6, 50, 1e-5, 1e-6
	for _, fam := range adjointFamilies(t) {
		for _, loss := range adjointLosses {
			t.Run(fam.name+"/"+loss.name, func(t *testing.T) {
				d, p0 := fam.sde.Dim(), fam.sde.Params()
				x0 := startValues(n, d)
				r := ReversibleHeun{SDE: fam.sde, Horizon: 1, Steps: steps, Seed: 42}
				st, err := r.Solve(x0, n)
				require.NoError(t, err)
				_, cot, err := loss.f(st.Y, n, d)
				require.NoError(t, err)
				g, err := r.Adjoint(st, cot, nil)
				require.NoError(t, err)
				worst := 0.0
				check := func(what string, got, fd float64) {
					worst = math.Max(worst, math.Abs(got-fd)/(1+math.Abs(fd)))
					assert.InDelta(t, fd, got, tol*(1+math.Abs(fd)), what)
				}
				for i := range p0 {
					e := eps * math.Max(1, math.Abs(p0[i]))
					pp, pm := append([]float64(nil), p0...), append([]float64(nil), p0...)
					pp[i] += e
					pm[i] -= e
					fd := (lossAt(t, r, fam.sde, pp, x0, n, loss) - lossAt(t, r, fam.sde, pm, x0, n, loss)) / (2 * e)
					check(fmt.Sprintf("dL/dθ[%d]", i), g.Params[i], fd)
				}
				for i := range x0 {
					e := eps * math.Max(1, math.Abs(x0[i]))
					xp, xm := append([]float64(nil), x0...), append([]float64(nil), x0...)
					xp[i] += e
					xm[i] -= e
					fd := (lossAt(t, r, fam.sde, p0, xp, n, loss) - lossAt(t, r, fam.sde, p0, xm, n, loss)) / (2 * e)
					check(fmt.Sprintf("dL/dx0[%d]", i), g.X0[i], fd)
				}
				t.Logf("max |adjoint − fd|/(1 + |fd|) = %.2e over %d parameters and %d starts", worst, len(p0), len(x0))
			})
		}
	}
}

// The adjoint (states reconstructed by the inverse steps) against backprop through the stored
// states (the same VJPs, no reconstruction) over 1000 steps: they differ only by the round-off of
// the reconstruction (a few hundred ε·|state| after 1000 steps, see
// TestReversibleHeunReconstructsTheStart), carried through VJPs whose Lipschitz constants are
// O(1) here. Bound: max |adjoint − stored| ≤ 1e-10·(1 + max |stored|); measured values are
// logged (about 1e-14).
func TestAdjointEqualsStoredBackprop(t *testing.T) {
	const n, steps = 8, 1000
	for _, fam := range adjointFamilies(t) {
		for _, loss := range adjointLosses {
			t.Run(fam.name+"/"+loss.name, func(t *testing.T) {
				d := fam.sde.Dim()
				x0 := startValues(n, d)
				r := ReversibleHeun{SDE: fam.sde, Horizon: 1, Steps: steps, Seed: 5}
				st, err := r.Solve(x0, n)
				require.NoError(t, err)
				_, cot, err := loss.f(st.Y, n, d)
				require.NoError(t, err)
				cotZ := make([]float64, len(cot))
				for i := range cotZ {
					cotZ[i] = 0.1 * cot[len(cot)-1-i] // a loss that also sees z_N
				}
				adj, err := r.Adjoint(st, cot, cotZ)
				require.NoError(t, err)
				ref, err := storedBackprop(r, x0, n, cot, cotZ)
				require.NoError(t, err)
				scale := 1 + maxAbsOf(ref.Params, ref.X0)
				dp, dx := maxDiff(adj.Params, ref.Params), maxDiff(adj.X0, ref.X0)
				t.Logf("max |adjoint − stored|: θ %.2e, x0 %.2e (scale %.3g)", dp, dx, scale)
				assert.LessOrEqual(t, dp, 1e-10*scale)
				assert.LessOrEqual(t, dx, 1e-10*scale)
				assert.LessOrEqual(t, maxDiff(adj.Start.Y, x0), 1e-10*(1+maxAbsOf(x0)))
			})
		}
	}
}

// allocatedBytes returns the bytes f allocates (runtime.MemStats.TotalAlloc difference).
func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// The adjoint's memory does not grow with the number of steps: with the Brownian interval's depth
// fixed (30 levels: the default grows like log2(steps), and each path keeps a cache of one node
// per level), the bytes one gradient allocates at 10⁴ steps are at most those at 10² steps plus
// 8 KiB (its buffers are O(N·d) and allocated once; a per-step allocation of even 8 bytes would
// add 80 KB; the slack covers the runtime's own allocations). Backprop through stored states, as
// a contrast, allocates at least 2·N·d·8 bytes per step.
func TestAdjointMemoryDoesNotGrowWithSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("10⁴-step gradients")
	}
	if asanBuild {
		// Under the sanitizer the runtime's allocation counts grow with the steps (measured: 25 MB
		// at 10² steps, 1.9 GB at 10⁴, for the adjoint as for stored states), which the plain and
		// race builds do not show; the plain run of make test checks the property.
		t.Skip("allocation counts grow with the steps under -asan for every path; checked without it")
	}
	const n = 16
	for _, fam := range adjointFamilies(t) {
		t.Run(fam.name, func(t *testing.T) {
			d := fam.sde.Dim()
			x0 := startValues(n, d)
			measure := func(steps int) (adjoint, stored uint64) {
				r := ReversibleHeun{SDE: fam.sde, Horizon: 1, Steps: steps, Depth: 30, Seed: 9}
				st, err := r.Solve(x0, n)
				require.NoError(t, err)
				_, cot, err := TerminalVarianceLoss(st.Y, n, d)
				require.NoError(t, err)
				var aerr, serr error
				adjoint = allocatedBytes(func() { _, aerr = r.Adjoint(st, cot, nil) })
				stored = allocatedBytes(func() { _, serr = storedBackprop(r, x0, n, cot, nil) })
				require.NoError(t, aerr)
				require.NoError(t, serr)
				return adjoint, stored
			}
			a2, s2 := measure(100)
			a4, s4 := measure(10000)
			t.Logf("bytes allocated: adjoint %d (10² steps), %d (10⁴); stored states %d, %d", a2, a4, s2, s4)
			assert.LessOrEqual(t, a4, a2+8192, "adjoint memory grows with the steps")
			assert.GreaterOrEqual(t, s4, uint64(2*n*d*8*10000), "stored-state backprop should hold every state")
		})
	}
}

// notParametric is a StratonovichSDE without parameters.
type notParametric struct{ AffineFamily }

func TestAdjointRejectsBadInput(t *testing.T) {
	ou, err := NewOUFamily(1, 0.5, 0.8, 2)
	require.NoError(t, err)
	const n = 3
	good := ReversibleHeun{SDE: ou, Horizon: 1, Steps: 10, Seed: 1}
	st, err := good.Solve(startValues(n, 2), n)
	require.NoError(t, err)
	cot := make([]float64, n*2)
	nan := math.NaN()
	withSDE := func(s StratonovichSDE) ReversibleHeun { r := good; r.SDE = s; return r }
	withSteps := func(k int) ReversibleHeun { r := good; r.Steps = k; return r }
	badCot := append([]float64(nil), cot...)
	badCot[4] = math.Inf(1)
	badState := RevHeunState{Y: append([]float64(nil), st.Y...), Z: st.Z, N: n}
	badState.Y[1] = nan
	cases := []struct {
		name  string
		run   func() error
		wants string
	}{
		{"NaN θ", func() error {
			return second(withSDE(OUFamily{AffineFamily: ou.AffineFamily, Theta: nan, Mu: 0.5, Sigma: 0.8}).Adjoint(st, cot, nil))
		}, "parameter 0 is NaN"},
		{"infinite μ via WithParams", func() error { return second(ou.WithParams([]float64{1, math.Inf(1), 0.8})) }, "μ = +Inf"},
		{"negative σ via constructor", func() error { return second(NewGBMFamily(0.3, -1, 2)) }, "σ = -1"},
		{"GMM NaN logit", func() error {
			return second(NewGMMLangevinFamily(1, []float64{0, 1}, []float64{0, nan}, []float64{1, 1}))
		}, "logit 1 is NaN"},
		{"GMM wrong parameter count", func() error {
			return second(adjointFamilies(t)[2].sde.WithParams([]float64{1, 2}))
		}, "2 parameters, want 3 means × 2 + 3 logits"},
		{"cotangent too short", func() error { return second(good.Adjoint(st, cot[:5], nil)) }, "cotangent of y has 5 values, want 3 chains × 2"},
		{"cotangent of z wrong shape", func() error { return second(good.Adjoint(st, cot, make([]float64, 7))) }, "cotangent of z has 7 values"},
		{"cotangent not finite", func() error { return second(good.Adjoint(st, badCot, nil)) }, "cotangent of y: chain 2, coordinate 0 is +Inf"},
		{"state not finite", func() error { return second(good.Adjoint(badState, cot, nil)) }, "chain 0, coordinate 1 is NaN"},
		{"state wrong shape", func() error {
			return second(good.Adjoint(RevHeunState{Y: st.Y[:4], Z: st.Z, N: n}, cot, nil))
		}, "state has 4 values"},
		{"steps 0", func() error { return second(withSteps(0).Adjoint(st, cot, nil)) }, "steps = 0: must be ≥ 1"},
		{"steps −3", func() error { return second(withSteps(-3).Adjoint(st, cot, nil)) }, "steps = -3: must be ≥ 1"},
		{"not parametric", func() error {
			return second(withSDE(notParametric{ou.AffineFamily}).Adjoint(st, cot, nil))
		}, "not a ParametricSDE"},
		{"no SDE", func() error { return second(withSDE(nil).Adjoint(st, cot, nil)) }, "no SDE"},
		{"mean loss wrong shape", func() error { _, _, err := TerminalMeanLoss(cot, 4, 2); return err }, "6 values for 4 chains × 2"},
		{"variance loss no chains", func() error { _, _, err := TerminalVarianceLoss(nil, 0, 2); return err }, "0 values for 0 chains × 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = c.run() })
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.wants)
		})
	}
}

// BenchmarkRevHeunGradient times one gradient (terminal-variance loss, OU family, 16 chains × 4
// coordinates) by the adjoint (states reconstructed) and by backprop through stored states
// (forward solve included, since it is where the states are stored), at 10², 10³ and 10⁴
// steps; B/op is the memory each allocates.
func BenchmarkRevHeunGradient(b *testing.B) {
	const n, d = 16, 4
	ou, err := NewOUFamily(1.2, 0.5, 0.8, d)
	require.NoError(b, err)
	x0 := startValues(n, d)
	for _, steps := range []int{100, 1000, 10000} {
		r := ReversibleHeun{SDE: ou, Horizon: 1, Steps: steps, Seed: 3}
		st, err := r.Solve(x0, n)
		require.NoError(b, err)
		_, cot, err := TerminalVarianceLoss(st.Y, n, d)
		require.NoError(b, err)
		b.Run(fmt.Sprintf("adjoint/steps=%d", steps), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Adjoint(st, cot, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("stored/steps=%d", steps), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := storedBackprop(r, x0, n, cot, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
