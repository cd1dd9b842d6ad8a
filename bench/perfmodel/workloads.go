package main

import (
	"math"
	"strconv"
	"strings"

	"github.com/scorekit/scorekit/internal/perfmodel"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/cuda"
	"github.com/scorekit/scorekit/tensor"
)

// A workload is one benchmark problem: the launches the planners make for it and, per launch,
// how its hot loops map to the problem's work.
type workload struct {
	name     string
	bench    string  // the benchmark it models
	flop     float64 // FLOP counted by the benchmark (0: the benchmark reports no FLOP rate)
	launches func(sms int) ([]cuda.PlannedLaunch, error)
	models   []launchModel // one per launch, in order
	note     string        // where the mapping is ambiguous
}

// launchModel maps one launch's hot loops to warp-iterations and counts its DRAM bytes.
type launchModel struct {
	terms []term
	// bytes is the DRAM traffic of the launch by design (each byte read or written once unless
	// said otherwise; L2 hits are not modelled).
	bytes func(l cuda.PlannedLaunch) float64
	// fixedWork: every block does the same fixed work (no grid-stride sharing), so the busiest SM
	// (⌈blocks/SMs⌉ blocks) sets the time.
	fixedWork bool
}

// A term is one loop of a launch and its warp-iterations. The first term of a launch is its
// outer loop when it has nested terms: its path holds each nested loop once, and the nested
// terms count the further iterations.
type term struct {
	what  string
	pick  func(loops []perfmodel.Loop) []perfmodel.Loop // candidates; the range over them is taken
	iters func(x iterCtx) float64                       // warp-iterations over the launch
}

// iterCtx is what a term's iteration count may depend on.
type iterCtx struct {
	gpu   perfmodel.GPU
	l     cuda.PlannedLaunch
	path  perfmodel.Path // this loop's path (the shortest for the best case, the longest for the worst)
	outer perfmodel.Path // the first term's path on the same side
}

// Pickers.

// innermostWith: the innermost loops whose body has every class in need and none in avoid.
func innermostWith(need, avoid []string) func([]perfmodel.Loop) []perfmodel.Loop {
	return func(ls []perfmodel.Loop) []perfmodel.Loop {
		var out []perfmodel.Loop
	next:
		for _, l := range perfmodel.Innermost(ls) {
			m := perfmodel.MixOf(l.Instrs)
			for _, c := range need {
				if m[c] == 0 {
					continue next
				}
			}
			for _, c := range avoid {
				if m[c] > 0 {
					continue next
				}
			}
			out = append(out, l)
		}
		return out
	}
}

// innermostFFMA: the innermost loops with at least min FFMA that read shared memory and neither
// global memory nor the SFU (the unrolled multiply-add loops over a staged tile).
func innermostFFMA(min int) func([]perfmodel.Loop) []perfmodel.Loop {
	return func(ls []perfmodel.Loop) []perfmodel.Loop {
		var out []perfmodel.Loop
		for _, l := range perfmodel.Innermost(ls) {
			m := perfmodel.MixOf(l.Instrs)
			if m["FFMA"] >= min && m["LDS"] > 0 && m["LDG"] == 0 && m["MUFU"] == 0 {
				out = append(out, l)
			}
		}
		return out
	}
}

// largestAtDepth: the loop with the largest body among those nested depth deep (0: outermost).
func largestAtDepth(depth int) func([]perfmodel.Loop) []perfmodel.Loop {
	return func(ls []perfmodel.Loop) []perfmodel.Loop {
		var best *perfmodel.Loop
		for i, l := range ls {
			d := 0
			for _, o := range ls {
				if o.Contains(l) {
					d++
				}
			}
			if d == depth && (best == nil || len(l.Instrs) > len(best.Instrs)) {
				best = &ls[i]
			}
		}
		if best == nil {
			return nil
		}
		return []perfmodel.Loop{*best}
	}
}

