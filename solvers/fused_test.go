package solvers

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// countingBackend counts the fused calls it serves.
type countingBackend struct {
	ops.Backend
	fused *int
}

func (b countingBackend) GMMChains(c ops.GMMChains) error {
	*b.fused++
	return b.Backend.GMMChains(c)
}

// The fused path (one GMMChains call per stretch of steps) draws the same numbers as the
// step-by-step path: same samples, traces, acceptance and evaluation counts, bit for bit on the
// CPU, for every method, with adaptation, per-chain step sizes, traces and RTK segments.
func TestFusedPathEqualsStepByStep(t *testing.T) {
	mix := gmmTarget(t, ops.GMMSpec{
		Weights: []float64{0.3, 0.7}, Means: [][]float64{{-2, 0, 1}, {2, 1, 0}},
		Diag: [][]float64{{0.5, 1, 2}, {1, 0.25, 1}},
	})
	x0rows := make([][]float64, 37)
	for i := range x0rows {
		x0rows[i] = []float64{float64(i%5) - 2, float64(i%3) - 1, 0.1 * float64(i)}
	}
	langevin := []LangevinConfig{
		{Method: MethodULA, Steps: 23, StepSize: 0.05, Thin: 5},
		{Method: MethodMALA, Steps: 30, StepSize: 0.3},
		{Method: MethodMALA, Steps: 40, Adapt: true, SharedStepSize: true, WarmUp: 11, Thin: 3},
		{Method: MethodMALA, Steps: 25, Adapt: true, WarmUp: 10},
		{Method: MethodMALA, Steps: 12, StepSize: 0.2, WarmUp: 5, Noise: ops.AtTime(0.3)},
		{Method: MethodULD, Steps: 21, StepSize: 0.1, Friction: 2, Thin: 7},
	}
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		x0 := fromRows(t, dt, x0rows)
		for _, cfg := range langevin {
			cfg.Seed = 99
			var fused int
			b := countingBackend{ops.CPU(), &fused}
			got, err := Langevin(b, mix, x0, cfg)
			require.NoError(t, err)
			require.Positive(t, fused, "%s %v: the fused path was not taken", cfg.Method, dt)
			ref := cfg
			ref.StepByStep = true
			var none int
			want, err := Langevin(countingBackend{ops.CPU(), &none}, mix, x0, ref)
			require.NoError(t, err)
			require.Zero(t, none)
			requireSameResult(t, want, got)
			got.Close()
			want.Close()
		}
		for _, inner := range []string{MethodMALA, MethodULD} {
			cfg := RTKConfig{Inner: inner, InnerSteps: 7, Seed: 5, KeepPath: true}
			var fused int
			got, err := RTK(countingBackend{ops.CPU(), &fused}, mix, 29, dt, cfg)
			require.NoError(t, err)
			assert.Equal(t, DefaultSegments, fused, "rtk-%s: one fused call per segment", inner)
			cfg.StepByStep = true
			want, err := RTK(ops.CPU(), mix, 29, dt, cfg)
			require.NoError(t, err)
			requireSameResult(t, want, got)
			got.Close()
			want.Close()
		}
		x0.Close()
	}
}

// A full-covariance mixture is not fusable: the solver falls back to one op per step.
func TestFusedPathFallsBack(t *testing.T) {
	full := gmmTarget(t, ops.GMMSpec{
		Weights: []float64{1}, Means: [][]float64{{0, 0}},
		Covs: [][][]float64{{{1, 0.5}, {0.5, 1}}},
	})
	x0 := fromRows(t, tensor.F64, [][]float64{{0, 0}, {1, 1}})
	defer x0.Close()
	var fused int
	res, err := Langevin(countingBackend{ops.CPU(), &fused}, full, x0, LangevinConfig{Method: MethodMALA, Steps: 5, StepSize: 0.1})
	require.NoError(t, err)
	defer res.Close()
	assert.Equal(t, 0, fused)
	assert.Equal(t, int64(2*6), res.Evals.ScoreEvals)
}

func requireSameResult(t *testing.T, want, got *Result) {
	t.Helper()
	w, err := want.Samples.Float64s()
	require.NoError(t, err)
	g, err := got.Samples.Float64s()
	require.NoError(t, err)
	require.Equal(t, w, g, "samples")
	if want.Trace != nil {
		require.NotNil(t, got.Trace)
		w, err := want.Trace.Float64s()
		require.NoError(t, err)
		g, err := got.Trace.Float64s()
		require.NoError(t, err)
		require.Equal(t, w, g, "trace")
	}
	require.Equal(t, want.Accept, got.Accept, "acceptance")
	require.Equal(t, want.Evals, got.Evals, "evaluation counts")
	require.Equal(t, want.StepSize, got.StepSize, "step size")
	require.Equal(t, want.NaN, got.NaN, "NaN report")
}
