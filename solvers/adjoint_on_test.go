package solvers

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// affineFamilies are the adjoint families AdjointOn runs through the affine ops (OU and GBM).
func affineFamilies(t testing.TB) []adjointFamily {
	var out []adjointFamily
	for _, f := range adjointFamilies(t) {
		if _, ok := f.sde.(AffineParametric); ok {
			out = append(out, f)
		}
	}
	require.Len(t, out, 2)
	return out
}

// fusedFamilies are the adjoint families AdjointOn runs fused: OU and GBM, and the Langevin SDE of
// a Gaussian mixture (ops.Backend.LangevinMixtureHeunAdjoint).
func fusedFamilies(t testing.TB) []adjointFamily {
	out := affineFamilies(t)
	for _, f := range adjointFamilies(t) {
		if _, ok := f.sde.(*GMMLangevinFamily); ok {
			out = append(out, f)
		}
	}
	require.Len(t, out, 3)
	return out
}

// The fused backward pass (per chunk one ReversibleHeunAdjoint, the coefficients' cotangents mapped
// to θ on the host, or one LangevinMixtureHeunAdjoint, the chains' parameter cotangents summed on
// the host) against Adjoint, over two whole chunks and a partial third, for both losses and a
// loss that also sees z_N: in float64 the two order the same sums differently (fma against
// separate roundings), so they agree to round-off carried through the steps, bounded by
// 1e-12·(1 + max |Adjoint|) (measured: logged, about 1e-15); the reconstructed start likewise.
// In float32 the state is rounded to float32 between chunks (three times here), which moves the
// gradient by about 1e-7 relative: bounded by 1e-5·(1 + max |Adjoint|).
func TestAdjointOnMatchesAdjoint(t *testing.T) {
	const n, steps = 8, 2*RevHeunChunk + 37
	for _, fam := range fusedFamilies(t) {
		for _, loss := range adjointLosses {
			t.Run(fam.name+"/"+loss.name, func(t *testing.T) {
				d := fam.sde.Dim()
				x0 := startValues(n, d)
				r := ReversibleHeun{SDE: fam.sde, Horizon: 1, Steps: steps, Seed: 23, FirstChain: 4}
				st, err := r.Solve(x0, n)
				require.NoError(t, err)
				_, cot, err := loss.f(st.Y, n, d)
				require.NoError(t, err)
				cotZ := make([]float64, len(cot))
				for i := range cotZ {
					cotZ[i] = 0.1 * cot[len(cot)-1-i]
				}
				ref, err := r.Adjoint(st, cot, cotZ)
				require.NoError(t, err)
				scale := 1 + maxAbsOf(ref.Params, ref.X0)
				for _, c := range []struct {
					dt  tensor.DType
					tol float64
				}{{tensor.F64, 1e-12}, {tensor.F32, 1e-5}} {
					got, err := r.AdjointOn(ops.CPU(), c.dt, st, cot, cotZ)
					require.NoError(t, err)
					dp, dx := maxDiff(got.Params, ref.Params), maxDiff(got.X0, ref.X0)
					t.Logf("%v: max |AdjointOn − Adjoint|: θ %.2e, x0 %.2e (scale %.3g)", c.dt, dp, dx, scale)
					assert.LessOrEqual(t, dp, c.tol*scale, "%v: θ", c.dt)
					assert.LessOrEqual(t, dx, c.tol*scale, "%v: x0", c.dt)
					assert.LessOrEqual(t, maxDiff(got.Start.Y, ref.Start.Y), c.tol*(1+maxAbsOf(x0)), "%v: start", c.dt)
					assert.Len(t, got.Params, len(fam.sde.Params()))
				}
			})
		}
	}
}

// peakHeap runs f and returns the largest live heap seen while it ran: runtime/metrics' bytes in
// heap objects, sampled every 20 µs, with the collector at GOGC = gcPercent (5: garbage does not
// pile up between collections, the heap goal being 5 % above the live heap).
func peakHeap(f func(), gcPercent int) uint64 {
	old := debug.SetGCPercent(gcPercent)
	defer debug.SetGCPercent(old)
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Microsecond):
			}
		}
	}()
	f()
	close(stop)
	<-done
	return peak.Load()
}

