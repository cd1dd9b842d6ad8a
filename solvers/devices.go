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

// ForEachPart splits n rows over the backends — min(len(backends), n) parts, none empty, part k
// the rows SplitRange(n, parts, k) on backend k — and calls fn for every part at once, each on its
// own goroutine. It returns when every call has returned, with their errors joined (nil when none
// failed). The runs over several devices here and in the command are built on it.
func ForEachPart(backends []ops.Backend, n int, fn func(k int, b ops.Backend, lo, hi int) error) error {
	parts := min(len(backends), n)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for k := 0; k < parts; k++ {
		lo, hi := SplitRange(n, parts, k)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = fn(k, backends[k], lo, hi)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
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
	prog := newPartsProgress(o.Progress, parts)
	err := ForEachPart(backends, n, func(k int, b ops.Backend, lo, hi int) error {
		po := o
		po.FirstChain = o.FirstChain + uint64(lo)
		if o.X0 != nil {
			d := len(o.X0) / n
			po.X0 = o.X0[lo*d : hi*d]
		}
		po.Progress = prog.part(k)
		r, err := m.Run(b, t, hi-lo, dt, po)
		if err == nil {
			err = hostTensors(b.Device(), &r.Samples, &r.Trace, &r.Denoised, &r.AugmentedTrace)
		}
		if err != nil {
			prog.fail()
			if r != nil {
				r.Close()
			}
			return fmt.Errorf("%s on %s (chains %d…%d): %w", m.Name, b.Device().Name(), po.FirstChain, po.FirstChain+uint64(hi-lo)-1, err)
		}
		runs[k] = r
		return nil
	})
	if err != nil {
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
		gatherNaN(&out.NaN, r.NaN, row)
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
// nil: an output not asked for), in their dtype: the result and the parts are all the memory it
// takes.
func concatAxis(ts []*tensor.Tensor, axis int) (*tensor.Tensor, error) {
	if ts[0] == nil {
		return nil, nil
	}
	shape := append([]int(nil), ts[0].Shape()...)
	shape[axis] = 0
	dt := ts[0].DType()
	for _, t := range ts {
		if t == nil || t.Rank() != len(shape) || t.DType() != dt {
			return nil, errors.New("the parts of the run disagree on an output's shape or dtype")
		}
		shape[axis] += t.Dim(axis)
	}
	out, err := tensor.New(nil, dt, shape...)
	if err != nil {
		return nil, err
	}
	var cerr error
	if dt == tensor.F32 {
		cerr = concatSlabs(out, ts, axis, (*tensor.Tensor).F32)
	} else {
		cerr = concatSlabs(out, ts, axis, (*tensor.Tensor).F64)
	}
	if cerr != nil {
		out.Close()
		return nil, cerr
	}
	return out, nil
}

// concatSlabs copies the parts into out along axis through their host slices (data).
func concatSlabs[E float32 | float64](out *tensor.Tensor, ts []*tensor.Tensor, axis int, data func(*tensor.Tensor) ([]E, error)) error {
	dst, err := data(out)
	if err != nil {
		return err
	}
	outer, inner := 1, 1
	for _, s := range out.Shape()[:axis] {
		outer *= s
	}
	for _, s := range out.Shape()[axis+1:] {
		inner *= s
	}
	srcs := make([][]E, len(ts))
	for i, t := range ts {
		if srcs[i], err = data(t); err != nil {
			return err
		}
	}
	at := 0
	for o := 0; o < outer; o++ {
		for i, t := range ts {
			slab := t.Dim(axis) * inner
			at += copy(dst[at:], srcs[i][o*slab:(o+1)*slab])
		}
	}
	return nil
}

// partsProgress combines the progress of parts run at once: it reports the least of theirs (parts
// of equal work in the same units, the steps of a sampler) or, with sum, their sum out of the sum
// of their totals, once every part has reported its total (chain-steps).
type partsProgress struct {
	fn          Progress
	sum         bool
	mu          sync.Mutex
	done, total []int64
	last        int64
	failed      bool
}

func newPartsProgress(fn Progress, parts int) *partsProgress {
	return &partsProgress{fn: fn, done: make([]int64, parts), total: make([]int64, parts)}
}

// part is the Progress of part k (nil when the run has none).
func (p *partsProgress) part(k int) Progress {
	if p.fn == nil {
		return nil
	}
	return func(done, total int64) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.done[k], p.total[k] = done, total
		if p.sum {
			var s, all int64
			for i := range p.done {
				if p.total[i] == 0 {
					return // a part has not reported yet: the whole's total is unknown
				}
				s, all = s+p.done[i], all+p.total[i]
			}
			done, total = s, all
		} else {
			for _, d := range p.done {
				done = min(done, d)
			}
		}
		if done > p.last && !p.failed {
			p.last = done
			p.fn(done, total)
		}
	}
}

// fail stops the reports after a part failed.
func (p *partsProgress) fail() {
	p.mu.Lock()
	p.failed = true
	p.mu.Unlock()
}

// FPGDOn runs FPGD for the chains of x0 (N, d, on any device) spread over the backends as RunOn
// spreads a method's: backend k runs the rows SplitRange(N, B, k) from FirstChain cfg.FirstChain
// + lo, all at once, and the parts are gathered on the host in chain order — the one-backend run,
// bit for bit, on backends of one kind (final states, trace, escape steps, evaluation counts and
// the NaN report in rows of the whole run). Progress receives the chain-steps of all the parts.
func FPGDOn(backends []ops.Backend, f Objective, x0 *tensor.Tensor, cfg FPGDConfig) (*FPGDResult, error) {
	var relErr float64
	var mu sync.Mutex
	r, err := descentOn("fpgd", backends, x0, cfg.FirstChain, cfg.Progress,
		func(b ops.Backend, x *tensor.Tensor, first uint64, p Progress) (*DescentResult, error) {
			c := cfg
			c.FirstChain, c.Progress = first, p
			res, err := FPGD(b, f, x, c)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			relErr = res.NoiseRelErrorSq
			mu.Unlock()
			return &res.DescentResult, nil
		})
	if err != nil {
		return nil, err
	}
	return &FPGDResult{DescentResult: *r, NoiseRelErrorSq: relErr}, nil
}

// SGDWOROn runs SGDWOR for the chains of x0 spread over the backends (see FPGDOn).
func SGDWOROn(backends []ops.Backend, f Objective, x0 *tensor.Tensor, cfg SGDWORConfig) (*SGDWORResult, error) {
	r, err := descentOn("sgdo", backends, x0, cfg.FirstChain, cfg.Progress,
		func(b ops.Backend, x *tensor.Tensor, first uint64, p Progress) (*DescentResult, error) {
			c := cfg
			c.FirstChain, c.Progress = first, p
			res, err := SGDWOR(b, f, x, c)
			if err != nil {
				return nil, err
			}
			return &res.DescentResult, nil
		})
	if err != nil {
		return nil, err
	}
	return &SGDWORResult{DescentResult: *r}, nil
}

// rowsOn runs run for each backend's rows of x0 (SplitRange; the rows copied to the backend's
// device, their first chain first + lo), all at once, and returns the parts' results, whose
// tensors run has moved to the host. On any error the results are closed (close) and the errors
// returned, each naming its backend and chains.
func rowsOn[R any](op string, backends []ops.Backend, x0 *tensor.Tensor, first uint64,
	run func(k int, b ops.Backend, x *tensor.Tensor, first uint64) (R, error), close func(R)) ([]R, error) {
	if len(backends) == 0 {
		return nil, fmt.Errorf("%s: no backend to run on", op)
	}
	if x0 == nil || x0.Closed() || x0.Rank() != 2 {
		return nil, fmt.Errorf("%s: initial state is nil, closed or not (chains, dim)", op)
	}
	n, d := x0.Dim(0), x0.Dim(1)
	if n == 0 {
		return nil, fmt.Errorf("%s: no chains", op)
	}
	host, err := x0.CopyTo(tensor.CPU())
	if err != nil {
		return nil, fmt.Errorf("%s: copy the initial state to the host: %w", op, err)
	}
	defer host.Close()
	parts := min(len(backends), n)
	results := make([]R, parts)
	done := make([]bool, parts)
	err = ForEachPart(backends, n, func(k int, b ops.Backend, lo, hi int) error {
		err := func() error {
			view, err := host.View(lo*d, hi-lo, d)
			if err != nil {
				return err
			}
			x, err := view.CopyTo(b.Device())
			if err != nil {
				return err
			}
			defer x.Close()
			r, err := run(k, b, x, first+uint64(lo))
			if err != nil {
				return err
			}
			results[k], done[k] = r, true
			return nil
		}()
		if err != nil {
			return fmt.Errorf("%s on %s (chains %d…%d): %w", op, b.Device().Name(), first+uint64(lo), first+uint64(hi)-1, err)
		}
		return nil
	})
	if err != nil {
		for k, r := range results {
			if done[k] {
				close(r)
			}
		}
		return nil, err
	}
	return results, nil
}

// hostTensors moves the tensors *ps to the host (after the device's work), closing the device
// copies.
func hostTensors(dev tensor.Device, ps ...**tensor.Tensor) error {
	if err := dev.Synchronize(); err != nil {
		return err
	}
	for _, p := range ps {
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

// descentOn runs a noisy descent's parts (run on backend b from the rows x of x0, their first
// chain first) at once and gathers their results on the host.
func descentOn(op string, backends []ops.Backend, x0 *tensor.Tensor, first uint64, progress Progress,
	run func(b ops.Backend, x *tensor.Tensor, first uint64, p Progress) (*DescentResult, error)) (*DescentResult, error) {
	prog := newPartsProgress(progress, min(len(backends), max(1, rowsOf(x0))))
	prog.sum = true
	results, err := rowsOn(op, backends, x0, first, func(k int, b ops.Backend, x *tensor.Tensor, first uint64) (*DescentResult, error) {
		r, err := run(b, x, first, prog.part(k))
		if err == nil {
			err = hostTensors(b.Device(), &r.Final, &r.Trace)
		}
		if err != nil {
			prog.fail()
			if r != nil {
				r.Close()
			}
			return nil, err
		}
		return r, nil
	}, func(r *DescentResult) { r.Close() })
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, r := range results {
			r.Close()
		}
	}()
	out := &DescentResult{TraceSteps: results[0].TraceSteps, NaN: NaNReport{First: -1, Step: -1}}
	var finals, traces []*tensor.Tensor
	row := 0
	for _, r := range results {
		finals, traces = append(finals, r.Final), append(traces, r.Trace)
		if r.Escape != nil {
			out.Escape = append(out.Escape, r.Escape...)
		}
		out.GradEvals += r.GradEvals
		gatherNaN(&out.NaN, r.NaN, row)
		row += r.Final.Dim(0)
	}
	if out.Final, err = concatAxis(finals, 0); err != nil {
		return nil, err
	}
	if out.Trace, err = concatAxis(traces, 1); err != nil {
		out.Close()
		return nil, err
	}
	return out, nil
}

// rowsOf is the number of rows of a (chains, dim) tensor, 0 for anything else.
func rowsOf(x *tensor.Tensor) int {
	if x == nil || x.Closed() || x.Rank() != 2 {
		return 0
	}
	return x.Dim(0)
}

// SimulateOn runs Simulate for the points of x0 (N, d, on any device) spread over the backends as
// RunOn spreads a method's chains (backend k the rows SplitRange(N, B, k), their chains from
// cfg.FirstChain + lo), all at once, and gathers the parts on the host: the one-backend run, bit
// for bit, on backends of one kind. Progress reports the slowest part.
func (br *Bridge) SimulateOn(backends []ops.Backend, x0 *tensor.Tensor, cfg BridgeSimConfig) (*Result, error) {
	prog := newPartsProgress(cfg.Progress, min(len(backends), max(1, rowsOf(x0))))
	runs, err := rowsOn("bridge simulate", backends, x0, cfg.FirstChain, func(k int, b ops.Backend, x *tensor.Tensor, first uint64) (*MethodRun, error) {
		c := cfg
		c.FirstChain, c.Progress = first, prog.part(k)
		r, err := br.Simulate(b, x, c)
		if err == nil {
			err = hostTensors(b.Device(), &r.Samples, &r.Trace)
		}
		if err != nil {
			prog.fail()
			if r != nil {
				r.Close()
			}
			return nil, err
		}
		return &MethodRun{Result: r}, nil
	}, func(r *MethodRun) { r.Close() })
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, r := range runs {
			r.Close()
		}
	}()
	if len(runs) == 1 {
		r := runs[0].Result
		runs[0].Result = nil
		return r, nil
	}
	out, err := gatherRuns(runs, x0.Dim(0))
	if err != nil {
		return nil, err
	}
	return out.Result, nil
}

// gatherNaN adds a part's NaN report, its rows from row, to the whole run's.
func gatherNaN(out *NaNReport, part NaNReport, row int) {
	if part.Chains == 0 {
		return
	}
	if out.Chains == 0 {
		out.First = row + part.First
	}
	if out.Step < 0 || part.Step < out.Step {
		out.Step = part.Step
	}
	out.Chains += part.Chains
	for _, i := range part.Rows {
		out.Rows = append(out.Rows, row+i)
	}
}
