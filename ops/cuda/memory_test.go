//go:build cuda || cudaemu

package cuda

import (
	"math"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Device memory discipline, measured with the device's allocation counter: tables stay within
// their budget however many targets go through the backend, Release gives a target's tables back
// at once, per-call temporaries are reused, the per-level mixture table is rewritten only for a
// new level, and backends (or goroutines sharing one) do not serialise each other through
// package state.

func memDevice(t *testing.T, dt tensor.DType, shape ...int) *tensor.Tensor {
	t.Helper()
	x, err := tensor.New(gpu, dt, shape...)
	require.NoError(t, err)
	t.Cleanup(func() { x.Close() })
	return x
}

func memBackend(t *testing.T, o Options) *Backend {
	t.Helper()
	trackLaunches(t)
	b, err := NewWithOptions(gpu, o)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, b.Close()) })
	return b
}

// A sweep that builds a new MA-fBM approximation for every call (as an fPGD parameter sweep
// does) keeps device memory flat: within the table budget without Release, back to the baseline
// after every call with it.
func TestTableBudgetBoundsASweep(t *testing.T) {
	const calls, paths, steps = 1000, 33, 3
	dst := memDevice(t, tensor.F32, paths, steps)
	y := memDevice(t, tensor.F32, paths, 2)
	const budget = 16 << 10 // a transition table here is 8·(2K + K²) = 64 bytes
	for _, release := range []bool{false, true} {
		before := gpu.Allocated()
		b := memBackend(t, Options{TableBytes: budget})
		peak := int64(0)
		for i := 0; i < calls; i++ {
			m, err := ops.NewMAFBM(0.3+0.4*float64(i)/calls, 2, 20, 1)
			require.NoError(t, err)
			require.NoError(t, y.Fill(0))
			require.NoError(t, b.MAFBM(dst, y, m, 0.25, ops.Draw{Seed: uint64(i), Site: 1}, 1))
			if release {
				require.NoError(t, b.Release(m))
				used, _ := b.TableBytes()
				require.Zero(t, used, "call %d: Release leaves tables", i)
			}
			peak = max(peak, gpu.Allocated()-before)
		}
		used, _ := b.TableBytes()
		t.Logf("release=%v: %d calls, peak %d bytes held by the backend, tables %d bytes, %d evictions",
			release, calls, peak, used, b.tables.evicted)
		assert.LessOrEqual(t, peak, int64(budget)+b.ScratchBytes(), "release=%v: device memory grew past the budget", release)
		if !release {
			assert.Greater(t, b.tables.evicted, calls/2, "the budget must have evicted old transitions")
		} else {
			assert.Zero(t, b.tables.evicted, "Release freed them before the budget had to")
		}
	}
}

// A series of data sets through the empirical score stays within the budget too; Release of an
// empirical target frees its data and its mixture table.
func TestTableBudgetBoundsDataSets(t *testing.T) {
	const rows, d, points = 5, 3, 400
	x := memDevice(t, tensor.F64, rows, d)
	score := memDevice(t, tensor.F64, rows, d)
	const budget = 24 << 10 // one data set is 400·3·8 = 9600 bytes
	before := gpu.Allocated()
	b := memBackend(t, Options{TableBytes: budget})
	var peak int64
	dataSet := func(i int) *ops.Empirical {
		data := make([]float64, points*d)
		for j := range data {
			data[j] = math.Sin(float64(i*7 + j))
		}
		h, err := tensor.FromF64(data, points, d)
		require.NoError(t, err)
		e, err := ops.NewEmpirical(h)
		require.NoError(t, err)
		return e
	}
	for i := 0; i < 40; i++ {
		require.NoError(t, b.EmpiricalScore(ops.ScoreOutputs{Score: score}, x, dataSet(i), ops.AtSigma(0.5)))
		peak = max(peak, gpu.Allocated()-before)
	}
	assert.LessOrEqual(t, peak, int64(budget)+b.ScratchBytes())
	assert.Greater(t, b.tables.evicted, 30, "older data sets were evicted")

	// With room for all, Release(e) frees exactly e's data set and its mixture table.
	all := memBackend(t, Options{})
	e1, e2 := dataSet(1), dataSet(2)
	require.NoError(t, all.EmpiricalScore(ops.ScoreOutputs{Score: score}, x, e1, ops.AtSigma(0.5)))
	one, _ := all.TableBytes()
	require.NoError(t, all.EmpiricalScore(ops.ScoreOutputs{Score: score}, x, e2, ops.AtSigma(0.5)))
	require.NoError(t, all.Release(e2))
	used, _ := all.TableBytes()
	assert.Equal(t, one, used, "Release(e2) frees e2's tables and keeps e1's")
	require.NoError(t, all.Release(e1))
	used, _ = all.TableBytes()
	assert.Zero(t, used)
}

