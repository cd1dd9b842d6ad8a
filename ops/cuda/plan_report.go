package cuda

import (
	"fmt"
	"math/bits"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// PlannedLaunch is one kernel launch of an op as the planners lay it out for a device with a
// given number of SMs: what reports on the launches (the performance model, bench/perfmodel)
// need without a device. The launchers use the same planners, so the entries and geometry are
// the ones a run on such a device makes.
type PlannedLaunch struct {
	Module    string // kernels/ptx/<Module>.ptx
	Entry     string // kernel entry
	Threads   int    // per block
	Blocks    int    // blocks in the grid (all dimensions)
	SharedMem int    // dynamic shared memory per block, bytes
	Count     int    // how many times the op launches it
	Plan      string // the planner's choice in words
}

func blocksOf(c tensor.LaunchConfig) int { return c.Grid[0] * c.Grid[1] * c.Grid[2] }

// PlanGMMScoreLaunch is the launch of GMMScore for n rows of a k-component mixture in dimension d
// on a device with sms SMs (no per-row levels).
func PlanGMMScoreLaunch(sms, n, k, d int, kind ops.CovKind, dt tensor.DType) (PlannedLaunch, error) {
	p, err := planGMM(k, d, kind, dt)
	if err != nil {
		return PlannedLaunch{}, err
	}
	g := gmmGrid(sms, int64(n), p.rowsPer, p.threads)
	return PlannedLaunch{Module: "gmm", Entry: "gmm_score_" + p.variant + "_" + dt.String(), Threads: p.threads,
		Blocks: blocksOf(g), SharedMem: p.sharedMem, Count: 1,
		Plan: fmt.Sprintf("%s, %d rows per block step, tile of %d components", p.variant, p.rowsPer, p.tile)}, nil
}

// PlanChainsLaunch is the fused chains launch for n chains of method m on a k-component mixture
// in dimension d (≤ ops.FusedMaxDim).
func PlanChainsLaunch(sms, n, k, d int, kind ops.CovKind, m ops.ChainMethod, dt tensor.DType) PlannedLaunch {
	p := planChains(k, d, kind, dt)
	g := gmmGrid(sms, int64(n), p.rowsPer, chainsBlock)
	return PlannedLaunch{Module: "chains", Entry: "chains_" + m.String() + "_" + p.variant + "_" + dt.String(),
		Threads: chainsBlock, Blocks: blocksOf(g), SharedMem: p.sharedMem, Count: 1,
		Plan: fmt.Sprintf("%s, %d chains per block step, tile of %d components", p.variant, p.rowsPer, p.tile)}
}

// PlanEmpiricalLaunches are the launches of EmpiricalScore for n queries against m data points in
// dimension d with the data resident on the device (one vector output).
func PlanEmpiricalLaunches(sms, n, m, d int, dt tensor.DType) ([]PlannedLaunch, error) {
	l, err := planEmpiricalLayout(empiricalProblem{m: m, d: d, n: n, dt: dt, vectors: 1, sms: sms,
		device: "model", resident: true, free: 1 << 40, total: 1 << 40})
	if err != nil {
		return nil, err
	}
	rowTiles := (n + empiricalRows - 1) / empiricalRows
	out := []PlannedLaunch{{Module: "empirical", Entry: empiricalEntry(dt, d, 1), Threads: empiricalThreads,
		Blocks: rowTiles * l.splits, Count: l.chunks,
		Plan: fmt.Sprintf("%d row tiles × %d splits, %d chunk(s), tiles of %d×%d", rowTiles, l.splits, l.chunks,
			empiricalRows, empiricalTile(dt))}}
	if l.splits > 1 {
		out = append(out, PlannedLaunch{Module: "empirical", Entry: "empirical_finalize_" + dt.String(),
			Threads: threadsPerBlock, Blocks: blocksOf(elementGrid(sms, int64(n))), Count: 1, Plan: "merge of the splits"})
	}
	return out, nil
}

// PlanFFTLaunches are the passes of a batched complex FFT of length n (a power of two).
func PlanFFTLaunches(sms, batch, n int, dt tensor.DType) []PlannedLaunch {
	plan := fftPlan(bits.Len(uint(n))-1, fftLogTile(dt))
	out := make([]PlannedLaunch, len(plan))
	for i, logr := range plan {
		g := fftGrid(sms, dt, batch, n, logr)
		out[i] = PlannedLaunch{Module: "fft", Entry: fmt.Sprintf("fft_r%d_%s", 1<<logr, dt), Threads: g.Block[0],
			Blocks: blocksOf(g), Count: 1, Plan: fmt.Sprintf("pass %d of %d, radix 2^%d", i+1, len(plan), logr)}
	}
	return out
}

// PlanFGNLaunches are the launches of FGN (increments, or with path the fBM path) for paths paths
// of length n by Davies–Harte with embedding size ne (ops.FGNPlan.EmbedSize), when the scratch
// holds all paths (one chunk; the launch count is per chunk otherwise): the spectrum of
// ⌈paths/2⌉ pairs of paths, the FFT passes over the pairs, and the output — in float multi-pass
// plans the first pass generates the signal (fgn_r<R>_f32, no spectrum launch) and the last writes
// the increments, which fgn_cumsum sums in place for a path; else fgn_spectrum writes the signal
// and fgn_increments the increments, or fgn_path their running sums.
func PlanFGNLaunches(sms, paths, n, ne int, dt tensor.DType, path bool) []PlannedLaunch {
	m := 2 * ne
	chunk := fgnWantPaths(paths, m, dt, fgnMaxScratchBytes)
	chunks := int((int64(paths) + chunk - 1) / chunk)
	rows := int(min(int64(paths), chunk))
	pairs := int(fgnPairs(int64(rows)))
	plan := fmt.Sprintf("m = %d, %d path(s) in %d transform(s) per chunk, %d chunk(s)", m, rows, pairs, chunks)
	passes := PlanFFTLaunches(sms, pairs, m, dt)
	for i := range passes {
		passes[i].Count = chunks
	}
	scan := func(entry, what string) PlannedLaunch {
		return PlannedLaunch{Module: "fgn", Entry: entry + "_" + dt.String(), Threads: fgnScanThreads,
			Blocks: min(rows, max(sms, 1)*16), Count: chunks, Plan: what}
	}
	if fftExtracts(dt, m) {
		passes[0].Module, passes[0].Entry = "fgn", fgnFirstPassEntry(m)
		passes[0].Plan = plan + "; " + passes[0].Plan + ", generates the signal (no spectrum buffer)"
		passes[len(passes)-1].Plan += ", writes the increments (both parts of the first n values)"
		if path {
			passes = append(passes, scan("fgn_cumsum", "running sums of the increments in place, one block per path"))
		}
		return passes
	}
	out := []PlannedLaunch{{Module: "fgn", Entry: "fgn_spectrum_" + dt.String(), Threads: threadsPerBlock,
		Blocks: blocksOf(elementGrid(sms, int64(pairs)*fgnSpectrumLanes(dt, ne))), Count: chunks, Plan: plan}}
	out = append(out, passes...)
	if path {
		return append(out, scan("fgn_path", "running sums of the first n values of both parts, one block per path"))
	}
	return append(out, PlannedLaunch{Module: "fgn", Entry: "fgn_increments_" + dt.String(), Threads: threadsPerBlock,
		Blocks: blocksOf(elementGrid(sms, int64(rows)*int64(n))), Count: chunks, Plan: "the first n values of both parts"})
}

// PlanNormalLaunch is the launch of Normal filling a (chains, dim) tensor.
func PlanNormalLaunch(sms int, chains, dim int64, dt tensor.DType) PlannedLaunch {
	per := normalLanes(dt)
	lanes := (dim + per - 1) / per
	return PlannedLaunch{Module: "random", Entry: "normal_" + dt.String(), Threads: threadsPerBlock,
		Blocks: blocksOf(elementGrid(sms, chains*lanes)), Count: 1,
		Plan: fmt.Sprintf("%d normals per thread and grid-stride step", per)}
}
