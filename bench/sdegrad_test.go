package bench

import (
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// Gradients through SDE solves (docs/math.md §4.8): one gradient is a reversible Heun solve of
// `paths` chains over [0, T] followed by the discrete adjoint (solvers.ReversibleHeun.Adjoint:
// the states rebuilt by the algebraic inverse, memory independent of the steps), for the loss
// L = mean of y_T over the paths and coordinates (solvers.TerminalMeanLoss); the gradient is dL/dθ
// and dL/dx_0. The problems are those of the peers bench/peers/sde_torchsde.py, sde_diffrax.py and
// sde_numpy.py (sdeGradProblems there):
//
//	ou:  dX = θ(μ − X) dt + σ dW, (θ, μ, σ) = (1.2, 0.5, 0.8), 16 paths × d = 4, x_0 = 1
//	gbm: dX = μX dt + σX dW (Itô; Stratonovich drift (μ − σ²/2)X), (μ, σ) = (0.3, 0.6),
//	     16 paths × d = 4, x_0 = 1
//	gmm: dX = ∇log p(X) dt + √2 dW, p an isotropic mixture of K = 4 components in d = 2 (means at
//	     (±1.5, ±1.5), logits 0, variances 0.5), 32 paths, x_0 = (0.5, −0.25); θ = the means
//	     and the logits
//
// T = 1, steps ∈ {10², 10³, 10⁴}, float64, seed 3 (solvers.ReversibleHeun's Brownian intervals).
//
//	BenchmarkSDEGradient/<family>/<path>/paths=<N>/d=<d>/steps=<S>
//
// path "generic" is Solve + Adjoint; "fused" runs the forward solve and the adjoint through the
// backend's fused ops (SolveOn + AdjointOn on ops.CPU(): ReversibleHeun and ReversibleHeunAdjoint
// for ou and gbm, LangevinMixtureHeun and LangevinMixtureHeunAdjoint for gmm; the solve
// bit-identical in float64, the gradient equal to round-off). Metrics: steps/s = paths·d·steps per second of one whole gradient (forward and
// backward: each coordinate-step is integrated twice and pulled back once); B/op, allocs/op: the
// memory one gradient allocates (the adjoint's is O(paths·d), so B/op hardly grows with the
// steps; the Brownian intervals' caches grow with their depth, ⌈log2 steps⌉ + 20 levels).

// sdeGradProblem is one family of the sweep.
type sdeGradProblem struct {
	name     string
	paths, d int
	x0       float64 // every coordinate starts here (gmm: x0 pattern below)
	sde      func() (solvers.ParametricSDE, error)
	startRow []float64 // gmm: the start of every path
}

// sdeGradSteps are the steps of the sweep.
var sdeGradSteps = []int{100, 1000, 10000}

const (
	sdeGradHorizon = 1.0
	sdeGradSeed    = 3
)

// sdeGMMMeans and friends: the gmm problem's mixture.
var (
	sdeGMMMeans  = []float64{1.5, 1.5, -1.5, 1.5, -1.5, -1.5, 1.5, -1.5}
	sdeGMMLogits = []float64{0, 0, 0, 0}
	sdeGMMVars   = []float64{0.5, 0.5, 0.5, 0.5}
)

func sdeGradProblems() []sdeGradProblem {
	return []sdeGradProblem{
		{name: "ou", paths: 16, d: 4, x0: 1,
			sde: func() (solvers.ParametricSDE, error) { return solvers.NewOUFamily(1.2, 0.5, 0.8, 4) }},
		{name: "gbm", paths: 16, d: 4, x0: 1,
			sde: func() (solvers.ParametricSDE, error) { return solvers.NewGBMFamily(0.3, 0.6, 4) }},
		{name: "gmm", paths: 32, d: 2, startRow: []float64{0.5, -0.25},
			sde: func() (solvers.ParametricSDE, error) {
				return solvers.NewGMMLangevinFamily(2, sdeGMMMeans, sdeGMMLogits, sdeGMMVars)
			}},
	}
}

// start is x_0 (paths, d).
func (p sdeGradProblem) start() []float64 {
	x := make([]float64, p.paths*p.d)
	for i := range x {
		if p.startRow != nil {
			x[i] = p.startRow[i%p.d]
		} else {
			x[i] = p.x0
		}
	}
	return x
}

// sdeGradName is the benchmark's sub-name: <family>/<path>/paths=<N>/d=<d>/steps=<S>.
func sdeGradName(p sdeGradProblem, path string, steps int) string {
	return fmt.Sprintf("%s/%s/paths=%d/d=%d/steps=%s", p.name, path, p.paths, p.d, pow10Label(steps))
}

// sdeGradient is one gradient: the forward solve, the terminal-mean loss and the adjoint — on be
// through the fused ops when be is not nil (SolveOn + AdjointOn: BrownianIncrements and the
// family's fused step and adjoint ops per chunk of 256 steps), else the generic Solve and
// Adjoint on the host. It returns L and the gradient.
func sdeGradient(p sdeGradProblem, sde solvers.ParametricSDE, steps int, be ops.Backend, x0 []float64) (float64, solvers.RevHeunGradient, error) {
	r := solvers.ReversibleHeun{SDE: sde, Horizon: sdeGradHorizon, Steps: steps, Seed: sdeGradSeed}
	var st solvers.RevHeunState
	var err error
	if be != nil {
		st, err = r.SolveOn(be, tensor.F64, x0, p.paths)
	} else {
		st, err = r.Solve(x0, p.paths)
	}
	if err != nil {
		return 0, solvers.RevHeunGradient{}, err
	}
	l, cot, err := solvers.TerminalMeanLoss(st.Y, p.paths, p.d)
	if err != nil {
		return 0, solvers.RevHeunGradient{}, err
	}
	var g solvers.RevHeunGradient
	if be != nil {
		g, err = r.AdjointOn(be, tensor.F64, st, cot, nil)
	} else {
		g, err = r.Adjoint(st, cot, nil)
	}
	return l, g, err
}

// benchSDEGradient times whole gradients of every problem at every step count along each of
// paths: "generic" (Solve + Adjoint) and "fused" (SolveOn + AdjointOn on be).
func benchSDEGradient(b *testing.B, be ops.Backend, paths []string) {
	for _, p := range sdeGradProblems() {
		sde, err := p.sde()
		if err != nil {
			b.Fatal(err)
		}
		x0 := p.start()
		for _, path := range paths {
			var on ops.Backend
			if path == "fused" {
				on = be
			}
			for _, steps := range sdeGradSteps {
				b.Run(sdeGradName(p, path, steps), func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						l, _, err := sdeGradient(p, sde, steps, on, x0)
						if err != nil {
							b.Fatal(err)
						}
						if math.IsNaN(l) {
							b.Fatal("loss is NaN")
						}
					}
					b.ReportMetric(float64(p.paths*p.d*steps)*float64(b.N)/b.Elapsed().Seconds(), "steps/s")
				})
			}
		}
	}
}