// The tables an op is using are never evicted during it, even when they alone exceed the budget.
func TestTableBudgetKeepsTheCurrentOpsTables(t *testing.T) {
	const rows, d, points = 7, 2, 3000 // 48 000 bytes of f64 data against a 1 KiB budget
	b := memBackend(t, Options{TableBytes: 1 << 10})
	data := make([]float64, points*d)
	for j := range data {
		data[j] = math.Cos(float64(j))
	}
	h, err := tensor.FromF64(data, points, d)
	require.NoError(t, err)
	e, err := ops.NewEmpirical(h)
	require.NoError(t, err)
	xv := make([]float64, rows*d)
	for j := range xv {
		xv[j] = 0.1 * float64(j)
	}
	xh, _ := tensor.FromF64(xv, rows, d)
	x, err := xh.CopyTo(gpu)
	require.NoError(t, err)
	defer x.Close()
	lp := memDevice(t, tensor.F64, rows)
	require.NoError(t, b.EmpiricalScore(ops.ScoreOutputs{LogP: lp}, x, e, ops.AtSigma(0.3)))
	ref, _ := tensor.New(nil, tensor.F64, rows)
	require.NoError(t, ops.Reference().EmpiricalScore(ops.ScoreOutputs{LogP: ref}, xh, e, ops.AtSigma(0.3)))
	got, _ := lp.Float64s()
	want, _ := ref.Float64s()
	for i := range want {
		assert.InDelta(t, want[i], got[i], 1e-12*math.Abs(want[i])+1e-12, "row %d", i)
	}
	used, budget := b.TableBytes()
	assert.Greater(t, used, budget, "the op's own data set stays while it runs")
}

// The per-level table of a mixture is written by gmm_prep once per level: a second call at the
// same level, or the fused chains at that level, reuse it; a new level rewrites it; per-row
// levels need no table.
func TestGMMLevelTableRewrittenOnlyForANewLevel(t *testing.T) {
	g, err := ops.NewGMM(ops.GMMSpec{Weights: []float64{1, 2}, Means: [][]float64{{0, 1}, {2, -1}}, Vars: []float64{0.5, 1}})
	require.NoError(t, err)
	b := memBackend(t, Options{})
	x := memDevice(t, tensor.F32, 33, 2)
	score := memDevice(t, tensor.F32, 33, 2)
	preps := func() int64 { return gpu.LaunchCounts()["gmm_prep_f32"] }
	out := ops.ScoreOutputs{Score: score}
	p0 := preps()
	require.NoError(t, b.GMMScore(out, x, g, ops.AtSigma(0.5)))
	assert.Equal(t, p0+1, preps(), "first call writes the table")
	require.NoError(t, b.GMMScore(out, x, g, ops.AtSigma(0.5)))
	assert.Equal(t, p0+1, preps(), "same level: no rewrite")
	require.NoError(t, b.GMMChains(ops.GMMChains{Method: ops.ChainULA, Mixture: g, Noise: ops.AtSigma(0.5), X: x,
		Steps: 2, H: 0.01, Seed: 3, Sites: ops.ChainSites{First: 1, Stride: 4, Step: 0, Accept: 1, ULD: 2}}))
	assert.Equal(t, p0+1, preps(), "the fused chains at that level reuse it")
	require.NoError(t, b.GMMScore(out, x, g, ops.AtSigma(0.7)))
	assert.Equal(t, p0+2, preps(), "a new level rewrites it")
	levels := memDevice(t, tensor.F32, 33)
	require.NoError(t, levels.Fill(0.4))
	require.NoError(t, b.GMMScore(out, x, g, ops.Noise{Kind: ops.VE, Levels: levels}))
	assert.Equal(t, p0+2, preps(), "per-row levels use no table")
	require.NoError(t, b.GMMScore(out, x, g, ops.AtSigma(0.7)))
	assert.Equal(t, p0+2, preps(), "the table still holds σ = 0.7")
}

