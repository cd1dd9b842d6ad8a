package solvers

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// Several devices. Chains are independent and chain i is a pure function of (seed, i) (see Site),
// so a run of N chains spread over several backends — each running a contiguous range of chain
// indices with its FirstChain — gives the chains of the single run; RunOn gathers them in order.

// SplitRange returns the range [lo, hi) of part k of n rows split into parts contiguous parts:
// ⌊kn/parts⌋ to ⌊(k+1)n/parts⌋ (sizes differ by at most one; a part is empty when parts > n).
func SplitRange(n, parts, k int) (lo, hi int) {
	at := func(i int) int {
		h, l := bits.Mul64(uint64(i), uint64(n))
		q, _ := bits.Div64(h, l, uint64(parts))
		return int(q)
	}
	return at(k), at(k + 1)
}

// RunOn runs the method for n chains spread over the backends: backend k runs the chains
// o.FirstChain + [⌊kn/B⌋, ⌊(k+1)n/B⌋) (SplitRange), all backends at once, each on its own
// goroutine (a CUDA device serialises its work on its own thread), and the parts are gathered on
// the host in chain order. With one backend it is m.Run followed by a copy to the host.
//
// The gathered run is the single run's, bit for bit, when every backend computes as the single
// run's would (backends of one kind: the CPU, or GPUs of one model): samples, trajectories (the
// chain axis is axis 1), acceptance rates, per-chain step sizes and their geometric mean, the
// chain-evaluation and clamp counts (summed), and the NaN report (rows in the whole run); the
// op-call counts are summed too, so they count every backend's calls. What
// is a property of the run rather than of a chain (steps, the grids, RTK's segment step sizes) is
// the first part's, and the parts must agree on it. metropolis-constrained's rejection rate is the
// parts' rates weighted by their chains: the single run's to rounding.
//
// Progress, when set, receives the least progress of the parts (so done reaches total when the
// last part finishes), from the parts' goroutines one call at a time. When a part fails the others
// still run to their end (reports stop), and the parts' errors are returned, each naming its
// backend and chains. The result's tensors are on the host.
func (m Method) RunOn(backends []ops.Backend, t target.Target, n int, dt tensor.DType, o MethodOptions) (*MethodRun, error) {
	if len(backends) == 0 {
		return nil, fmt.Errorf("%s: no backend to run on", m.Name)
	}
	if err := checkChains(m.Name, n, o.FirstChain); err != nil {
		return nil, err
	}
	parts := min(len(backends), n) // no empty part
	if o.X0 != nil && len(o.X0)%n != 0 {
		return nil, fmt.Errorf("%s: X0 has %d values, not a multiple of the %d chains", m.Name, len(o.X0), n)
	}
	runs := make([]*MethodRun, parts)
	errs := make([]error, parts)
	prog := newPartsProgress(o.Progress, parts)
	var wg sync.WaitGroup
	for k := 0; k < parts; k++ {
		lo, hi := SplitRange(n, parts, k)
		po := o
		po.FirstChain = o.FirstChain + uint64(lo)
		if o.X0 != nil {
			d := len(o.X0) / n
			po.X0 = o.X0[lo*d : hi*d]
		}
		po.Progress = prog.part(k)
		wg.Add(1)
		go func(k int, b ops.Backend, rows int, po MethodOptions) {
			defer wg.Done()
			r, err := m.Run(b, t, rows, dt, po)
			if err == nil {
				err = b.Device().Synchronize()
			}
			if err == nil {
				err = r.toHost()
			}
			if err != nil {
				prog.fail()
				if r != nil {
					r.Close()
				}
				errs[k] = fmt.Errorf("%s on %s (chains %d…%d): %w", m.Name, b.Device().Name(), po.FirstChain, po.FirstChain+uint64(rows)-1, err)
				return
			}
			runs[k] = r
		}(k, backends[k], hi-lo, po)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, r := range runs {
			if r != nil {
				r.Close()
			}
		}
		return nil, err
	}
	if parts == 1 {
		return runs[0], nil
	}
	defer func() {
		for _, r := range runs {
			r.Close()
		}
	}()
	return gatherRuns(runs, n)
}

// toHost replaces the run's tensors by host copies (no-op for tensors already there).
func (r *MethodRun) toHost() error {
	for _, p := range []**tensor.Tensor{&r.Samples, &r.Trace, &r.Denoised, &r.AugmentedTrace} {
		if *p == nil || (*p).OnHost() {
			continue
		}
		h, err := (*p).CopyTo(tensor.CPU())
		if err != nil {
			return fmt.Errorf("copy the result to the host: %w", err)
		}
		(*p).Close()
		*p = h
	}
	return nil
}

