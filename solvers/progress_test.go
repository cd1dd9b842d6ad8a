package solvers

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// reports records a run's Progress calls.
type reports struct{ done, total []int64 }

func (r *reports) fn() Progress {
	return func(done, total int64) {
		r.done = append(r.done, done)
		r.total = append(r.total, total)
	}
}

// check asserts the documented contract: a constant total, done strictly increasing from ≥ 1 and
// ending at the total.
func (r *reports) check(t *testing.T, total int64, msg string) {
	t.Helper()
	require.NotEmpty(t, r.done, msg)
	for i, d := range r.done {
		assert.Equal(t, total, r.total[i], "%s: call %d", msg, i)
		if i > 0 {
			assert.Greater(t, d, r.done[i-1], "%s: call %d", msg, i)
		}
	}
	assert.GreaterOrEqual(t, r.done[0], int64(1), msg)
	assert.Equal(t, total, r.done[len(r.done)-1], msg)
}

// everyReport makes each step report (no rate limit) for the test's duration.
func everyReport(t *testing.T) {
	old := progressSync
	progressSync = 0
	t.Cleanup(func() { progressSync = old })
}

// Every registry method reports each of its steps (RTK: its inner steps), in order, ending at the
// total, and the samples with a Progress are bit-identical to those without (the fused Langevin
// and RTK inner chains are split into per-step calls when reporting).
func TestProgressEveryMethod(t *testing.T) {
	everyReport(t)
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1, 2}, Means: [][]float64{{-2, 0}, {2, 1}}, Vars: []float64{0.5, 1}})
	box, err := ops.NewBox([]float64{-3, -3}, []float64{3, 3})
	require.NoError(t, err)
	const n, budget = 6, 24
	for _, m := range Methods() {
		o := MethodOptions{Budget: budget, Seed: 4}
		if m.Takes("constraint") {
			o.Domain = box
		}
		plain, err := m.Run(ops.CPU(), tg, n, tensor.F64, o)
		require.NoError(t, err, m.Name)
		var r reports
		o.Progress = r.fn()
		got, err := m.Run(ops.CPU(), tg, n, tensor.F64, o)
		require.NoError(t, err, m.Name)

		total := int64(got.Steps)
		if m.Family == FamilyRTK {
			inner, err := rtkInnerSteps(m.Name, strings.TrimPrefix(m.Name, "rtk-"), budget, got.Steps)
			require.NoError(t, err)
			total *= int64(inner)
		}
		r.check(t, total, m.Name)
		assert.Len(t, r.done, int(total), "%s: one report per step", m.Name)
		assert.Equal(t, hostRows(t, plain.Samples), hostRows(t, got.Samples), "%s: samples with and without Progress", m.Name)
		assert.Equal(t, plain.Evals, got.Evals, m.Name)
		plain.Close()
		got.Close()
	}
}

// A fused Langevin run longer than progressChunks steps reports in chunks of ⌈K/100⌉ steps and
// draws the numbers of the single fused call; the rate limit keeps only the last report of a
// quick run.
func TestProgressFusedChunks(t *testing.T) {
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1, 2}, Means: [][]float64{{-2, 0}, {2, 1}}, Vars: []float64{0.5, 1}})
	for _, method := range []string{MethodULA, MethodMALA, MethodULD} {
		cfg := LangevinConfig{Method: method, Steps: 250, StepSize: 0.05, Friction: 1, Seed: 3}
		x0 := constRows(t, tensor.F64, 5, []float64{0.5, -0.5})
		plain, err := Langevin(ops.CPU(), tg, x0, cfg)
		require.NoError(t, err)
		defer plain.Close()

		func() {
			everyReport(t)
			defer func() { progressSync = 100e6 }()
			var r reports
			cfg.Progress = r.fn()
			got, err := Langevin(ops.CPU(), tg, x0, cfg)
			require.NoError(t, err)
			defer got.Close()
			r.check(t, 250, method)
			assert.Len(t, r.done, 84, "%s: ⌈250/3⌉ chunks of 3 steps", method)
			assert.Equal(t, int64(3), r.done[0], method)
			assert.Equal(t, hostRows(t, plain.Samples), hostRows(t, got.Samples), "%s: chunked vs one fused call", method)
			assert.Equal(t, plain.Evals, got.Evals, method)
		}()

		var r reports
		cfg.Progress = r.fn()
		got, err := Langevin(ops.CPU(), tg, x0, cfg)
		require.NoError(t, err)
		got.Close()
		assert.Equal(t, []int64{250}, r.done, "%s: a run shorter than the rate limit reports once, at the end", method)
	}
}

// FPGD counts chain-steps; its last report is N·Steps and the states do not depend on it.
func TestProgressFPGD(t *testing.T) {
	everyReport(t)
	f := mustQuadratic(t, []float64{1, 4}, []float64{0, 0})
	x0 := constRows(t, tensor.F64, 40, []float64{1, -1})
	cfg := FPGDConfig{Method: "davies-harte", Hurst: 0.7, Steps: 30, StepSize: 0.05, Sigma: 0.3, Seed: 2}
	plain := runFPGD(t, f, x0, cfg)
	var r reports
	cfg.Progress = r.fn()
	got := runFPGD(t, f, x0, cfg)
	r.check(t, 40*30, "fpgd")
	assert.Equal(t, hostRows(t, plain.Final), hostRows(t, got.Final))
}
