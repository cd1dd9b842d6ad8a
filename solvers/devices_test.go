package solvers

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

func TestSplitRangeTiles(t *testing.T) {
	for _, n := range []int{1, 2, 5, 7, 100, 1 << 32} {
		for _, parts := range []int{1, 2, 3, 4, 7} {
			prev := 0
			for k := 0; k < parts; k++ {
				lo, hi := SplitRange(n, parts, k)
				require.Equal(t, prev, lo)
				require.LessOrEqual(t, lo, hi)
				require.LessOrEqual(t, hi-lo, n/parts+1)
				require.GreaterOrEqual(t, hi-lo, n/parts)
				prev = hi
			}
			require.Equal(t, n, prev)
		}
	}
}

// requireSameRun checks that a gathered run equals the single run: every tensor and per-chain
// value bit for bit, the counts, the NaN report.
func requireSameRun(t *testing.T, want, got *MethodRun) {
	t.Helper()
	for _, p := range []struct {
		name string
		w, g *tensor.Tensor
	}{{"samples", want.Samples, got.Samples}, {"trace", want.Trace, got.Trace}, {"denoised", want.Denoised, got.Denoised},
		{"augmented trace", want.AugmentedTrace, got.AugmentedTrace}} {
		if p.w == nil {
			require.Nil(t, p.g, p.name)
			continue
		}
		require.NotNil(t, p.g, p.name)
		require.Equal(t, p.w.Shape(), p.g.Shape(), p.name)
		require.Equal(t, p.w.DType(), p.g.DType(), p.name)
		wv, err := p.w.Float64s()
		require.NoError(t, err)
		gv, err := p.g.Float64s()
		require.NoError(t, err)
		require.Equal(t, wv, gv, p.name)
	}
	assert.Equal(t, want.Accept, got.Accept, "acceptance")
	assert.Equal(t, want.StepSizes, got.StepSizes, "step sizes")
	assert.Equal(t, want.StepSize, got.StepSize, "step size")
	assert.Equal(t, want.ScoreEvals, got.ScoreEvals, "score evaluations")
	assert.Equal(t, want.LogPEvals, got.LogPEvals, "log p evaluations")
	assert.Equal(t, want.Clamped, got.Clamped, "clamped")
	assert.Equal(t, want.Steps, got.Steps, "steps")
	assert.Equal(t, want.TraceSteps, got.TraceSteps, "trace steps")
	assert.Equal(t, want.Sigmas, got.Sigmas, "sigmas")
	assert.Equal(t, want.NaN, got.NaN, "NaN report")
	if want.RejectionRate != nil {
		require.NotNil(t, got.RejectionRate)
		assert.InDelta(t, *want.RejectionRate, *got.RejectionRate, 1e-15, "rejection rate")
	}
}

// Every method spread over three CPU backends (7 chains: 2 + 2 + 3, from FirstChain 5) is the
// single run, and the progress reported is the least of the parts', increasing to the total.
func TestRunOnGathersTheSingleRun(t *testing.T) {
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1, 2}, Means: [][]float64{{-2, 0}, {2, 1}}, Vars: []float64{0.5, 1}})
	box, err := ops.NewBox([]float64{-3, -3}, []float64{3, 3})
	require.NoError(t, err)
	const n = 7
	backends := []ops.Backend{ops.CPU(), ops.CPUWorkers(1), ops.CPU()}
	for _, m := range Methods() {
		t.Run(m.Name, func(t *testing.T) {
			o := MethodOptions{Budget: 16, Seed: 9, FirstChain: 5, Trajectory: true, AugmentedTrajectory: m.Takes("hurst")}
			if m.Takes("constraint") {
				o.Domain = box
			}
			want, err := m.Run(ops.CPU(), tg, n, tensor.F32, o)
			require.NoError(t, err)
			defer want.Close()
			var mu sync.Mutex
			var reports [][2]int64
			o.Progress = func(done, total int64) {
				mu.Lock()
				reports = append(reports, [2]int64{done, total})
				mu.Unlock()
			}
			got, err := m.RunOn(backends, tg, n, tensor.F32, o)
			require.NoError(t, err)
			defer got.Close()
			requireSameRun(t, want, got)
			require.NotEmpty(t, reports)
			for i := 1; i < len(reports); i++ {
				assert.Greater(t, reports[i][0], reports[i-1][0], "progress increases")
			}
			last := reports[len(reports)-1]
			assert.Equal(t, last[1], last[0], "the last report is the total")
		})
	}
}

// More backends than chains: the extra backends get no chains. Bad input fails in every part,
// naming the chains, and no backend at all is an error.
func TestRunOnEdges(t *testing.T) {
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1}, Means: [][]float64{{0, 0}}, Vars: []float64{1}})
	m, err := LookupMethod(MethodHeun)
	require.NoError(t, err)
	o := MethodOptions{Budget: 5, Seed: 1}
	want, err := m.Run(ops.CPU(), tg, 2, tensor.F64, o)
	require.NoError(t, err)
	defer want.Close()
	got, err := m.RunOn([]ops.Backend{ops.CPU(), ops.CPU(), ops.CPU(), ops.CPU()}, tg, 2, tensor.F64, o)
	require.NoError(t, err)
	defer got.Close()
	requireSameRun(t, want, got)
	assert.Equal(t, 2*want.ScoreCalls, got.ScoreCalls, "two parts make twice the calls")

	_, err = m.RunOn(nil, tg, 2, tensor.F64, o)
	assert.ErrorContains(t, err, "no backend")
	o.Eta = 0.5 // heun does not take it
	_, err = m.RunOn([]ops.Backend{ops.CPU(), ops.CPU()}, tg, 4, tensor.F64, o)
	assert.ErrorContains(t, err, "heun on cpu (chains 2…3)")
	_, err = m.RunOn([]ops.Backend{ops.CPU()}, tg, 2, tensor.F64, MethodOptions{Budget: 5, FirstChain: ops.MaxChains - 1})
	assert.ErrorContains(t, err, "2^32")
}

// A NaN chain in the second part is reported at its row in the whole run.
func TestGatherRunsNaNReport(t *testing.T) {
	mk := func(rows int, nan NaNReport) *MethodRun {
		x, err := tensor.New(nil, tensor.F64, rows, 1)
		require.NoError(t, err)
		return &MethodRun{Result: &Result{Samples: x, NaN: nan}, Steps: 3}
	}
	runs := []*MethodRun{mk(3, NaNReport{First: -1, Step: -1}), mk(4, NaNReport{Chains: 2, First: 1, Step: 5, Rows: []int{1, 3}}),
		mk(2, NaNReport{Chains: 1, First: 0, Step: 2, Rows: []int{0}})}
	got, err := gatherRuns(runs, 9)
	require.NoError(t, err)
	defer got.Close()
	assert.Equal(t, NaNReport{Chains: 3, First: 4, Step: 2, Rows: []int{4, 6, 7}}, got.NaN)
}