// storingVector picks the outermost loops holding a 16-byte store (the vectorised arm of a kernel
// that also has a scalar one).
func storingVector(ls []perfmodel.Loop) []perfmodel.Loop {
	var out []perfmodel.Loop
	for _, l := range ls {
		outer := true
		for _, o := range ls {
			if o.Contains(l) {
				outer = false
			}
		}
		if !outer {
			continue
		}
		for _, in := range l.Instrs {
			if strings.HasPrefix(in.Opcode, "STG") && strings.HasSuffix(in.Opcode, ".128") {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

func warpsOf(threads int) float64 { return float64((threads + 31) / 32) }

// The workloads. Sizes follow bench/ (score_cuda_test.go, chains_cuda_test.go, fgn_cuda_test.go,
// random_cuda_test.go); where the model's problem differs from the benchmark's grid it says so.
func workloads() []workload {
	var ws []workload
	for _, d := range []int{2, 16, 64} {
		ws = append(ws, gmmWorkload(1_000_000, 64, d))
	}
	ws = append(ws, empiricalWorkload(100_000, 100_000, 64))
	for _, d := range []int{2, 16} {
		ws = append(ws, chainsWorkload(100_000, 8, d, 1000))
	}
	ws = append(ws, fgnWorkload(1<<16, 1024, false), fgnWorkload(1<<16, 1024, true), normalWorkload(1<<21, 128))
	return ws
}

func gmmWorkload(n, k, d int) workload {
	const kind = ops.Diagonal
	fd := float64(d)
	w := workload{
		name:  "GMM score N=1e6 K=64 d=" + strconv.Itoa(d) + " diag f32",
		bench: "BenchmarkGMMScoreCUDA/f32/diagonal/N=1e6/K=64/d=" + strconv.Itoa(d),
		// bench/score_test.go gmmFLOPsPerPair: 6d + 6 per (row, component).
		flop: float64(n) * float64(k) * (6*fd + 6),
		launches: func(sms int) ([]cuda.PlannedLaunch, error) {
			l, err := cuda.PlanGMMScoreLaunch(sms, n, k, d, kind, tensor.F32)
			return []cuda.PlannedLaunch{l}, err
		},
	}
	// DRAM: x read and score written (N·d·4 each), log p written (N·4); the parameter table is
	// a few KiB and stays in L2.
	bytes := func(cuda.PlannedLaunch) float64 { return float64(n) * (8*fd + 4) }
	if d <= 16 {
		// Thread per row: the component loop may be unrolled, one MUFU.EX2 per component, so the
		// components per iteration are the EX2 on the path. Warp-iterations: N/32 rows per warp
		// × K / (components per iteration).
		w.models = []launchModel{{bytes: bytes, terms: []term{{
			what: "component loop (thread per row)",
			pick: innermostWith([]string{"MUFU", "LDS"}, []string{"LDG", "STS"}),
			iters: func(x iterCtx) float64 {
				per := math.Max(float64(x.path.Count("MUFU.EX2")), 1)
				return float64(n) / 32 * float64(k) / per
			},
		}}}}
		w.note = "the row kernel holds a copy of the component loop per covariance kind and per request " +
			"(gradient or not, logits stored or not); which one the benchmark runs (diagonal, the score " +
			"without the logits) is not read from the SASS, so the range spans all copies: the shortest " +
			"is the log density alone, the longest also stores the logits"
	} else {
		// Warp per row: one component per iteration (the iteration's 5-step SHFL butterfly is one
		// component's reduction). Warp-iterations: N·K.
		w.models = []launchModel{{bytes: bytes, terms: []term{{
			what:  "component loop (warp per row, SHFL butterfly)",
			pick:  innermostWith([]string{"SHFL", "MUFU", "LDS"}, nil),
			iters: func(iterCtx) float64 { return float64(n) * float64(k) },
		}}}}
		w.note = "two copies of the component loop (the range spans both); the shortest path skips the exp " +
			"(an underflowed term), so the best case is optimistic"
		if d == 64 {
			w.bench = ""
			w.note += "; the CUDA benchmark's grid has d ∈ {2, 16, 128, 512}, d = 64 lies between"
		}
	}
	return w
}

func empiricalWorkload(n, m, d int) workload {
	fd := float64(d)
	return workload{
		name:  "empirical denoiser N=M=1e5 d=64 f32",
		bench: "BenchmarkEmpiricalScoreCUDA/f32/N=1e5/M=1e5/d=64",
		// bench/score_test.go empiricalFLOPsPerPoint with Q = 1: 5d + 6 per (query, point).
		flop: float64(n) * float64(m) * (5*fd + 6),
		launches: func(sms int) ([]cuda.PlannedLaunch, error) {
			return cuda.PlanEmpiricalLaunches(sms, n, m, d, tensor.F32)
		},
		models: []launchModel{{
			fixedWork: true,
			// DRAM: queries, data and the output once each (the data, 25.6 MB, stays in L2 across
			// row tiles; the L2→SM traffic of restaging it per tile is not modelled).
			bytes: func(cuda.PlannedLaunch) float64 { return (2*float64(n) + float64(m)) * fd * 4 },
			terms: []term{{
				// The block's loop over data tiles: per block, ⌈M/64⌉ / splits iterations, every
				// warp of the block.
				what: "data-tile loop (64 queries × 64 points per block)",
				pick: largestAtDepth(0),
				iters: func(x iterCtx) float64 {
					tiles := math.Ceil(float64(m)/64) / float64(x.l.Blocks/((n+63)/64))
					return float64(x.l.Blocks) * warpsOf(x.l.Threads) * tiles
				},
			}, {
				// Per tile each thread issues 3·64·64·d/256 FFMA (the distance from differences,
				// 2d per pair; the denoiser's accumulation, d per pair); the FFMA not on the tile
				// loop's path come from repeating the unrolled FFMA loops.
				what: "FFMA loops (distance, accumulation)",
				pick: innermostFFMA(32),
				iters: func(x iterCtx) float64 {
					need := 3 * 64 * 64 * fd / 256
					extra := math.Max(need-float64(x.outer.Mix["FFMA"]), 0) / math.Max(float64(x.path.Mix["FFMA"]), 1)
					tiles := math.Ceil(float64(m)/64) / float64(x.l.Blocks/((n+63)/64))
					return float64(x.l.Blocks) * warpsOf(x.l.Threads) * tiles * extra
				},
			}},
		}},
		note: "tile loop path plus repeated FFMA loops; the path through the tile loop takes each nested " +
			"loop once and the FFMA loops come in variants (the range spans them); the kernel executes 3d " +
			"FFMA per pair (the distance from differences, 2d, and the accumulation, d), 6d FLOP against the " +
			"5d+6 counted (the benchmark's convention), so the FP32 FMA rate bounds it at N·M·3d / 33.5e12 " +
			"FMA/s ≈ 57 ms",
	}
}

func chainsWorkload(n, k, d, steps int) workload {
	return workload{
		name:  "MALA chains 1e5, K=8 iso, 1000 steps, d=" + strconv.Itoa(d) + " f32",
		bench: "BenchmarkChainsMALACUDA/f32/chains=1e5/d=" + strconv.Itoa(d),
		launches: func(sms int) ([]cuda.PlannedLaunch, error) {
			return []cuda.PlannedLaunch{cuda.PlanChainsLaunch(sms, n, k, d, ops.Isotropic, ops.ChainMALA, tensor.F32)}, nil
		},
		models: []launchModel{{
			fixedWork: true,
			// DRAM: the state (x, score, log p, acceptance) in and out once per launch; nothing
			// inside the step loop.
			bytes: func(cuda.PlannedLaunch) float64 { return float64(n) * (2*float64(d) + 2) * 4 * 2 },
			terms: []term{{
				// The step loop: ⌈n/32⌉ warps × steps (one chain per thread).
				what:  "step loop (thread per chain)",
				pick:  largestAtDepth(1),
				iters: func(iterCtx) float64 { return math.Ceil(float64(n)/32) * float64(steps) },
			}, {
				// The component loop, K / (EX2 per iteration) iterations per step, one of them on
				// the step loop's path.
				what: "component loop",
				pick: innermostWith([]string{"MUFU", "LDS"}, []string{"LDG", "STS"}),
				iters: func(x iterCtx) float64 {
					per := math.Max(float64(x.path.Count("MUFU.EX2")), 1)
					return math.Ceil(float64(n)/32) * float64(steps) * math.Max(float64(k)/per-1, 0)
				},
			}},
		}},
		note: "the benchmark runs K = 4 and 100 steps per call, the model K = 8 and 1000 steps; the step " +
			"loop's body branches (MH decision, tile staging, f64 paths): its shortest and longest paths " +
			"bracket a step; two copies of the component loop (the range spans both)",
	}
}

func fgnWorkload(n, paths int, path bool) workload {
	plan, err := ops.NewFGNPlan(0.7, n)
	ne := 2 * n
	if err == nil {
		ne = plan.EmbedSize()
	}
	m := float64(2 * ne)
	fp := float64(paths)
	pairs := math.Ceil(fp / 2) // two paths per complex transform
	perThread := func(work float64) func(iterCtx) float64 {
		return func(iterCtx) float64 { return work / 32 }
	}
	whole := largestAtDepth(0)
	// One FFT pass: each thread handles 8 values per tile iteration (tiles of 4096 values, 512
	// threads), so pairs·m/8 thread-iterations; DRAM: read and write pairs·m complex (8 B). The
	// last pass writes the increments instead: 2 × 4 B for each of the first n values.
	fftTerms := []term{{what: "tile loop (8 values per thread)", pick: whole, iters: perThread(pairs * m / 8)}}
	last := launchModel{bytes: func(cuda.PlannedLaunch) float64 { return pairs*m*8 + fp*float64(n)*4 }, terms: fftTerms}
	// The first pass generates its tile's signal: 2048 Box–Muller pair slots per tile of 4096
	// values, of which the 5·256 of the 5 drawing columns of 8 (radix 512) are shared out, 2.5 per
	// thread (the tile loop's path takes the slot loop once; 1.5 more), each drawing a Philox
	// block of both paths and forming one or two pairs; DRAM: it only writes its output.
	first := launchModel{bytes: func(cuda.PlannedLaunch) float64 { return pairs * m * 8 },
		terms: append(fftTerms, term{what: "slot loop (draws of the tile's pairs)", pick: largestAtDepth(1),
			iters: perThread(1.5 * pairs * m / 8)})}
	w := workload{
		name:  "fGn Davies–Harte n=2^16, 1024 paths f32",
		bench: "BenchmarkFGNCUDA/f32/increments/n=64Ki/paths=1024",
		launches: func(sms int) ([]cuda.PlannedLaunch, error) {
			return cuda.PlanFGNLaunches(sms, paths, n, ne, tensor.F32, path), nil
		},
		models: []launchModel{first, last},
		note: "the FFT passes' tile loop holds all radix stages, its paths differ by the twiddle, bounds " +
			"and extraction branches; the first pass's slot loop spans a slot that forms one pair (the " +
			"shortest path) to one that forms two (the longest)",
	}
	if path {
		// fgn_cumsum: one block of 8 warps per path walks it in tiles of 256 values; the row loop's
		// path holds one tile, the tile loop counts the others. DRAM: the increments read and the
		// path written, 4 B each per value.
		tiles := math.Ceil(float64(n) / 256)
		w.name = "fBM path (fGn summed) n=2^16, 1024 paths f32"
		w.bench = "BenchmarkFGNCUDA/f32/path/n=64Ki/paths=1024"
		w.models = append(w.models, launchModel{
			bytes: func(cuda.PlannedLaunch) float64 { return 2 * fp * float64(n) * 4 },
			terms: []term{
				{what: "row loop (one path per block)", pick: largestAtDepth(0), iters: func(iterCtx) float64 { return fp * 8 }},
				{what: "tile loop (256 values, a block scan)", pick: largestAtDepth(1),
					iters: func(iterCtx) float64 { return fp * 8 * (tiles - 1) }},
			}})
		w.note += "; the path form adds fgn_cumsum's block scan over the increments the last pass wrote"
	}
	return w
}

func normalWorkload(chains, dim int64) workload {
	total := float64(chains * dim)
	return workload{
		name:  "Philox normals 2^28 f32",
		bench: "BenchmarkNormalCUDA/f32/n=256Mi/dim=128",
		note: "dim = 128 (2^21 rows): the aligned arm of the fill loop (one 16-byte store per Philox block; " +
			"the scalar arm, for dim not a multiple of 4 or an unaligned destination, is longer); with dim = 2 " +
			"every Philox block serves half a row and the work per normal doubles",
		launches: func(sms int) ([]cuda.PlannedLaunch, error) {
			return []cuda.PlannedLaunch{cuda.PlanNormalLaunch(sms, chains, dim, tensor.F32)}, nil
		},
		models: []launchModel{{
			// DRAM: the output, 4 B per normal, written once.
			bytes: func(cuda.PlannedLaunch) float64 { return total * 4 },
			// One Philox block (4 normals) per thread iteration: total/4/32 warp-iterations, in
			// the aligned arm (dim a multiple of 4, a 16-byte store per block).
			terms: []term{{what: "Philox block loop (4 normals, aligned)", pick: storingVector,
				iters: func(iterCtx) float64 { return total / 4 / 32 }}},
		}},
	}
}