// BenchmarkSDEGradient is one gradient (forward solve + adjoint) of each problem above on the CPU.
func BenchmarkSDEGradient(b *testing.B) {
	benchSDEGradient(b, ops.CPU(), []string{"generic", "fused"})
}

// sdeIncrements are the Brownian increments a ReversibleHeun solve of p with steps steps uses,
// (steps, paths, d) row-major: path c·d + j of its Brownian interval (solvers.ReversibleHeun's
// layout for diagonal noise) over [t_k, t_{k+1}], t_k = T·(k/steps).
func sdeIncrements(p sdeGradProblem, steps int) ([]float64, error) {
	r := solvers.ReversibleHeun{Horizon: sdeGradHorizon, Steps: steps, Seed: sdeGradSeed}
	spec, draw := r.Interval()
	nd := p.paths * p.d
	dw := make([]float64, steps*nd)
	for i := range nd {
		bi, err := ops.NewBrownianInterval(spec, draw, uint64(i))
		if err != nil {
			return nil, err
		}
		for k := range steps {
			s, t := sdeGradHorizon*(float64(k)/float64(steps)), sdeGradHorizon*(float64(k+1)/float64(steps))
			if dw[k*nd+i], err = bi.Increment(s, t); err != nil {
				return nil, err
			}
		}
	}
	return dw, nil
}

// TestNumPyPeerSDEGradientMatchesGo: the NumPy peer (bench/peers/sde_numpy.py --check-dir), given
// the Brownian increments of the Go solve, computes the same loss, dL/dθ and dL/dx_0 as
// BenchmarkSDEGradient's gradient (Solve + Adjoint) for every family, on the problem the peer
// defines itself (sde_common.PROBLEMS: parameters, paths, d, x_0, T) — so the peers' problems are
// the Go benchmark's. 100 steps; both sides float64, differing only by Go's fused multiply-adds:
// |peer − go| ≤ 1e-10·(1 + |go|) per element (measured worst logged, about 1e-15). Skipped, with
// the reason, where no interpreter imports NumPy.
func TestNumPyPeerSDEGradientMatchesGo(t *testing.T) {
	py, err := numpyPython()
	if err != nil {
		t.Skipf("no Python with NumPy for the peer: %v", err)
	}
	const steps, tol = 100, 1e-10
	for _, p := range sdeGradProblems() {
		t.Run(p.name, func(t *testing.T) {
			sde, err := p.sde()
			require.NoError(t, err)
			loss, g, err := sdeGradient(p, sde, steps, nil, p.start())
			require.NoError(t, err)
			dw, err := sdeIncrements(p, steps)
			require.NoError(t, err)
			dir := t.TempDir()
			arr, err := tensor.FromF64(dw, steps, p.paths, p.d)
			require.NoError(t, err)
			require.NoError(t, tensor.WriteNpy(filepath.Join(dir, "dw.npy"), arr))
			out, err := exec.Command(py, "-B", filepath.Join("peers", "sde_numpy.py"), "--check-dir", dir, "--family", p.name).CombinedOutput()
			require.NoError(t, err, "%s", out)
			worst := 0.0
			for _, o := range []struct {
				name string
				want []float64
			}{{"loss", []float64{loss}}, {"grad_params", g.Params}, {"grad_x0", g.X0}} {
				got, err := tensor.ReadNpy(filepath.Join(dir, o.name+".npy"))
				require.NoError(t, err)
				gv, err := got.Float64s()
				require.NoError(t, err)
				require.Len(t, gv, len(o.want), o.name)
				for i, w := range o.want {
					e := math.Abs(gv[i]-w) / (1 + math.Abs(w))
					worst = math.Max(worst, e)
					require.LessOrEqual(t, e, tol, "%s[%d]: peer %.17g, go %.17g", o.name, i, gv[i], w)
				}
			}
			t.Logf("max |peer − go|/(1 + |go|) = %.2e (loss %.6g, dL/dθ %.6g)", worst, loss, g.Params)
		})
	}
}