// Per-call temporaries (the clamp counter, the FFT's and fGn's scratch) are allocated once and
// reused: after the first call, further calls allocate nothing (an allocation and a free per call
// would leave the byte count unchanged, so the allocations are counted).
func TestPerCallTemporariesAreReused(t *testing.T) {
	b := memBackend(t, Options{})
	dst := memDevice(t, tensor.F32, 17, 9)
	var before int64
	for i := 0; i < 20; i++ {
		_, err := b.Stable(dst, ops.StableSpec{Kind: ops.StableSymmetric, Alpha: 1.5, Clamp: 3}, ops.Draw{Seed: uint64(i)})
		require.NoError(t, err)
		if i == 0 {
			before = gpu.Allocations()
		}
	}
	assert.Equal(t, before, gpu.Allocations(), "the clamp counter is reused")

	const n = 1 << 14 // two passes in f32: a scratch buffer
	sig := memDevice(t, tensor.F32, 3, n, 2)
	for i := 0; i < 5; i++ {
		require.NoError(t, b.FFT(sig, sig, i%2 == 1))
		if i == 0 {
			before = gpu.Allocations()
		}
	}
	assert.Equal(t, before, gpu.Allocations(), "the FFT scratch is reused")

	plan, err := ops.NewFGNPlan(0.7, 1000)
	require.NoError(t, err)
	paths := memDevice(t, tensor.F32, 5, 1000)
	for i := 0; i < 5; i++ {
		require.NoError(t, b.FGN(paths, plan, ops.FGNForm{Path: i%2 == 1}, ops.Draw{Seed: uint64(i)}))
		if i == 0 {
			before = gpu.Allocations()
		}
	}
	assert.Equal(t, before, gpu.Allocations(), "the fGn and FFT scratch are reused")
}

// Two backends on one device, and two goroutines sharing one backend, run concurrently (the
// race detector checks the bookkeeping) and give the results of running alone.
func TestBackendsRunConcurrently(t *testing.T) {
	g, err := ops.NewGMM(ops.GMMSpec{Weights: []float64{1, 1}, Means: [][]float64{{0, 0, 0}, {1, 2, 3}},
		Vars: []float64{0.3, 0.6}})
	require.NoError(t, err)
	xv := make([]float64, 65*3)
	for i := range xv {
		xv[i] = math.Sin(float64(i))
	}
	xh, _ := tensor.FromF64(xv, 65, 3)
	x, err := xh.CopyTo(gpu)
	require.NoError(t, err)
	defer x.Close()
	run := func(b *Backend, sigma float64) []float64 {
		s, err := tensor.New(gpu, tensor.F64, 65, 3)
		require.NoError(t, err)
		defer s.Close()
		require.NoError(t, b.GMMScore(ops.ScoreOutputs{Score: s}, x, g, ops.AtSigma(sigma)))
		v, err := s.Float64s()
		require.NoError(t, err)
		return v
	}
	one, two := memBackend(t, Options{}), memBackend(t, Options{})
	want := map[float64][]float64{0.3: run(one, 0.3), 0.9: run(one, 0.9)}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			b := one
			if w%2 == 1 {
				b = two
			}
			for i := 0; i < 10; i++ {
				sigma := []float64{0.3, 0.9}[(i+w)%2] // alternating levels rewrite the shared table
				assert.Equal(t, want[sigma], run(b, sigma), "worker %d call %d", w, i)
			}
		}(w)
	}
	wg.Wait()
}
