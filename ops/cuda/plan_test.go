package cuda

import (
	"fmt"
	"math/bits"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/kernels"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The planners run without a device: these tests are in the plain CPU suite.

var planDTypes = []tensor.DType{tensor.F32, tensor.F64}

// checkLaunch asserts the launch limits every plan must respect: 1 ≤ blocks < 2^31, whole warps
// of at most 1024 threads, at most 48 KiB of shared memory (the kernels' static shared memory
// from the entry table included).
func checkLaunch(t *testing.T, cfg tensor.LaunchConfig, static int64, what string) {
	t.Helper()
	assert.GreaterOrEqual(t, cfg.Grid[0], 1, what)
	assert.LessOrEqual(t, cfg.Grid[0], maxGridX, what)
	assert.Equal(t, [2]int{1, 1}, [2]int{cfg.Grid[1], cfg.Grid[2]}, what)
	threads := cfg.Block[0] * cfg.Block[1] * cfg.Block[2]
	assert.True(t, threads >= 32 && threads <= 1024 && threads%32 == 0, "%s: %d threads", what, threads)
	assert.LessOrEqual(t, int64(cfg.SharedMem)+static, int64(48<<10), what)
}

// GMM score: the variant follows the covariance kind and d; tiles fit the shared budget and hold
// 1..K components; a full covariance too wide for shared memory is an error that says so.
func TestPlanGMM(t *testing.T) {
	for _, dt := range planDTypes {
		for _, kind := range []ops.CovKind{ops.Isotropic, ops.Diagonal, ops.Full} {
			for _, k := range []int{1, 7, 64, 1000} {
				for _, d := range []int{1, 2, 4, 5, 8, 9, 16, 31, 32, 33, 64, 100, 256, 257, 512, 513, 1000, 2048} {
					what := fmt.Sprintf("K=%d d=%d %v %v", k, d, kind, dt)
					p, err := planGMM(k, d, kind, dt)
					// A full covariance needs one 32×32 tile of U per block and a row of ⌈d/32⌉ tiles of
					// 32 values per warp.
					perWarp := gmmUTile * ((d + gmmUTile - 1) / gmmUTile) * dt.Size()
					if kind == ops.Full && d > 8 && gmmMaxSharedMem-gmmUTile*gmmUTile*dt.Size() < perWarp {
						require.Error(t, err, what)
						assert.Contains(t, err.Error(), "shared memory", what)
						continue
					}
					require.NoError(t, err, what)
					switch {
					case d <= 4:
						assert.Contains(t, []string{"row4", "rowfull4"}, p.variant, what)
					case d <= 8:
						assert.Contains(t, []string{"row8", "rowfull8"}, p.variant, what)
					case d <= 16 && kind != ops.Full:
						assert.Equal(t, "row16", p.variant, what)
					case kind == ops.Full:
						assert.Equal(t, "full", p.variant, what)
					case d > 512:
						assert.Equal(t, "wide", p.variant, what)
					default:
						var per int
						_, err := fmt.Sscanf(p.variant, "warp%d", &per)
						require.NoError(t, err, what)
						assert.True(t, d <= 32*per && (per == 1 || d > 16*per), "%s on %s", what, p.variant)
					}
					if p.variant != "wide" && p.variant != "full" {
						assert.True(t, p.tile >= 1 && p.tile <= int64(k), "%s: tile %d", what, p.tile)
					}
					// The per-thread kernels' tiles: RowTile's padded layout at a shared level, the
					// unpadded table rows with per-row levels; the shared memory holds either.
					var bound int
					if _, err := fmt.Sscanf(p.variant, "row%d", &bound); err == nil {
						l1 := d
						if kind == ops.Isotropic {
							l1 = 1
						}
						assert.GreaterOrEqual(t, p.sharedMem, int(p.tile)*rowTileElems(bound, kind)*dt.Size(), what)
						assert.GreaterOrEqual(t, p.sharedMem, int(p.tile)*(1+l1+d)*dt.Size(), what)
					}
					e := "gmm_score_" + p.variant + "_" + dt.String()
					entry, ok := kernels.LookupEntry("gmm", e)
					require.True(t, ok, e)
					cfg := gmmGrid(132, 1_000_000, p.rowsPer, p.threads)
					cfg.SharedMem = p.sharedMem
					checkLaunch(t, cfg, entry.StaticShared, what)
					assert.LessOrEqual(t, p.threads, max(entry.MaxThreads, 1024), what)
				}
			}
		}
	}
	_, err := planGMM(2, 6000, ops.Full, tensor.F64)
	assert.ErrorContains(t, err, "shared memory")
	_, err = planGMM(2, 100000, ops.Diagonal, tensor.F64)
	assert.NoError(t, err, "isotropic and diagonal mixtures have no dimension limit")
}

// The variant plan covers 1 ≤ d ≤ ops.FusedMaxDim, and the thread variants' compile-time
// reduction group is the step ops' (langevinGroup), which the bitwise equality rests on.
func TestGMMChainsPlan(t *testing.T) {
	for _, dt := range planDTypes {
		for d := 1; d <= ops.FusedMaxDim; d++ {
			for _, kind := range []ops.CovKind{ops.Isotropic, ops.Diagonal} {
				p := planChains(40, d, kind, dt)
				require.NotEmpty(t, p.variant)
				var bound int
				if _, err := fmt.Sscanf(p.variant, "row%d", &bound); err == nil {
					assert.LessOrEqual(t, d, bound, "d = %d on %s", d, p.variant)
					assert.Equal(t, langevinGroup(d), chainsRowGroup(p.variant), "d = %d on %s", d, p.variant)
					assert.Equal(t, chainsBlock, p.rowsPer)
					assert.GreaterOrEqual(t, p.sharedMem, int(p.tile)*rowTileElems(bound, kind)*dt.Size(),
						"d = %d: the padded tile fits", d)
				} else {
					var warps int
					_, err := fmt.Sscanf(p.variant, "warp%d", &warps)
					require.NoError(t, err, p.variant)
					assert.True(t, d > 16 && d <= 32*warps && d > 16*warps, "d = %d on %s", d, p.variant)
					assert.Equal(t, chainsWarps, p.rowsPer)
				}
				assert.LessOrEqual(t, p.sharedMem, 48<<10, "d = %d: shared memory", d)
				assert.True(t, p.tile >= 1 && p.tile <= 40)
			}
		}
	}
}

// The reduction groups: powers of two ≤ 32, about d/4 coordinates' worth, one lane for d ≤ 4.
func TestReductionGroups(t *testing.T) {
	for d := 0; d <= 1000; d++ {
		for _, g := range []int64{langevinGroup(d), metropolisGroup(d)} {
			assert.True(t, g >= 1 && g <= 32 && g&(g-1) == 0, "d = %d: group %d", d, g)
			if d <= 4 {
				assert.Equal(t, int64(1), g, "d = %d", d)
			} else if d <= 128 {
				assert.True(t, 4*g >= int64(d) && 4*g < 2*int64(d)+4, "d = %d: group %d", d, g)
			}
		}
	}
}

// Grids: at least one block, never past the device's limit, and covering the work in one sweep
// until the per-SM cap takes over (the kernels stride over the rest).
func TestGrids(t *testing.T) {
	for _, sms := range []int{0, 1, 2, 132} {
		for _, work := range []int64{0, 1, 255, 256, 257, 1 << 20, 1 << 40, 1 << 62} {
			for _, cfg := range []tensor.LaunchConfig{elementGrid(sms, work), pathGrid(sms, work), gmmGrid(sms, work, 8, 256)} {
				checkLaunch(t, cfg, 0, fmt.Sprintf("sms=%d work=%d", sms, work))
			}
			e := elementGrid(sms, work)
			capBlocks := max(int64(sms)*32, 1024*int64(btoi(sms == 0)))
			want := min(max((work+255)/256, 1), capBlocks)
			assert.Equal(t, int(want), e.Grid[0], "sms=%d work=%d", sms, work)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// FFT: the radices multiply to n, a single pass up to the tile, multi-pass radices at most 2^11
// and as equal as possible, and the pass grids within the limits.
func TestFFTPlan(t *testing.T) {
	for _, dt := range planDTypes {
		logTile := fftLogTile(dt)
		assert.Equal(t, 1<<logTile, fftThreads(dt)*8, "%v: a tile is 8 values per thread", dt)
		for logn := 1; logn <= bits.Len(uint(ops.MaxFFTLength))-1; logn++ {
			plan := fftPlan(logn, logTile)
			sum, lo, hi := 0, 64, 0
			for _, r := range plan {
				sum += r
				lo, hi = min(lo, r), max(hi, r)
			}
			assert.Equal(t, logn, sum, "%v n=2^%d", dt, logn)
			if logn <= logTile {
				assert.Equal(t, []int{logn}, plan)
			} else {
				assert.LessOrEqual(t, hi, fftMaxLogRadix, "%v n=2^%d", dt, logn)
				assert.LessOrEqual(t, hi-lo, 1, "%v n=2^%d: radices as equal as possible", dt, logn)
			}
			for _, r := range plan {
				for _, batch := range []int{1, 3, 1000} {
					checkLaunch(t, fftGrid(132, dt, batch, 1<<logn, r), 0, fmt.Sprintf("%v n=2^%d r=2^%d", dt, logn, r))
				}
			}
		}
		q := fftQuarterWave(logTile)
		assert.Len(t, q, 2*(1<<logTile)/4)
		assert.Equal(t, []float64{1, 0}, q[:2])
	}
}

// The empirical score's plan: resident data stays, data that fits is uploaded, data that does
// not streams in whole tiles, splits give few query rows enough blocks, and when not even one
// tile fits the error names what it needs.
func TestPlanEmpiricalLayout(t *testing.T) {
	const gib = 1 << 30
	base := empiricalProblem{m: 10000, d: 64, n: 50, dt: tensor.F32, vectors: 2, sms: 100, device: "cuda:0",
		free: 8 * gib, total: 16 * gib}
	l, err := planEmpiricalLayout(base)
	require.NoError(t, err)
	assert.Equal(t, empiricalUpload, l.mode)
	assert.Equal(t, 1, l.chunks)
	// One row tile on 100 SMs wants 200 blocks; 157 tiles of 64 points allow 157/4 = 39 splits of
	// at least 4 tiles each.
	assert.Equal(t, 39, l.splits, "one row tile on 100 SMs: split the data")
	assert.Equal(t, l.splits*base.n*(2+2*64), l.scratch)

	res := base
	res.resident = true
	l, err = planEmpiricalLayout(res)
	require.NoError(t, err)
	assert.Equal(t, empiricalResident, l.mode)

	many := base
	many.n = 100000 // 1563 row tiles fill the device
	l, err = planEmpiricalLayout(many)
	require.NoError(t, err)
	assert.Equal(t, 1, l.splits)
	assert.Zero(t, l.scratch)

	headroom := int64(512 << 20) // total/32 for 16 GiB
	small := base
	small.free = headroom + 4096 + 300*64*4 // headroom + a little: chunks of whole tiles
	l, err = planEmpiricalLayout(small)
	require.NoError(t, err)
	assert.Equal(t, empiricalChunked, l.mode)
	assert.Zero(t, l.chunk%empiricalTile(tensor.F32), "whole tiles")
	assert.Equal(t, (small.m+l.chunk-1)/l.chunk, l.chunks)

	none := base
	none.free = headroom
	_, err = planEmpiricalLayout(none)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not fit on cuda:0")

	forced := base
	forced.resident, forced.maxChunkPoints, forced.forceSplits = true, 1000, 3
	l, err = planEmpiricalLayout(forced)
	require.NoError(t, err)
	assert.Equal(t, empiricalChunked, l.mode, "the knob forces chunks even for resident data")
	assert.LessOrEqual(t, l.chunk, 1000)
	assert.Equal(t, 3, l.splits)
}

// fGn chunks (the plan): all paths when they fit, else whole pairs of paths (one complex signal
// each) within the scratch cap and the free memory, half of it when the FFT takes a scratch buffer.
func TestPlanFGNChunks(t *testing.T) {
	const m = 1 << 10
	pairBytes := int64(2 * m * 4)
	assert.Equal(t, int64(100), fgnWantPaths(100, m, tensor.F32, 1<<30))
	assert.Equal(t, int64(101), fgnWantPaths(101, m, tensor.F32, 51*pairBytes), "an odd count in one chunk")
	assert.Equal(t, int64(100), fgnWantPaths(101, m, tensor.F32, 50*pairBytes+1), "else whole pairs")
	assert.Equal(t, int64(6), fgnWantPaths(100, m, tensor.F32, 3*pairBytes+1))
	assert.Equal(t, int64(2), fgnWantPaths(100, m, tensor.F32, 1), "at least one pair")
	assert.Equal(t, int64(1), fgnWantPaths(1, m, tensor.F32, 1), "never more than the paths")
	assert.Equal(t, int64(10), fgnFitPaths(m, tensor.F32, fgnHeadroom+10*pairBytes, true))
	assert.Equal(t, int64(8), fgnFitPaths(m, tensor.F32, fgnHeadroom+9*pairBytes, true), "whole pairs")
	assert.Equal(t, int64(0), fgnFitPaths(m, tensor.F32, fgnHeadroom, true))
	assert.Equal(t, int64(0), fgnFitPaths(m, tensor.F32, 0, true), "no negative count")
	assert.Equal(t, int64(18), fgnFitPaths(m, tensor.F32, fgnHeadroom+9*pairBytes, false), "no FFT scratch: all of it")
	assert.Equal(t, int64(0), fgnFitPaths(m, tensor.F32, 0, false), "no negative count")
}

// Which fGn transforms take the FFT's scratch buffer: every multi-pass plan, except the float
// plans whose first pass generates the signal and whose second, last pass writes the increments
// (the increments and the path form alike: the path is summed in the output).
func TestPlanFGNFFTScratch(t *testing.T) {
	for _, c := range []struct {
		dt              tensor.DType
		m               int
		fused, generate bool
		want            bool
		why             string
	}{
		{tensor.F32, 1 << 12, false, false, false, "one pass"},
		{tensor.F64, 1 << 11, false, false, false, "one pass"},
		{tensor.F32, 1 << 13, true, true, false, "generated, two passes"},
		{tensor.F32, 1 << 22, true, true, false, "generated, two passes"},
		{tensor.F32, 1 << 23, true, true, true, "generated, three passes"},
		{tensor.F32, 1 << 13, true, false, true, "the spectrum written: the first pass is the FFT's own"},
		{tensor.F32, 1 << 13, false, false, true, "no extraction: the transform kept in the buffer"},
		{tensor.F64, 1 << 12, false, false, true, "double: two passes in place"},
	} {
		assert.Equal(t, c.want, fgnFFTScratch(c.dt, c.m, c.fused, c.generate), "%v m=%d: %s", c.dt, c.m, c.why)
	}
}

// The shared-memory plan stays within the 48 KiB a launch may use without an opt-in, for every
// width and input count the network allows.
func TestMLPSharedMemoryFits(t *testing.T) {
	for _, dt := range []tensor.DType{tensor.F32, tensor.F64} {
		e, err := entryOf("mlp", "mlp_score_"+dt.String())
		require.NoError(t, err)
		for _, w := range []int{1, 33, 255, ops.MaxMLPWidth} {
			c := ops.MLPConfig{Dim: ops.MaxMLPDim, Width: w, Depth: 1, BlockLayers: 1, Fourier: ops.MaxMLPFourier}
			bytes := int64(mlpSharedMem(c, dt)) + e.StaticShared
			assert.LessOrEqual(t, bytes, int64(48<<10), fmt.Sprintf("%v width %d", dt, w))
		}
	}
}
