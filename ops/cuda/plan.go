package cuda

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Launch planning: kernel variants, launch geometry, tiles and memory layouts, as pure functions of
// the problem's sizes, the dtype and the device's multiprocessor count and free memory, so that
// the plain CPU suite checks them (plan_test.go) without a device. The launchers (the cuda-tagged
// files) call them with the device's numbers.

// normalLanes is the number of coordinates one Philox block serves in dt's normal stream (four
// f32 or two f64 normals): also 16 bytes of dt, the width of one thread's vector access.
func normalLanes(dt tensor.DType) int64 {
	if dt == tensor.F32 {
		return 4
	}
	return 2
}

// threadsPerBlock is the block size of the element-wise kernels.
const threadsPerBlock = 256

// maxGridX is the largest x dimension of a grid (2^31 − 1).
const maxGridX = 1<<31 - 1

// cappedGrid returns a 1-D launch of threads-thread blocks covering items items, perBlock per
// block and grid-stride step, with at most perSM blocks per multiprocessor (the kernels stride
// over the rest).
func cappedGrid(sms int, items int64, perBlock, threads, perSM int) tensor.LaunchConfig {
	blocks := (items + int64(perBlock) - 1) / int64(perBlock)
	maxBlocks := int64(sms) * int64(perSM)
	if maxBlocks < 1 {
		maxBlocks = 1024
	}
	return tensor.Grid1D(int(min(max(blocks, 1), maxBlocks, maxGridX)), threads)
}

// elementGrid is the launch of the element-wise kernels over work items with a grid-stride loop:
// enough blocks to fill every SM several times over, no more than the work needs.
func elementGrid(sms int, work int64) tensor.LaunchConfig {
	return cappedGrid(sms, work, threadsPerBlock, threadsPerBlock, 32)
}

// pathThreads is the block size of the per-path kernels (mafbm, brownian): 4 warps, each owning
// 32 consecutive paths (the kernels' __launch_bounds__ and kNoiseWarps).
const pathThreads = 128

// pathGrid is the launch of the per-path kernels: one warp per 32 paths, grid-stride beyond a few
// blocks per SM.
func pathGrid(sms int, paths int64) tensor.LaunchConfig {
	return cappedGrid(sms, paths, pathThreads, pathThreads, 16)
}

// gmmGrid is the launch of the mixture kernels (gmm.cu, chains.cu): threads-thread blocks over
// items items, perBlock per block and grid-stride step, at most gmmMaxBlocksPerSM per SM.
func gmmGrid(sms int, items int64, perBlock, threads int) tensor.LaunchConfig {
	return cappedGrid(sms, items, perBlock, threads, gmmMaxBlocksPerSM)
}

// Shared-memory budgets of the tiled kernels, in bytes. The row and isotropic/diagonal warp kernels
// stage as many components per tile as fit; the full-covariance kernel's need is fixed by d. 48 KiB
// is the most a kernel may use without an opt-in attribute.
const (
	gmmRowTileBytes   = 16 << 10
	gmmWarpTileBytes  = 24 << 10
	gmmMaxSharedMem   = 48 << 10
	gmmUTile          = 32 // U is streamed in 32×32 tiles
	gmmBlockThreads   = 256
	gmmWarpSize       = 32
	gmmMaxBlocksPerSM = 32
)

// gmmLaunch is one score launch: the kernel variant and its geometry.
type gmmLaunch struct {
	variant   string // row4, row8, rowfull4, rowfull8, warp1 … warp16, wide, full
	threads   int    // per block
	rowsPer   int    // rows one block handles per grid-stride step
	tile      int64  // components per shared tile (row and warp variants)
	sharedMem int    // dynamic shared memory, bytes
}

// rowBound is the register bound D of the per-thread kernels for 1 ≤ d ≤ 16: 4, 8 or 16.
func rowBound(d int) int {
	switch {
	case d <= 4:
		return 4
	case d <= 8:
		return 8
	}
	return 16
}

// rowTileElems is the elements per component of a per-thread kernel's padded tile (kernels/gmm.cuh
// RowTile): a μ padded to the bound D, 1/c (D entries, diagonal; 1, isotropic) and cst.
func rowTileElems(bound int, kind ops.CovKind) int {
	if kind == ops.Isotropic {
		return bound + 2
	}
	return 2*bound + 1
}

