package main

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/scorekit/scorekit/internal/perfmodel"
	"github.com/scorekit/scorekit/ops/cuda"
)

// gpus are the devices the model predicts for, each with the ptxas target it assembles for.
var gpus = []perfmodel.GPU{perfmodel.H100, perfmodel.A100}

// loopResult is one term of one launch on one device.
type loopResult struct {
	what                string
	candidates          int
	static              [2]int // smallest and largest static body over the candidates
	short, long         perfmodel.Path
	itersLo, itersHi    float64
	shortAddr, longAddr [2]int
}

// launchResult is one launch of a workload on one device.
type launchResult struct {
	l           cuda.PlannedLaunch
	info        entryInfo
	occ         perfmodel.Occupancy
	resident    int // warps per SM the grid actually keeps resident
	eff         float64
	imbalance   float64
	loops       []loopResult
	lo, hi      perfmodel.Bounds
	best, worst float64 // seconds, all Count launches
	limit       string
}

// workloadResult is a workload on one device.
type workloadResult struct {
	launches    []launchResult
	best, worst float64
	limit       string
	bounds      perfmodel.Bounds // sum over the launches of the best-case bounds
}

func evaluate(tc *toolchain, w workload, g perfmodel.GPU) (workloadResult, error) {
	ls, err := w.launches(g.SMs)
	if err != nil {
		return workloadResult{}, fmt.Errorf("%s: plan: %w", w.name, err)
	}
	if len(ls) != len(w.models) {
		return workloadResult{}, fmt.Errorf("%s: the planner makes %d launches, the model describes %d", w.name, len(ls), len(w.models))
	}
	var res workloadResult
	limits := map[string]float64{}
	for i, l := range ls {
		lr, err := evaluateLaunch(tc, l, w.models[i], g)
		if err != nil {
			return res, fmt.Errorf("%s: %s: %w", w.name, l.Entry, err)
		}
		res.launches = append(res.launches, lr)
		res.best += lr.best
		res.worst += lr.worst
		limits[lr.limit] += lr.worst
		c := float64(l.Count)
		res.bounds.Issue += lr.lo.Issue * c
		res.bounds.FP32 += lr.lo.FP32 * c
		res.bounds.SFU += lr.lo.SFU * c
		res.bounds.Shuffle += lr.lo.Shuffle * c
		res.bounds.DRAM += lr.lo.DRAM * c
	}
	top := 0.0
	for name, t := range limits {
		if t > top || (t == top && name < res.limit) {
			top, res.limit = t, name
		}
	}
	return res, nil
}

func evaluateLaunch(tc *toolchain, l cuda.PlannedLaunch, m launchModel, g perfmodel.GPU) (launchResult, error) {
	a, err := tc.module(l.Module, g.Arch)
	if err != nil {
		return launchResult{}, err
	}
	info, ok := a.entries[l.Entry]
	if !ok {
		return launchResult{}, fmt.Errorf("ptxas reported no entry %s in %s.ptx for %s", l.Entry, l.Module, g.Arch)
	}
	f, ok := perfmodel.Find(a.sass, l.Entry)
	if !ok {
		return launchResult{}, fmt.Errorf("no SASS for %s (%s)", l.Entry, g.Arch)
	}
	lr := launchResult{l: l, info: info, imbalance: 1}
	lr.occ, err = perfmodel.Occupy(g, perfmodel.Kernel{Regs: info.Regs, Threads: l.Threads,
		StaticShared: info.StaticShared, DynamicShared: l.SharedMem})
	if err != nil {
		return lr, err
	}
	wpb := (l.Threads + 31) / 32
	perSM := (l.Blocks + g.SMs - 1) / g.SMs
	lr.resident = min(lr.occ.Warps, perSM*wpb)
	lr.eff = perfmodel.IssueEfficiency(lr.resident)
	if m.fixedWork {
		lr.imbalance = float64(perSM*g.SMs) / float64(l.Blocks)
	}
	lo, hi, loopRes, err := countLoops(f, m.terms, g, l)
	if err != nil {
		return lr, fmt.Errorf("%s (%s): %w", l.Entry, g.Arch, err)
	}
	lr.loops = loopRes
	lo.DRAMBytes = m.bytes(l)
	hi.DRAMBytes = lo.DRAMBytes
	lr.lo = perfmodel.BoundsOf(g, lo, lr.imbalance)
	lr.hi = perfmodel.BoundsOf(g, hi, lr.imbalance)
	best, worst, limit := perfmodel.Predict(lr.lo, lr.hi, lr.eff)
	lr.best, lr.worst, lr.limit = best*float64(l.Count), worst*float64(l.Count), limit
	return lr, nil
}