// gatherRuns joins the parts' host results into the run of n chains (see RunOn).
func gatherRuns(runs []*MethodRun, n int) (*MethodRun, error) {
	first := runs[0]
	out := &MethodRun{Result: &Result{TraceSteps: first.TraceSteps, SegmentStepSizes: first.SegmentStepSizes,
		Sigmas: first.Sigmas, BridgeTimes: first.BridgeTimes, AugmentedTimes: first.AugmentedTimes,
		NaN: NaNReport{First: -1, Step: -1}}, Steps: first.Steps}
	ok := false
	defer func() {
		if !ok {
			out.Close()
		}
	}()
	for _, r := range runs[1:] {
		if r.Steps != first.Steps || !sameFloats(r.SegmentStepSizes, first.SegmentStepSizes) ||
			!sameFloats(r.Sigmas, first.Sigmas) || len(r.TraceSteps) != len(first.TraceSteps) {
			return nil, errors.New("the parts of the run disagree on its grid or steps")
		}
	}
	var err error
	pick := func(f func(*MethodRun) *tensor.Tensor) []*tensor.Tensor {
		var ts []*tensor.Tensor
		for _, r := range runs {
			ts = append(ts, f(r))
		}
		return ts
	}
	if out.Samples, err = concatAxis(pick(func(r *MethodRun) *tensor.Tensor { return r.Samples }), 0); err != nil {
		return nil, err
	}
	if out.Trace, err = concatAxis(pick(func(r *MethodRun) *tensor.Tensor { return r.Trace }), 1); err != nil {
		return nil, err
	}
	if out.Denoised, err = concatAxis(pick(func(r *MethodRun) *tensor.Tensor { return r.Denoised }), 1); err != nil {
		return nil, err
	}
	if out.AugmentedTrace, err = concatAxis(pick(func(r *MethodRun) *tensor.Tensor { return r.AugmentedTrace }), 1); err != nil {
		return nil, err
	}
	row := 0
	var rejected float64
	for _, r := range runs {
		rows := r.Samples.Dim(0)
		if r.Accept != nil {
			out.Accept = append(out.Accept, r.Accept...)
		}
		if r.StepSizes != nil {
			out.StepSizes = append(out.StepSizes, r.StepSizes...)
		}
		out.ScoreEvals += r.ScoreEvals
		out.LogPEvals += r.LogPEvals
		out.ScoreCalls += r.ScoreCalls
		out.LogPCalls += r.LogPCalls
		out.Clamped += r.Clamped
		if r.NaN.Chains > 0 {
			if out.NaN.Chains == 0 {
				out.NaN.First = row + r.NaN.First
			}
			if out.NaN.Step < 0 || r.NaN.Step < out.NaN.Step {
				out.NaN.Step = r.NaN.Step
			}
			out.NaN.Chains += r.NaN.Chains
			for _, i := range r.NaN.Rows {
				out.NaN.Rows = append(out.NaN.Rows, row+i)
			}
		}
		if r.RejectionRate != nil {
			rejected += *r.RejectionRate * float64(rows)
		}
		row += rows
	}
	if row != n {
		return nil, fmt.Errorf("the parts hold %d chains, want %d", row, n)
	}
	out.StepSize = first.StepSize
	if out.StepSizes != nil { // the geometric mean, summed in chain order as one run sums it
		logSum := 0.0
		for _, h := range out.StepSizes {
			logSum += math.Log(h)
		}
		out.StepSize = math.Exp(logSum / float64(n))
	}
	if first.RejectionRate != nil {
		rate := rejected / float64(n)
		out.RejectionRate = &rate
	}
	ok = true
	return out, nil
}

func sameFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}

// concatAxis joins host tensors of equal shape but for the axis along it (nil when the first is
// nil: an output not asked for).
func concatAxis(ts []*tensor.Tensor, axis int) (*tensor.Tensor, error) {
	if ts[0] == nil {
		return nil, nil
	}
	shape := append([]int(nil), ts[0].Shape()...)
	shape[axis] = 0
	for _, t := range ts {
		if t == nil || t.Rank() != len(shape) {
			return nil, errors.New("the parts of the run disagree on an output's shape")
		}
		shape[axis] += t.Dim(axis)
	}
	outer, inner := 1, 1
	for _, s := range shape[:axis] {
		outer *= s
	}
	for _, s := range shape[axis+1:] {
		inner *= s
	}
	dt := ts[0].DType()
	out := make([]float64, 0, outer*shape[axis]*inner)
	vals := make([][]float64, len(ts))
	for i, t := range ts {
		v, err := t.Float64s()
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	for o := 0; o < outer; o++ {
		for i, t := range ts {
			slab := t.Dim(axis) * inner
			out = append(out, vals[i][o*slab:(o+1)*slab]...)
		}
	}
	return tensor.FromFloat64s(dt, out, shape...)
}

// partsProgress combines the progress of parts run at once: it reports the least of theirs.
type partsProgress struct {
	fn     Progress
	mu     sync.Mutex
	done   []int64
	last   int64
	failed bool
}

func newPartsProgress(fn Progress, parts int) *partsProgress {
	return &partsProgress{fn: fn, done: make([]int64, parts)}
}

// part is the Progress of part k (nil when the run has none).
func (p *partsProgress) part(k int) Progress {
	if p.fn == nil {
		return nil
	}
	return func(done, total int64) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.done[k] = done
		least := done
		for _, d := range p.done {
			least = min(least, d)
		}
		if least > p.last && !p.failed {
			p.last = least
			p.fn(least, total)
		}
	}
}

// fail stops the reports after a part failed.
func (p *partsProgress) fail() {
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
}
