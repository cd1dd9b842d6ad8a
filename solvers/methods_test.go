package solvers

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// The registry is complete and consistent: unique names, a family and help for each, options from
// the known set, every diffusion method of Diffusion, every flow of RFConfigFor.
func TestRegistry(t *testing.T) {
	seen := map[string]bool{}
	known := map[string]bool{}
	for _, o := range optionOrder {
		known[o] = true
	}
	for _, m := range Methods() {
		assert.False(t, seen[m.Name], "%s listed twice", m.Name)
		seen[m.Name] = true
		assert.Contains(t, []string{FamilyLangevin, FamilyRTK, FamilyDiffusion, FamilyFlow, FamilyConstrained, FamilyFractional}, m.Family, m.Name)
		assert.NotEmpty(t, m.Help, m.Name)
		for _, line := range strings.Split(m.Help, "\n") {
			assert.LessOrEqual(t, len([]rune(line)), 92, "%s: help line %q", m.Name, line)
		}
		for _, o := range m.Options {
			assert.True(t, known[o], "%s: option %q", m.Name, o)
		}
		got, err := LookupMethod(m.Name)
		require.NoError(t, err)
		assert.Equal(t, m.Name, got.Name)
	}
	for _, m := range DiffusionMethods() {
		if m != MethodDDPM { // the registry's "ddpm" is the OU integrator; ancestral DDPM is ddim η = 1
			assert.True(t, seen[m], "diffusion method %s", m)
		}
	}
	for _, m := range []string{MethodRF, MethodRFLowDim, MethodRFStochastic, MethodULA, MethodMALA, MethodULD,
		"rtk-mala", "rtk-uld", "ddpm", "metropolis-constrained", MethodGFDM, MethodGFDMODE, MethodLIM} {
		assert.True(t, seen[m], m)
	}
	assert.Empty(t, PlannedMethods(), "every method of the command's contract runs")
	_, err := LookupMethod("nope")
	assert.ErrorContains(t, err, `unknown method "nope" (available: ula, mala`)
}

// Every method spends at most its budget, exactly as documented (the count Result.Evals makes),
// takes the steps Method.Steps says, and refuses options it does not take.
func TestRegistryBudgets(t *testing.T) {
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1, 2}, Means: [][]float64{{-2, 0}, {2, 1}}, Vars: []float64{0.5, 1}})
	box, err := ops.NewBox([]float64{-3, -3}, []float64{3, 3})
	require.NoError(t, err)
	const n = 4
	for _, m := range Methods() {
		for _, K := range []int{1, 2, 7, 16, 33} {
			o := MethodOptions{Budget: K, Seed: 9}
			if m.Takes("constraint") {
				o.Domain = box
			}
			steps, err := m.Steps(o)
			if err != nil {
				assert.Contains(t, err.Error(), "too small", "%s K=%d", m.Name, K)
				_, rerr := m.Run(ops.CPU(), tg, n, tensor.F64, o)
				assert.Error(t, rerr)
				continue
			}
			run, err := m.Run(ops.CPU(), tg, n, tensor.F64, o)
			require.NoError(t, err, "%s K=%d", m.Name, K)
			evals := int(run.ScoreEvals / n)
			want := K
			switch {
			case m.Name == MethodMALA:
				want = K + 1 // the fused evaluation of the start
			case m.Name == MethodHeun || m.Name == MethodDPM2 || m.Name == MethodEDMSDE || m.Name == MethodGFDMODE:
				want = 2*steps - 1
			case m.Family == FamilyRTK:
				over := rtkOverhead(strings.TrimPrefix(m.Name, "rtk-"))
				want = steps * (K/steps - over + over)
			}
			assert.Equal(t, want, evals, "%s K=%d", m.Name, K)
			assert.Equal(t, steps, run.Steps, "%s K=%d", m.Name, K)
			run.Close()
		}
		// An option the method does not take is refused, naming it.
		o := MethodOptions{Budget: 20, Eta: 0.5}
		if m.Takes("eta") {
			o = MethodOptions{Budget: 20, Churn: 3}
		}
		_, err := m.Run(ops.CPU(), tg, n, tensor.F64, o)
		require.Error(t, err, m.Name)
		assert.Contains(t, err.Error(), "does not take the option", m.Name)
	}
}

