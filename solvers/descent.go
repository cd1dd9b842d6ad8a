package solvers

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// This file holds what FPGD and SGDWOR share: N chains of noisy gradient descent on an Objective,
// run on the host in float64,
//
//	x_{k+1} = x_k − h g_k ∇f(x_k) + σ·scale·g_k ξ_k,   k = 0 … Steps−1,
//
// with ξ_k the k-th value of one noise path per (chain, coordinate), generated on the backend in
// blocks of chains, and g_k a per-step gain (1 for FPGD, the learning-rate schedule u_{t_k} for
// SGDWOR); the trace, the escape times and the non-finite report.

// descentSpec is one run of the shared recursion (validated by the caller).
type descentSpec struct {
	steps, thin int
	// h is the step size; sigma·scale multiplies every noise value (sigma = 0: no noise is drawn).
	h, sigma, scale float64
	// gain holds g_k for k < steps; nil means g_k = 1 (and the step is computed exactly as
	// x − h∇f + σ·scale·ξ).
	gain       []float64
	escape     *EscapeSpec
	noiseBlock int
	progress   Progress
}

// pathSource generates the noise of blocks of chains: generate(c0, c1) returns, on the host, the
// paths of chains [c0, c1), row (i−c0)·d + j of length steps for chain i, coordinate j.
type pathSource interface {
	generate(c0, c1 int) ([]float64, error)
}

// descentOutput is what descend returns; its tensors live on the backend's device.
type descentOutput struct {
	final, trace *tensor.Tensor
	traceSteps   []int
	escape       []int // nil without an EscapeSpec
	gradEvals    int64
	nan          NaNReport
}

// result is the output as the solvers return it.
func (o descentOutput) result() DescentResult {
	return DescentResult{Final: o.final, Trace: o.trace, TraceSteps: o.traceSteps, Escape: o.escape,
		GradEvals: o.gradEvals, NaN: o.nan}
}

// DescentResult is what the noisy gradient descents (FPGD, SGDWOR) return. Tensors live on the
// backend's device; Close frees them.
type DescentResult struct {
	// Final holds the states after Steps steps, (N, d), in the dtype of x0.
	Final *tensor.Tensor
	// Trace (with Thin > 0) holds states along the run, (T, N, d); TraceSteps[k] is the step of
	// row k.
	Trace      *tensor.Tensor
	TraceSteps []int
	// Escape holds, with an EscapeSpec, each chain's escape step (−1: never); nil otherwise.
	Escape []int
	// GradEvals is the number of gradient evaluations, N·Steps (all on the host).
	GradEvals int64
	// NaN reports the chains whose state became NaN or ±Inf (checked after every step; Step is the
	// first step at which one was seen, 0 for a non-finite start).
	NaN NaNReport
}

// Close frees the result's tensors.
func (r *DescentResult) Close() error {
	if r == nil {
		return nil
	}
	var errs []error
	for _, t := range []*tensor.Tensor{r.Final, r.Trace} {
		if t != nil {
			errs = append(errs, t.Close())
		}
	}
	return errors.Join(errs...)
}

// EscapeStats summarises Escape: the fraction of chains that escaped within the budget, and the
// mean and median escape step over those chains (NaN when none escaped or there is no Escape).
// Chains that did not escape are censored at the budget, so the mean and median describe the
// escaped chains only; compare runs by the fraction first.
func (r *DescentResult) EscapeStats() (fraction, mean, median float64) {
	return EscapeStats(r.Escape)
}

// checkDescentStart checks the backend, the objective and the initial state x0 (N, d) of a run,
// and returns N and d.
func checkDescentStart(b ops.Backend, f Objective, x0 *tensor.Tensor) (n, d int, err error) {
	if b == nil {
		return 0, 0, fmt.Errorf("nil backend")
	}
	if f == nil {
		return 0, 0, fmt.Errorf("nil objective")
	}
	if x0 == nil || x0.Closed() {
		return 0, 0, fmt.Errorf("initial state is nil or closed")
	}
	if x0.Device() != b.Device() {
		return 0, 0, fmt.Errorf("initial state is on %s, the backend runs on %s", x0.Device().Name(), b.Device().Name())
	}
	if x0.Rank() != 2 {
		return 0, 0, fmt.Errorf("initial state has shape %v: want (chains, dim)", x0.Shape())
	}
	n, d = x0.Dim(0), x0.Dim(1)
	if f.Dim() < 1 {
		return 0, 0, fmt.Errorf("objective has dimension %d: must be ≥ 1", f.Dim())
	}
	if d != f.Dim() {
		return 0, 0, fmt.Errorf("initial state has dimension %d, the objective %d", d, f.Dim())
	}
	return n, d, nil
}