// planGMM chooses the kernel variant and geometry for a K-component mixture in dimension d.
func planGMM(k, d int, kind ops.CovKind, dt tensor.DType) (gmmLaunch, error) {
	size := dt.Size()
	l1 := d
	if kind == ops.Isotropic {
		l1 = 1
	}
	tiles := func(perComp, budget int) int64 {
		t := budget / (perComp * size)
		return int64(max(1, min(k, t)))
	}
	full := kind == ops.Full
	switch {
	case d <= 8 || d <= 16 && !full:
		bound := rowBound(d)
		v := fmt.Sprintf("row%d", bound)
		perComp := rowTileElems(bound, kind) // the padded tile of a shared level (the larger)
		if full {
			v = "rowfull" + v[3:]
			perComp = 1 + l1 + d + d*d
		}
		t := tiles(perComp, gmmRowTileBytes)
		return gmmLaunch{variant: v, threads: gmmBlockThreads, rowsPer: gmmBlockThreads, tile: t,
			sharedMem: int(t) * perComp * size}, nil
	case full:
		// Per block: one U tile and, per warp (row), t = z / c padded to whole tiles.
		nb := (d + gmmUTile - 1) / gmmUTile
		perWarp := gmmUTile * nb * size
		warps := min(gmmBlockThreads/gmmWarpSize, (gmmMaxSharedMem-gmmUTile*gmmUTile*size)/perWarp)
		if warps < 1 {
			return gmmLaunch{}, fmt.Errorf("gmm score: full covariance in dimension %d needs more than %d KiB of shared memory per row on the GPU (at most d = %d for %v)",
				d, gmmMaxSharedMem>>10, (gmmMaxSharedMem-gmmUTile*gmmUTile*size)/size/gmmUTile*gmmUTile, dt)
		}
		return gmmLaunch{variant: "full", threads: warps * gmmWarpSize, rowsPer: warps,
			sharedMem: (gmmUTile*gmmUTile + warps*gmmUTile*nb) * size}, nil
	case d > 512:
		return gmmLaunch{variant: "wide", threads: gmmBlockThreads, rowsPer: gmmBlockThreads / gmmWarpSize}, nil
	}
	p := 1
	for gmmWarpSize*p < d {
		p *= 2
	}
	perComp := 1 + l1 + d
	t := tiles(perComp, gmmWarpTileBytes)
	return gmmLaunch{variant: fmt.Sprintf("warp%d", p), threads: gmmBlockThreads,
		rowsPer: gmmBlockThreads / gmmWarpSize, tile: t, sharedMem: int(t) * perComp * size}, nil
}

// Shared-memory budget of the component tiles (the whole table when it fits, so that the run
// stages it once), and the launch geometry.
const (
	chainsTileBytes = 24 << 10
	chainsBlock     = 256
	chainsWarps     = chainsBlock / 32
)

// chainsLaunch is one fused launch: the kernel variant and its geometry.
type chainsLaunch struct {
	variant   string // row2, row4, row8, row16, warp1, warp2, warp4, warp8
	rowsPer   int    // chains one block handles per grid-stride step
	tile      int64  // components per shared tile
	sharedMem int    // dynamic shared memory, bytes
}

// planChains chooses the variant and geometry for a K-component mixture in dimension d (≤
// ops.FusedMaxDim; the caller has checked it).
func planChains(k, d int, kind ops.CovKind, dt tensor.DType) chainsLaunch {
	size := dt.Size()
	l1 := d
	if kind == ops.Isotropic {
		l1 = 1
	}
	if d <= 16 {
		bound := 2
		if d > 2 {
			bound = rowBound(d)
		}
		perComp := rowTileElems(bound, kind) * size
		tile := int64(max(1, min(k, chainsTileBytes/perComp)))
		return chainsLaunch{variant: fmt.Sprintf("row%d", bound), rowsPer: chainsBlock, tile: tile,
			sharedMem: int(tile) * perComp}
	}
	perComp := (1 + l1 + d) * size
	tile := int64(max(1, min(k, chainsTileBytes/perComp)))
	plan := chainsLaunch{tile: tile, sharedMem: int(tile) * perComp}
	p := 1
	for 32*p < d {
		p *= 2
	}
	plan.variant = fmt.Sprintf("warp%d", p)
	plan.rowsPer = chainsWarps
	plan.sharedMem += chainsWarps * 32 * p * size // per-warp buffer of the normals
	return plan
}

