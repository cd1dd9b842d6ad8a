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

// FPGD (each noise method) and SGDWOR spread over three CPU backends are the one-backend runs.
func TestDescentOnGathersTheSingleRun(t *testing.T) {
	w, err := NewDoubleWell(2, 0.5)
	require.NoError(t, err)
	const n = 8
	x0v := make([]float64, 0, 2*n)
	for i := 0; i < n; i++ {
		x0v = append(x0v, -1, 0.1*float64(i))
	}
	x0, err := tensor.FromFloat64s(tensor.F32, x0v, n, 2)
	require.NoError(t, err)
	backends := []ops.Backend{ops.CPU(), ops.CPUWorkers(1), ops.CPU()}
	same := func(t *testing.T, want, got *DescentResult) {
		t.Helper()
		for _, p := range [][2]*tensor.Tensor{{want.Final, got.Final}, {want.Trace, got.Trace}} {
			wv, err := p[0].Float64s()
			require.NoError(t, err)
			gv, err := p[1].Float64s()
			require.NoError(t, err)
			require.Equal(t, p[0].Shape(), p[1].Shape())
			require.Equal(t, wv, gv)
		}
		assert.Equal(t, want.Escape, got.Escape)
		assert.Equal(t, want.TraceSteps, got.TraceSteps)
		assert.Equal(t, want.GradEvals, got.GradEvals)
		assert.Equal(t, want.NaN, got.NaN)
	}
	for _, method := range []string{FGNDaviesHarte, FGNCholesky, FGNMAFBM} {
		t.Run(method, func(t *testing.T) {
			cfg := FPGDConfig{Method: method, Hurst: 0.7, StepSize: 0.05, Sigma: 1.5, Steps: 60, Seed: 3, FirstChain: 11, Thin: 7,
				Escape: &EscapeSpec{Threshold: 0.5}}
			want, err := FPGD(ops.CPU(), w, x0, cfg)
			require.NoError(t, err)
			defer want.Close()
			var reports []int64
			cfg.Progress = func(done, total int64) { reports = append(reports, done, total) }
			got, err := FPGDOn(backends, w, x0, cfg)
			require.NoError(t, err)
			defer got.Close()
			same(t, &want.DescentResult, &got.DescentResult)
			assert.Equal(t, want.NoiseRelErrorSq, got.NoiseRelErrorSq)
			require.NotEmpty(t, reports)
			assert.Equal(t, []int64{n * 60, n * 60}, reports[len(reports)-2:], "the last report is every chain-step")
			frac, _, _ := got.EscapeStats()
			assert.Greater(t, frac, 0.0, "escapes happen, so the escape steps are compared")
		})
	}
	cfg := SGDWORConfig{Beta: 0.5, StepSize: 0.05, Sigma: 1, Steps: 40, Epoch: 0.5, Seed: 2, FirstChain: 1, Thin: 4}
	want, err := SGDWOR(ops.CPU(), w, x0, cfg)
	require.NoError(t, err)
	defer want.Close()
	got, err := SGDWOROn(backends, w, x0, cfg)
	require.NoError(t, err)
	defer got.Close()
	same(t, &want.DescentResult, &got.DescentResult)
	_, err = SGDWOROn(nil, w, x0, cfg)
	assert.ErrorContains(t, err, "no backend")
}

// A bridge simulation spread over three CPU backends, forward and backward, is the one-backend run.
func TestBridgeSimulateOnGathersTheSingleRun(t *testing.T) {
	cfg := ops.MLPConfig{Dim: 2, Width: 16, Depth: 2, BlockLayers: 1, Fourier: 4, SigmaData: 1, BranchMult: 1, OutMult: 1}
	var fwd, bwd []*ops.MLP
	for k := 0; k < 2; k++ {
		f, err := ops.RandomMLP(cfg, uint64(1+k))
		require.NoError(t, err)
		g, err := ops.RandomMLP(cfg, uint64(11+k))
		require.NoError(t, err)
		fwd, bwd = append(fwd, f), append(bwd, g)
	}
	br, err := NewBridge([]float64{0, 1, 2.5}, 0.4, fwd, bwd)
	require.NoError(t, err)
	const n = 7
	x0, err := tensor.FromFloat64s(tensor.F64, []float64{0, 1, 2, 3, -1, 0.5, 1, 1, 2, -2, 0, 0, 3, 1}, n, 2)
	require.NoError(t, err)
	for _, sim := range []BridgeSimConfig{{From: 0, To: 2.5, Steps: 6, Seed: 3, FirstChain: 4, Trajectory: true},
		{From: 2.5, To: 0.7, Steps: 5, Seed: 8}} {
		want, err := br.Simulate(ops.CPU(), x0, sim)
		require.NoError(t, err)
		got, err := br.SimulateOn([]ops.Backend{ops.CPU(), ops.CPUWorkers(1), ops.CPU()}, x0, sim)
		require.NoError(t, err)
		requireSameRun(t, &MethodRun{Result: want}, &MethodRun{Result: got})
		assert.Equal(t, want.BridgeTimes, got.BridgeTimes)
		want.Close()
		got.Close()
	}
}

// concatAxis joins along axis 1 of (2, n_i, 3) parts in their dtype, and refuses parts of another
// dtype.
func TestConcatAxis(t *testing.T) {
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		var parts []*tensor.Tensor
		var want []float64
		rows := []int{1, 3, 2}
		for i, n := range rows {
			v := make([]float64, 2*n*3)
			for j := range v {
				v[j] = float64(100*i + j)
			}
			p, err := tensor.FromFloat64s(dt, v, 2, n, 3)
			require.NoError(t, err)
			parts = append(parts, p)
		}
		for o := 0; o < 2; o++ {
			for i, n := range rows {
				for j := 0; j < n*3; j++ {
					want = append(want, float64(100*i+o*n*3+j))
				}
			}
		}
		got, err := concatAxis(parts, 1)
		require.NoError(t, err)
		assert.Equal(t, []int{2, 6, 3}, got.Shape())
		assert.Equal(t, dt, got.DType())
		gv, err := got.Float64s()
		require.NoError(t, err)
		assert.Equal(t, want, gv)
	}
	a, _ := tensor.New(nil, tensor.F32, 2, 2)
	b, _ := tensor.New(nil, tensor.F64, 2, 2)
	_, err := concatAxis([]*tensor.Tensor{a, b}, 0)
	assert.ErrorContains(t, err, "dtype")
}