// checkDescentChains checks the chain range [first, first+n) (noise paths are draw chains
// c·d + j, which must stay below 2^32) and the escape spec against the dimension d.
func checkDescentChains(n, d int, first uint64, e *EscapeSpec) error {
	if err := checkChains("chains", n, first); err != nil {
		return err
	}
	if last := (first + uint64(n)) * uint64(d); last > ops.MaxChains {
		return fmt.Errorf("chains %d..%d × dim %d: the noise paths' chain indices (chain·dim + coordinate) must be below 2^32",
			first, first+uint64(n), d)
	}
	if e != nil {
		if e.Coord < 0 || e.Coord >= d {
			return fmt.Errorf("escape coordinate %d: must be in [0, %d)", e.Coord, d)
		}
		if math.IsNaN(e.Threshold) {
			return fmt.Errorf("escape threshold is NaN")
		}
	}
	return nil
}

// descend runs the recursion from the host states x (N·d, row-major, updated in place) and
// returns the final states and the trace as tensors of dtype dt on b's device. The noise of
// chains [c0, c1) comes from noise.generate in blocks of ⌊noiseBlock/(d·steps)⌋ chains (at least
// one); with sigma = 0 nothing is drawn.
func descend(b ops.Backend, f Objective, dt tensor.DType, x []float64, n, d int, spec descentSpec, noise pathSource) (*descentOutput, error) {
	run := &descentRun{spec: spec, f: f, n: n, d: d, x: x,
		prog: newProgress(spec.progress, int64(n)*int64(spec.steps), nil)}
	run.init()
	block := 1 // chains per noise call: noiseBlock/(d·steps), at least one (no product that can overflow)
	if perChain := spec.noiseBlock / d; spec.steps <= perChain {
		block = max(1, perChain/spec.steps)
	}
	if spec.sigma == 0 {
		block = n // no noise is drawn
	}
	for c0 := 0; c0 < n; c0 += block {
		c1 := min(c0+block, n)
		var xi []float64
		if spec.sigma > 0 {
			var err error
			if xi, err = noise.generate(c0, c1); err != nil {
				return nil, err
			}
		}
		run.chains(c0, c1, xi)
	}
	if run.prog != nil { // the last report (chains reports at most every progressSync)
		run.prog.fn(run.prog.total, run.prog.total)
	}

	out := &descentOutput{gradEvals: int64(n) * int64(spec.steps), nan: run.nanReport()}
	if spec.escape != nil {
		out.escape = run.escape
	}
	dev := b.Device()
	var err error
	if out.final, err = toDevice(dev, dt, run.x, n, d); err != nil {
		return nil, fmt.Errorf("final states: %w", err)
	}
	if spec.thin > 0 {
		rows := spec.steps/spec.thin + 1
		if out.trace, err = toDevice(dev, dt, run.trace, rows, n, d); err != nil {
			closeAll(out.final)
			return nil, fmt.Errorf("trace: %w", err)
		}
		for k := 0; k < rows; k++ {
			out.traceSteps = append(out.traceSteps, k*spec.thin)
		}
	}
	return out, nil
}

// toDevice builds a tensor of dtype dt on dev from host values.
func toDevice(dev tensor.Device, dt tensor.DType, v []float64, shape ...int) (*tensor.Tensor, error) {
	h, err := tensor.FromFloat64s(dt, v, shape...)
	if err != nil {
		return nil, err
	}
	if dev.Kind() == tensor.KindCPU {
		return h, nil
	}
	defer h.Close()
	return h.CopyTo(dev)
}