// The fused backward pass's memory does not grow with the steps: it holds N·d·min(steps,
// RevHeunChunk) increments and the O(N·d) state and cotangents, allocated once. (The CPU's
// BrownianIncrements allocates per call — each path's interval and its node cache — which is
// garbage after the call, so the bytes allocated grow with the chunks while the memory held does
// not.) Measured as the peak live heap during one gradient of 32 chains in 2-D: at 10⁴ steps at
// most 1.5 times that at 10³ (already a whole chunk) plus 1 MiB (holding the 10⁴ steps'
// increments would add 5 MB); backprop through stored states holds 2·N·d·8 bytes per step, 10 MB
// at 10⁴ steps, and is measured beside it as the contrast the probe must see.
func TestAdjointOnMemoryDoesNotGrowWithSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("10⁴-step gradients")
	}
	if asanBuild {
		t.Skip("allocation counts grow with the steps under -asan for every path; checked without it")
	}
	const n = 32
	for _, fam := range fusedFamilies(t) {
		t.Run(fam.name, func(t *testing.T) {
			d := fam.sde.Dim()
			x0 := startValues(n, d)
			measure := func(steps int) (fused, stored uint64) {
				r := ReversibleHeun{SDE: fam.sde, Horizon: 1, Steps: steps, Depth: 30, Seed: 9}
				st, err := r.SolveOn(ops.CPU(), tensor.F64, x0, n)
				require.NoError(t, err)
				_, cot, err := TerminalVarianceLoss(st.Y, n, d)
				require.NoError(t, err)
				var ferr, serr error
				fused = peakHeap(func() { _, ferr = r.AdjointOn(ops.CPU(), tensor.F64, st, cot, nil) }, 5)
				require.NoError(t, ferr)
				if steps == 10000 {
					stored = peakHeap(func() { _, serr = storedBackprop(r, x0, n, cot, nil) }, 100) // it holds them, whatever the collector does
					require.NoError(t, serr)
				}
				return fused, stored
			}
			f3, _ := measure(1000)
			f4, s4 := measure(10000)
			t.Logf("peak live heap: AdjointOn %d B (10³ steps), %d B (10⁴); stored states %d B (10⁴)", f3, f4, s4)
			assert.LessOrEqual(t, f4, f3+f3/2+1<<20, "the fused adjoint's memory grows with the steps")
			assert.GreaterOrEqual(t, s4, uint64(2*n*d*8*10000), "the probe should see the stored states")
		})
	}
}

// AdjointOn refuses what it cannot run: a family that is not affine, an unknown dtype; bad states
// and cotangents are Adjoint's refusals.
func TestAdjointOnRejects(t *testing.T) {
	fams := adjointFamilies(t)
	mlp := fams[3].sde
	require.Equal(t, "mlp-drift", fams[3].name)
	x0 := startValues(3, 2)
	r := ReversibleHeun{SDE: mlp, Horizon: 1, Steps: 4, Seed: 1}
	st, err := r.Solve(x0, 3)
	require.NoError(t, err)
	cot := make([]float64, 6)
	_, err = r.AdjointOn(ops.CPU(), tensor.F64, st, cot, nil)
	assert.ErrorContains(t, err, "needs an affine family (OUFamily, GBMFamily) or a GMMLangevinFamily")
	ou := affineFamilies(t)[0].sde
	r.SDE = ou
	st, err = r.Solve(x0, 3)
	require.NoError(t, err)
	_, err = r.AdjointOn(ops.CPU(), tensor.DType(99), st, cot, nil)
	assert.ErrorContains(t, err, "want f32 or f64")
	_, err = r.AdjointOn(ops.CPU(), tensor.F64, st, cot[:5], nil)
	assert.ErrorContains(t, err, "cotangent of y has 5 values")
	var nan []float64
	nan = append(nan, cot...)
	nan[2] = nan[2] / 0 * 0
	_, err = r.AdjointOn(ops.CPU(), tensor.F64, st, nan, nil)
	assert.Error(t, err)
}

// The fused path of the Langevin SDE of a mixture (LangevinMixtureHeun per chunk) on the CPU
// reference is the step-by-step solver, bit for bit in float64: the op repeats Solve's arithmetic
// (the drift s(z_k) it caches from the previous step is the value Solve recomputes), over two
// chunks and a partial third, forward and reconstructed. In float32 the state is rounded between
// chunks; the final state stays within 1e-5·(1 + |y|) of float64's.
func TestGMMLangevinSolveOnEqualsSolve(t *testing.T) {
	fam := fusedFamilies(t)[2].sde.(*GMMLangevinFamily)
	const n, steps = 9, 2*RevHeunChunk + 37
	d := fam.Dim()
	x0 := startValues(n, d)
	r := ReversibleHeun{SDE: fam, Horizon: 1.5, Steps: steps, Seed: 31, FirstChain: 5}
	fin, err := r.Solve(x0, n)
	require.NoError(t, err)
	got, err := r.SolveOn(ops.CPU(), tensor.F64, x0, n)
	require.NoError(t, err)
	requireSameBits(t, fin.Y, got.Y, "y")
	requireSameBits(t, fin.Z, got.Z, "z")
	back, err := r.Reconstruct(fin)
	require.NoError(t, err)
	gb, err := r.ReconstructOn(ops.CPU(), tensor.F64, got)
	require.NoError(t, err)
	requireSameBits(t, back.Y, gb.Y, "reconstructed y")
	assert.LessOrEqual(t, maxDiff(gb.Y, x0), 1e-12*(1+maxAbsOf(x0)), "reconstruction of x0")
	got32, err := r.SolveOn(ops.CPU(), tensor.F32, x0, n)
	require.NoError(t, err)
	assert.LessOrEqual(t, maxDiff(got32.Y, fin.Y), 1e-5*(1+maxAbsOf(fin.Y)), "float32 y")
}