// report writes the markdown tables.
func report(out io.Writer, tc *toolchain, ws []workload, commit, date string, heading string) error {
	results := make([][]workloadResult, len(ws))
	for i, w := range ws {
		for _, g := range gpus {
			r, err := evaluate(tc, w, g)
			if err != nil {
				return err
			}
			results[i] = append(results[i], r)
		}
	}
	p := func(format string, a ...any) { fmt.Fprintf(out, format, a...) }
	p("%s Performance model (predictions, not measurements)\n\n", heading)
	p("**PREDICTIONS of a paper model, not measurements.** Made by `make perf-model` (`go run ./bench/perfmodel`) "+
		"on %s at commit %s from `ptxas %s -v` and `cuobjdump -sass` of the committed PTX (sm_80 for the A100, "+
		"sm_90 for the H100), the launch planners of ops/cuda and a table of the workloads in bench/perfmodel/workloads.go. "+
		"No GPU ran. Measured rows elsewhere on this page take precedence.\n\n", date, commit, tc.version())
	p("Devices: %s; %s (the A100 SXM 80 GB has 2.0 TB/s: its DRAM bounds are 1.29× shorter).\n\n",
		describe(perfmodel.H100), describe(perfmodel.A100))
	p("Rules. Occupancy: registers rounded up to %d per thread and %d per warp, %d B of shared memory reserved per block, "+
		"at most %d warps and %d blocks per SM. Hot loops: backward branches in the SASS; per iteration the shortest and the "+
		"longest path through the body (nested loops once each) bracket the instructions issued. Bounds: issue = "+
		"warp-instructions / (SMs · 4 · clock); FP32 = FFMA+FMUL+FADD lanes / FP32 lanes; SFU = MUFU lanes / (16 per SM and clock); "+
		"SHFL = shuffle lanes / (32 per SM and clock); DRAM = bytes by design / bandwidth. Best = largest bound with the shortest "+
		"paths at full issue; worst = largest bound with the longest paths, SM-side bounds divided by the issue efficiency "+
		"v/(v+1) for v resident warps per scheduler and DRAM divided by %.1f. Blocks with fixed work (empirical, chains) are "+
		"charged the busiest SM's ⌈blocks/SMs⌉.\n\n", perfmodel.RegUnit, perfmodel.WarpRegUnit, perfmodel.H100.ReservedPerBlock,
		perfmodel.H100.MaxWarpsPerSM, perfmodel.H100.MaxBlocksPerSM, perfmodel.DRAMEfficiency)

	p("Predicted times (ms):\n\n")
	p("| workload | H100 best–worst | H100 limit | A100 best–worst | A100 limit | H100 bounds issue / FP32 / SFU / SHFL / DRAM | H100 counted FLOP/s (worst–best) |\n")
	p("|---|---:|---|---:|---|---|---:|\n")
	for i, w := range ws {
		h, a := results[i][0], results[i][1]
		b := h.bounds
		rate := "—"
		if w.flop > 0 {
			peak := perfmodel.H100.FP32TFLOPs * 1e12
			rate = fmt.Sprintf("%.3g–%.3g TFLOP/s (%.0f–%.0f %% of FP32)", w.flop/h.worst/1e12, w.flop/h.best/1e12,
				100*w.flop/h.worst/peak, 100*w.flop/h.best/peak)
		}
		p("| %s | %s–%s | %s | %s–%s | %s | %s / %s / %s / %s / %s | %s |\n", w.name, ms(h.best), ms(h.worst), h.limit,
			ms(a.best), ms(a.worst), a.limit, ms(b.Issue), ms(b.FP32), ms(b.SFU), ms(b.Shuffle), ms(b.DRAM), rate)
	}
	p("\nLaunches the planners choose, and their occupancy (A100 = sm_80, H100 = sm_90):\n\n")
	p("| workload | entry (×launches) | plan | block | grid H100/A100 | regs sm_80/sm_90 | spill B | smem static+dyn B | blocks/SM A100 (limit) | blocks/SM H100 (limit) | warps/SM A100/H100 (resident) | H100 ms | A100 ms |\n")
	p("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, w := range ws {
		h, a := results[i][0], results[i][1]
		for j := range h.launches {
			lh, la := h.launches[j], a.launches[j]
			p("| %s | `%s` ×%d | %s | %d | %d/%d | %d/%d | %d/%d | %d+%d | %d (%s) | %d (%s) | %d/%d (%d/%d) | %s–%s | %s–%s |\n",
				w.name, lh.l.Entry, lh.l.Count, lh.l.Plan, lh.l.Threads, lh.l.Blocks, la.l.Blocks,
				la.info.Regs, lh.info.Regs, la.info.SpillStores+la.info.SpillLoads, lh.info.SpillStores+lh.info.SpillLoads,
				lh.info.StaticShared, lh.l.SharedMem, la.occ.Blocks, la.occ.Limit, lh.occ.Blocks, lh.occ.Limit,
				la.occ.Warps, lh.occ.Warps, la.resident, lh.resident, ms(lh.best), ms(lh.worst), ms(la.best), ms(la.worst))
		}
	}
	p("\nHot loops in the sm_90 SASS (per warp and iteration; mix on the longest path):\n\n")
	p("| workload | entry | loop | candidates | instr per iteration: shortest path of the best-case loop – longest of the worst-case loop (static bodies) | FFMA/FMUL/FADD | MUFU (EX2) | SHFL | LDS/STS | LDG/STG | BAR | IMAD | FP64 | warp-iterations best–worst |\n")
	p("|---|---|---|---:|---:|---|---:|---:|---|---|---:|---:|---:|---:|\n")
	for i, w := range ws {
		for _, lr := range results[i][0].launches {
			for _, r := range lr.loops {
				m := r.long.Mix
				static := fmt.Sprint(r.static[0])
				if r.static[1] != r.static[0] {
					static += "–" + fmt.Sprint(r.static[1])
				}
				span := fmt.Sprintf("%d at 0x%x (EX2 %d) – %d at 0x%x (EX2 %d)", r.short.Instrs, r.shortAddr[0],
					r.short.Count("MUFU.EX2"), r.long.Instrs, r.longAddr[0], r.long.Count("MUFU.EX2"))
				if r.shortAddr == r.longAddr {
					span = fmt.Sprintf("%d–%d at 0x%x", r.short.Instrs, r.long.Instrs, r.longAddr[0])
				}
				p("| %s | `%s` | %s | %d | %s (%s) | %d/%d/%d | %d (%d) | %d | %d/%d | %d/%d | %d | %d | %d | %.3g–%.3g |\n",
					w.name, lr.l.Entry, r.what, r.candidates, span, static,
					m["FFMA"], m["FMUL"], m["FADD"], m["MUFU"], r.long.Count("MUFU.EX2"), m["SHFL"], m["LDS"], m["STS"], m["LDG"], m["STG"],
					m["BAR"], m["IMAD"], m["FP64"], r.itersLo, r.itersHi)
			}
		}
	}
	p("\nWhere the model is unsure:\n\n")
	for _, w := range ws {
		line := "no benchmark of this size"
		if w.bench != "" {
			line = "benchmark `" + w.bench + "`"
		}
		if w.note != "" {
			line += "; " + w.note
		}
		p("- %s: %s.\n", w.name, line)
	}
	p("- All: static paths, not profiles: the branch mix actually taken, cache behaviour (L2 traffic, bank conflicts), " +
		"instruction latencies beyond the issue-efficiency rule, clocks below boost and launch overheads are not modelled.\n")
	return nil
}