// descentRun is the host state of a run: x (N·d, row-major), the trace, escape steps and the
// steps at which chains turned non-finite.
type descentRun struct {
	spec   descentSpec
	f      Objective
	n, d   int
	x      []float64
	trace  []float64
	escape []int
	nanAt  []int // −1: finite throughout
	// prog (nil: no reports) receives chain-steps; chainsDone counts the chains finished.
	prog       *progress
	chainsDone atomic.Int64
}

func (r *descentRun) init() {
	n, d := r.n, r.d
	if r.spec.thin > 0 {
		r.trace = make([]float64, (r.spec.steps/r.spec.thin+1)*n*d)
		copy(r.trace, r.x)
	}
	r.escape = make([]int, n)
	r.nanAt = make([]int, n)
	for i := 0; i < n; i++ {
		r.escape[i], r.nanAt[i] = -1, -1
		row := r.x[i*d : (i+1)*d]
		if e := r.spec.escape; e != nil && e.crossed(row[e.Coord]) {
			r.escape[i] = 0
		}
		if !allFinite(row) {
			r.nanAt[i] = 0
		}
	}
}

func allFinite(v []float64) bool {
	for _, e := range v {
		if math.IsNaN(e) || math.IsInf(e, 0) {
			return false
		}
	}
	return true
}

// chains runs chains [c0, c1) through all steps. xi holds their noise paths, row (i−c0)·d + j of
// length steps for chain i, coordinate j (nil when σ = 0).
func (r *descentRun) chains(c0, c1 int, xi []float64) {
	workers := runtime.GOMAXPROCS(0)
	if work := (c1 - c0) * r.spec.steps * r.d; work < 1<<15 {
		workers = 1
	}
	workers = min(workers, c1-c0)
	var wg sync.WaitGroup
	chunk := (c1 - c0 + workers - 1) / workers
	for lo := c0; lo < c1; lo += chunk {
		hi := min(lo+chunk, c1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := make([]float64, r.d)
			for i := lo; i < hi; i++ {
				r.chain(i, c0, xi, g)
				r.chainsDone.Add(1)
			}
		}()
	}
	if r.prog == nil {
		wg.Wait()
		return
	}
	// Report from this goroutine while the workers run (the host does all the work, so there
	// is no device to synchronise).
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(max(progressSync, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-finished:
			return
		case <-tick.C:
			if done := r.chainsDone.Load(); done > 0 && done < int64(r.n) {
				r.prog.fn(done*int64(r.spec.steps), r.prog.total)
			}
		}
	}
}

// chain runs chain i (its noise is block row i − c0) with gradient scratch g.
func (r *descentRun) chain(i, c0 int, xi []float64, g []float64) {
	spec, d, steps := r.spec, r.d, r.spec.steps
	h, amp := spec.h, spec.sigma*spec.scale
	x := r.x[i*d : (i+1)*d]
	var paths []float64
	if xi != nil {
		paths = xi[(i-c0)*d*steps : (i-c0+1)*d*steps]
	}
	e := spec.escape
	for s := 0; s < steps; s++ {
		r.f.Grad(g, x)
		hs, as := h, amp
		if spec.gain != nil {
			hs, as = h*spec.gain[s], amp*spec.gain[s]
		}
		finite := true
		for j := range x {
			v := x[j] - hs*g[j]
			if paths != nil {
				v += as * paths[j*steps+s]
			}
			x[j] = v
			if math.IsNaN(v) || math.IsInf(v, 0) {
				finite = false
			}
		}
		if !finite && r.nanAt[i] < 0 {
			r.nanAt[i] = s + 1
		}
		if e != nil && r.escape[i] < 0 && e.crossed(x[e.Coord]) {
			r.escape[i] = s + 1
		}
		if spec.thin > 0 && (s+1)%spec.thin == 0 {
			row := (s + 1) / spec.thin
			copy(r.trace[(row*r.n+i)*d:(row*r.n+i+1)*d], x)
		}
	}
}

func (r *descentRun) nanReport() NaNReport {
	rep := NaNReport{First: -1, Step: -1}
	for i, s := range r.nanAt {
		if s < 0 {
			continue
		}
		rep.Chains++
		rep.Rows = append(rep.Rows, i)
		if rep.First < 0 {
			rep.First = i
		}
		if rep.Step < 0 || s < rep.Step {
			rep.Step = s
		}
	}
	return rep
}