// chainsRowGroup is the reduction group the thread variant of dimension bound D assumes for the
// MALA norms and the factor (the kernel's RowGroup<D>); it must equal langevinGroup(d) for every
// d the variant serves, which the tests check.
func chainsRowGroup(variant string) int64 {
	switch variant {
	case "row8":
		return 2
	case "row16":
		return 4
	}
	return 1
}

// langevinGroup is the number of lanes of a warp that share one row in the row-reduction kernels
// (mala_accept, gaussian_factor): a power of two, about d/4 so that each lane handles a few
// coordinates, at most a warp. Small rows get one thread each, so that the per-chain work (the
// Philox block, the logarithm) is shared by as few lanes as the row allows.
func langevinGroup(d int) int64 {
	perLane := (d + 3) / 4
	if perLane <= 1 {
		return 1
	}
	return min(int64(1)<<bits.Len(uint(perLane-1)), 32)
}

// metropolisGroup is the number of lanes of a warp that share one row in the Metropolis kernels:
// a power of two, about d/4 so that each lane tests a few coordinates, at most a warp; rows of up
// to 4 coordinates get one thread each.
func metropolisGroup(d int) int64 {
	perLane := (d + 3) / 4
	if perLane <= 1 {
		return 1
	}
	return min(int64(1)<<bits.Len(uint(perLane-1)), 32)
}

// fftMaxLogRadix is log₂ of the largest radix of a pass in a multi-pass plan.
const fftMaxLogRadix = 11

// fftExtracts reports whether a transform of n points in dt can end with an extraction: float
// multi-pass plans (kernels/fft.cu Extract).
func fftExtracts(dt tensor.DType, n int) bool { return dt == tensor.F32 && n > 1<<fftLogTile(dt) }

// fftLogTile is log₂ of the kernel's tile (values per block), which is also the longest
// single-pass transform and the full circle of the twiddle table.
func fftLogTile(dt tensor.DType) int {
	if dt == tensor.F32 {
		return 12
	}
	return 11
}

// fftThreads is the kernel's block size.
func fftThreads(dt tensor.DType) int {
	if dt == tensor.F32 {
		return 512
	}
	return 256
}

// fftPlan returns log₂ of the radix of every pass for a transform of length 2^logn (logn ≥ 1).
func fftPlan(logn, logTile int) []int {
	if logn <= logTile {
		return []int{logn}
	}
	p := (logn + fftMaxLogRadix - 1) / fftMaxLogRadix
	parts := make([]int, p)
	for i := range parts {
		parts[i] = logn / p
		if i < logn%p {
			parts[i]++
		}
	}
	return parts
}

// fftQuarterWave is the kernel's twiddle table for a full circle of 2^logTile: e^{−2πi k/N} for
// k < N/4 as interleaved (re, im), computed in float64 with the angle reduced to at most π/4 (the
// complement gives the other half of the quarter: cos θ = sin(π/2 − θ)), so each entry is within
// about one float64 ulp.
func fftQuarterWave(logTile int) []float64 {
	n := 1 << logTile
	q := n / 4
	out := make([]float64, 2*q)
	for k := 0; k < q; k++ {
		var c, s float64
		if 2*k <= q {
			s, c = math.Sincos(2 * math.Pi * float64(k) / float64(n))
		} else {
			c, s = math.Sincos(2 * math.Pi * float64(q-k) / float64(n))
		}
		out[2*k], out[2*k+1] = c, -s
	}
	return out
}

// fftGrid is the launch of one pass of radix 2^logr: a block per tile of C = tile/R columns (at
// most the block size), capped at 64 blocks per SM (the kernel strides over the rest).
func fftGrid(sms int, dt tensor.DType, batch, n, logr int) tensor.LaunchConfig {
	threads := fftThreads(dt)
	logE := min(logr, 3)
	logC := bits.Len(uint(threads)) - 1 - (logr - logE)
	cols := int64(batch) * int64(n>>logr)
	tiles := (cols + 1<<logC - 1) >> logC
	maxBlocks := int64(max(sms, 1)) * 64
	return tensor.Grid1D(int(min(tiles, maxBlocks)), threads)
}