func describe(g perfmodel.GPU) string {
	return fmt.Sprintf("%s (%s): %d SMs, %.2f GHz, %d KiB shared memory per SM, %d warps/SM, FP32 %.1f TFLOP/s, HBM %.4g TB/s",
		g.Name, g.Arch, g.SMs, g.ClockGHz, g.SharedPerSM>>10, g.MaxWarpsPerSM, g.FP32TFLOPs, g.HBMTBs)
}

func ms(s float64) string {
	v := s * 1e3
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 0.1:
		return fmt.Sprintf("%.2f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", v), "0"), ".")
}

// choice is one way to map a launch's terms onto loops: a candidate per term and its paths.
type choice struct {
	loops        []perfmodel.Loop
	short, long  []perfmodel.Path
	itLo, itHi   []float64
	countLo, cHi perfmodel.Counts
}

// countLoops maps the terms onto the loops of an entry. With one term every candidate loop is
// tried; with two (an outer loop and a nested hot loop) every pair, the outer loop's paths taken
// through the nested loop, so that both cases run the hot loop. The best case is the pair with
// the fewest warp-instructions on the shortest paths, the worst the pair with the most on the
// longest.
func countLoops(f perfmodel.Function, terms []term, g perfmodel.GPU, l cuda.PlannedLaunch) (lo, hi perfmodel.Counts, res []loopResult, err error) {
	if len(terms) == 0 || len(terms) > 2 {
		return lo, hi, nil, fmt.Errorf("the model handles one or two loop terms per launch, not %d", len(terms))
	}
	loops := perfmodel.Loops(f)
	cands := make([][]perfmodel.Loop, len(terms))
	for i, t := range terms {
		if cands[i] = t.pick(loops); len(cands[i]) == 0 {
			return lo, hi, nil, fmt.Errorf("no loop matches %q: the kernel changed shape; see -loops", t.what)
		}
	}
	var choices []choice
	add := func(ls []perfmodel.Loop, short, long []perfmodel.Path) {
		c := choice{loops: ls, short: short, long: long}
		for i, t := range terms {
			itLo := t.iters(iterCtx{gpu: g, l: l, path: short[i], outer: short[0]})
			itHi := t.iters(iterCtx{gpu: g, l: l, path: long[i], outer: long[0]})
			c.itLo, c.itHi = append(c.itLo, itLo), append(c.itHi, itHi)
			c.countLo = c.countLo.Add(perfmodel.FromMix(short[i].Mix, itLo))
			c.cHi = c.cHi.Add(perfmodel.FromMix(long[i].Mix, itHi))
		}
		choices = append(choices, c)
	}
	for _, c0 := range cands[0] {
		if len(terms) == 1 {
			if s, lg, ok := perfmodel.Paths(f, c0); ok {
				add([]perfmodel.Loop{c0}, []perfmodel.Path{s}, []perfmodel.Path{lg})
			}
			continue
		}
		for _, c1 := range cands[1] {
			s1, l1, ok1 := perfmodel.Paths(f, c1)
			s0, l0, ok0 := perfmodel.Paths(f, c0)
			if c0.Contains(c1) {
				s0, l0, ok0 = perfmodel.PathsThrough(f, c0, c1.Start)
			}
			if ok0 && ok1 {
				add([]perfmodel.Loop{c0, c1}, []perfmodel.Path{s0, s1}, []perfmodel.Path{l0, l1})
			}
		}
	}
	if len(choices) == 0 {
		return lo, hi, nil, fmt.Errorf("no path closes the loops of %q", terms[0].what)
	}
	best, worst := choices[0], choices[0]
	for _, c := range choices[1:] {
		if c.countLo.Instrs < best.countLo.Instrs {
			best = c
		}
		if c.cHi.Instrs > worst.cHi.Instrs {
			worst = c
		}
	}
	for i, t := range terms {
		r := loopResult{what: t.what, candidates: len(cands[i]), static: [2]int{math.MaxInt, 0},
			short: best.short[i], long: worst.long[i], itersLo: best.itLo[i], itersHi: worst.itHi[i],
			shortAddr: [2]int{best.loops[i].Start, best.loops[i].End}, longAddr: [2]int{worst.loops[i].Start, worst.loops[i].End}}
		for _, c := range cands[i] {
			r.static[0], r.static[1] = min(r.static[0], len(c.Instrs)), max(r.static[1], len(c.Instrs))
		}
		res = append(res, r)
	}
	return best.countLo, worst.cHi, res, nil
}