// The defaults the registry documents: ULA's step 0.05·λ_min, ULD's 0.25·√λ_min with friction
// 2/√λ_min, MALA's per-chain adaptation from 0.5·λ_min·d^(−1/3).
func TestRegistryDefaults(t *testing.T) {
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{0, 0, 0}}, Diag: [][]float64{{0.5, 2, 1}}})
	lmin := LambdaMin(tg.Mixture)
	assert.Equal(t, 0.5, lmin)
	get := func(name string) *MethodRun {
		m, err := LookupMethod(name)
		require.NoError(t, err)
		run, err := m.Run(ops.CPU(), tg, 50, tensor.F64, MethodOptions{Budget: 40, Seed: 1})
		require.NoError(t, err)
		t.Cleanup(func() { run.Close() })
		return run
	}
	assert.InDelta(t, DefaultULAStepFactor*lmin, get(MethodULA).StepSize, 1e-15)
	assert.InDelta(t, DefaultULDStepFactor*math.Sqrt(lmin), get(MethodULD).StepSize, 1e-15)
	mala := get(MethodMALA)
	assert.Len(t, mala.StepSizes, 50, "mala adapts per chain by default")
	// An empirical target is refused by the methods that need a density, and runs with the others.
	data, _ := tensor.FromF64([]float64{0, 0, 0, 1, 1, 1}, 2, 3)
	e, err := ops.NewEmpirical(data)
	require.NoError(t, err)
	m, _ := LookupMethod(MethodMALA)
	_, err = m.Run(ops.CPU(), target.Empirical{DataSet: e}, 3, tensor.F64, MethodOptions{Budget: 5})
	assert.ErrorContains(t, err, "needs a target with a density at t = 0")
	m, _ = LookupMethod(MethodHeun)
	run, err := m.Run(ops.CPU(), target.Empirical{DataSet: e}, 3, tensor.F64, MethodOptions{Budget: 5})
	require.NoError(t, err)
	run.Close()
}

// Every method is a pure function of (seed, chain): N chains run at once equal the same chains run
// as two batches, the second with FirstChain — the rows, the trajectory and, where it is a sum
// over chains, its parts. (Sharded runs of the command rely on this.)
func TestRegistrySplitsByFirstChain(t *testing.T) {
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1, 2}, Means: [][]float64{{-2, 0}, {2, 1}}, Vars: []float64{0.5, 1}})
	box, err := ops.NewBox([]float64{-3, -3}, []float64{3, 3})
	require.NoError(t, err)
	const n, a = 7, 3
	for _, m := range Methods() {
		t.Run(m.Name, func(t *testing.T) {
			o := MethodOptions{Budget: 16, Seed: 9, Trajectory: true}
			if m.Takes("constraint") {
				o.Domain = box
			}
			run := func(rows int, first uint64) ([]float64, []float64) {
				o := o
				o.FirstChain = first
				r, err := m.Run(ops.CPU(), tg, rows, tensor.F64, o)
				require.NoError(t, err)
				defer r.Close()
				x, err := r.Samples.Float64s()
				require.NoError(t, err)
				tr, err := r.Trace.Float64s()
				require.NoError(t, err)
				return x, tr
			}
			whole, wholeTr := run(n, 0)
			x1, tr1 := run(a, 0)
			x2, tr2 := run(n-a, a)
			assert.Equal(t, whole, append(x1, x2...), "samples")
			rows := len(wholeTr) / (n * 2)
			for r := 0; r < rows; r++ {
				got := append(append([]float64{}, tr1[r*a*2:(r+1)*a*2]...), tr2[r*(n-a)*2:(r+1)*(n-a)*2]...)
				require.Equal(t, wholeTr[r*n*2:(r+1)*n*2], got, "trajectory row %d", r)
			}
		})
	}
}