// Launch geometry of kernels/empirical.cu (keep in step with its constants).
const (
	empiricalThreads = 256 // threads per block (16 × 16)
	empiricalRows    = 64  // query rows per block (BR)
	// empiricalMaxDim keeps the kernel's 32-bit offsets within a tile (BR·d) below 2^31.
	empiricalMaxDim = 1 << 24
	// empiricalMaxChunk bounds the data points of one launch (the kernel's tile indices are int).
	empiricalMaxChunk = 1 << 30
	// empiricalMaxChunkBytes bounds one chunk of the chunked path (and its host conversion
	// buffer): at this size the copy is short next to the kernel that consumes it.
	empiricalMaxChunkBytes = 1 << 30
	// empiricalMinTilesPerSplit: a split (a block sharing its row tile's data with others) gets at
	// least this many data tiles, so that the extra merge pays for itself.
	empiricalMinTilesPerSplit = 4
	// empiricalSplitBudget caps the scratch of the split path (per-split accumulators).
	empiricalSplitBudget = 256 << 20
)

// empiricalTile is the number of data points per shared-memory tile (BC) for dt.
func empiricalTile(dt tensor.DType) int {
	if dt == tensor.F32 {
		return 64
	}
	return 32
}

// empiricalRegisterDim is the largest d the register-accumulator entry serves (its DW).
const empiricalRegisterDim = 64

// empiricalEntry is the score kernel's entry for dt, d and the number of vector outputs: with
// exactly one vector in float and d ≤ 64 the accumulator stays in registers for the whole launch
// (empirical_score_reg_f32), else it lives in global memory (empirical_score_<dt>). Both give the
// same bits; the first saves the accumulator's traffic and a barrier per tile.
func empiricalEntry(dt tensor.DType, d, vectors int) string {
	if dt == tensor.F32 && vectors == 1 && d <= empiricalRegisterDim {
		return "empirical_score_reg_f32"
	}
	return "empirical_score_" + dt.String()
}

// empiricalProblem is what the empirical score's plan depends on.
type empiricalProblem struct {
	m, d, n     int          // data points, dimension, query rows
	dt          tensor.DType // the computation's dtype
	vectors     int          // vector outputs asked for (score, denoiser): 0, 1 or 2
	sms         int          // the device's multiprocessors
	device      string       // its name, for messages
	resident    bool         // the data set is already on the device
	free, total int64        // device memory: free (with what evicting other tables frees) and total
	// Test knobs (see empirical.go): chunks of at most maxChunkPoints points when M exceeds it;
	// a fixed number of splits.
	maxChunkPoints, forceSplits int
}

// forced reports whether a test knob forces the chunked path.
func (p empiricalProblem) forced() bool { return p.maxChunkPoints > 0 && p.maxChunkPoints < p.m }

// Where the empirical score's data comes from.
const (
	empiricalResident = iota // already on the device
	empiricalUpload          // uploaded whole, then kept
	empiricalChunked         // copied from the host chunk by chunk
)

// empiricalLayout is the plan: where the data comes from and how the work is cut.
type empiricalLayout struct {
	mode     int
	splits   int   // blocks per row tile
	chunk    int   // data points per launch
	chunks   int   // launches
	scratch  int   // elements of scratch (state and per-split accumulators)
	headroom int64 // device memory left free beside the data, the chunk and the scratch
}

// planEmpiricalLayout decides residency, chunking and splits: the whole data set stays on the
// device when it fits beside the scratch and a headroom; otherwise it streams in chunks that fit.
// Splits (several blocks sharing one row tile's data, merged by a second kernel) give the device
// about two blocks per SM when the query rows alone do not.
func planEmpiricalLayout(p empiricalProblem) (empiricalLayout, error) {
	m, d, n := p.m, p.d, p.n
	size := int64(p.dt.Size())
	tile := empiricalTile(p.dt)
	rowTiles := (n + empiricalRows - 1) / empiricalRows

	// Splits: enough blocks for about two per SM, each with a few tiles, within the budget.
	splitsFor := func(points int) int {
		tiles := (points + tile - 1) / tile
		if p.forceSplits > 0 {
			return min(p.forceSplits, 65535)
		}
		want := 2 * max(p.sms, 1)
		if rowTiles >= want {
			return 1
		}
		s := (want + rowTiles - 1) / rowTiles
		s = min(s, max(tiles/empiricalMinTilesPerSplit, 1))
		perSplit := int64(n) * (2 + int64(p.vectors)*int64(d)) * size
		s = min(s, int(max(empiricalSplitBudget/perSplit, 1)), 65535)
		return max(s, 1)
	}
	scratchFor := func(splits, chunks int) int {
		switch {
		case splits > 1:
			return splits * n * (2 + p.vectors*d)
		case chunks > 1:
			return n * 2
		}
		return 0
	}
	if p.resident && !p.forced() {
		l := empiricalLayout{mode: empiricalResident, chunk: min(m, empiricalMaxChunk)}
		l.chunks = (m + l.chunk - 1) / l.chunk
		l.splits = splitsFor(l.chunk)
		l.scratch = scratchFor(l.splits, l.chunks)
		return l, nil
	}
	headroom := min(max(p.total/32, 128<<20), 1<<30)
	dataBytes := int64(m) * int64(d) * size
	if !p.forced() && m <= empiricalMaxChunk {
		splits := splitsFor(m)
		scratch := int64(scratchFor(splits, 1)) * size
		if dataBytes+scratch+headroom <= p.free {
			return empiricalLayout{mode: empiricalUpload, chunk: m, chunks: 1, splits: splits,
				scratch: scratchFor(splits, 1), headroom: headroom}, nil
		}
	}

	// Chunked: the chunk takes what is left after the state and the headroom.
	l := empiricalLayout{mode: empiricalChunked, headroom: headroom}
	splits := splitsFor(min(m, empiricalMaxChunk))
	for {
		state := int64(scratchFor(splits, 2)) * size
		minChunk := int64(min(tile, m))
		avail := p.free - headroom - state
		if avail < minChunk*int64(d)*size {
			if splits > 1 && p.forceSplits == 0 {
				splits = 1 // give the split scratch back to the chunk
				continue
			}
			return l, fmt.Errorf("empirical score: the data (M = %d points × d = %d, %s as %v) does not fit on %s, "+
				"and neither does one chunk of %d points: it needs %s for the chunk + %s for the row state + %s headroom, "+
				"%s of %s is free",
				m, d, tensor.HumanBytes(dataBytes), p.dt, p.device, minChunk,
				tensor.HumanBytes(minChunk*int64(d)*size), tensor.HumanBytes(state), tensor.HumanBytes(headroom),
				tensor.HumanBytes(p.free), tensor.HumanBytes(p.total))
		}
		chunk := int(min(min(avail, empiricalMaxChunkBytes)/(int64(d)*size), int64(empiricalMaxChunk)))
		if p.maxChunkPoints > 0 {
			chunk = min(chunk, p.maxChunkPoints)
		}
		if chunk < m {
			chunk = max(chunk/tile*tile, tile)
		}
		l.chunk = min(chunk, m)
		break
	}
	l.chunks = (m + l.chunk - 1) / l.chunk
	l.splits = min(splits, splitsFor(l.chunk))
	l.scratch = scratchFor(l.splits, l.chunks)
	return l, nil
}

// fgnMaxScratchBytes caps the complex scratch buffer (a variable so that tests can force chunks).
var fgnMaxScratchBytes int64 = 1 << 30

// fgnHeadroom is the device memory left free beside the scratch buffers.
const fgnHeadroom = 64 << 20

// fgnScanThreads is the block size of fgn_path (FGN_SCAN_THREADS in kernels/fgn.cu).
const fgnScanThreads = 256

// FGN transforms two paths as one complex signal of m values (kernels/fgn.cu): a chunk of c paths
// takes fgnPairs(c) signals.
func fgnPairs(paths int64) int64 { return (paths + 1) / 2 }

// fgnFirstLogRadix is log₂ of the first pass's radix of the float FFT of length m (a multi-pass
// plan: m > 4096), the pass fgn_r<R>_f32 runs.
func fgnFirstLogRadix(m int) int { return fftPlan(bits.Len(uint(m))-1, fftLogTile(tensor.F32))[0] }

// fgnFirstPassEntry is the entry of that pass.
func fgnFirstPassEntry(m int) string { return fmt.Sprintf("fgn_r%d_f32", 1<<fgnFirstLogRadix(m)) }

// fgnSpectrumLanes is the Philox lanes fgn_spectrum draws per path for an embedding of ne pairs:
// one per Box–Muller pair in double, one per two pairs in float.
func fgnSpectrumLanes(dt tensor.DType, ne int) int64 {
	if dt == tensor.F32 {
		return int64(ne) / 2
	}
	return int64(ne)
}

// fgnWantPaths is how many paths one FGN chunk should hold: all of them, or as many pairs as a
// scratch of maxScratch bytes holds (at least one pair), never more than paths.
func fgnWantPaths(paths, m int, dt tensor.DType, maxScratch int64) int64 {
	pairBytes := int64(2*m) * int64(dt.Size())
	want := fgnPairs(int64(paths))
	if capPairs := maxScratch / pairBytes; want > capPairs {
		want = max(capPairs, 1)
	}
	return min(2*want, int64(paths))
}

// fgnFitPaths is how many paths (an even number) fit in free bytes of device memory: the pairs that
// free less fgnHeadroom holds, split in two when the FFT's scratch takes as much again (fftScratch);
// 0 when not one does.
func fgnFitPaths(m int, dt tensor.DType, free int64, fftScratch bool) int64 {
	pairBytes := int64(2*m) * int64(dt.Size())
	return 2 * max((free-fgnHeadroom)/fgnBuffers(fftScratch)/pairBytes, 0)
}

// fgnBuffers is the number of signal-sized buffers a chunk of FGN holds on the device: the signal,
// and the FFT's scratch when its transform takes one.
func fgnBuffers(fftScratch bool) int64 {
	if fftScratch {
		return 2
	}
	return 1
}

// fftScratchNeeded reports whether a transform of the given number of passes, run from pass first,
// ping-pongs through the backend's FFT scratch buffer (as large as the data): a single pass never
// does; with an extraction by the last pass only when two or more passes run.
func fftScratchNeeded(passes, first int, extract bool) bool {
	return passes > 1 && (!extract || passes-1 > first)
}

// fgnFFTScratch reports whether FGN's transform of m points for dt takes the FFT's scratch: the
// float plans whose first pass generates the signal and whose second and last writes the
// increments (m up to 2^22) do not.
func fgnFFTScratch(dt tensor.DType, m int, fused, generate bool) bool {
	first := 0
	if generate {
		first = 1
	}
	return fftScratchNeeded(len(fftPlan(bits.Len(uint(m))-1, fftLogTile(dt))), first, fused)
}

// Geometry of mlp_score_<dt>: 256-thread blocks of mlpRows(dt) rows, weight K-slices of
// mlpSlice(dt) rows (the kernel's Tiling<T>).
const (
	mlpThreads      = 256
	mlpUnitsPerPass = 32 // threads along the output units
	mlpBlocksPerSM  = 2  // __launch_bounds__(256, 2)
)

func mlpRows(dt tensor.DType) int {
	if dt == tensor.F32 {
		return 32
	}
	return 16
}

func mlpSlice(dt tensor.DType) int {
	if dt == tensor.F32 {
		return 8
	}
	return 4
}

// mlpSharedMem is the kernel's dynamic shared memory in bytes: the tile's activations
// (rows × max(W, d+2F)) and one weight K-slice (slice × 32⌈max(W, d)/32⌉).
func mlpSharedMem(c ops.MLPConfig, dt tensor.DType) int {
	lda := max(c.Width, c.Inputs())
	pad := (max(c.Width, c.Dim) + mlpUnitsPerPass - 1) / mlpUnitsPerPass * mlpUnitsPerPass
	return (mlpRows(dt)*lda + mlpSlice(dt)*pad) * dt.Size()
}
