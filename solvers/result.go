package solvers

import (
	"errors"
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// Evals counts target evaluations in two units.
//
//   - ScoreEvals and LogPEvals count chain-evaluations: one per chain per evaluation, so one
//     op call over a batch of N chains adds N. ScoreEvals/N is the per-chain cost that the
//     papers report (and that the command's --steps budgets).
//   - ScoreCalls and LogPCalls count op calls (batched evaluations, kernel launches on a GPU):
//     one per call, whatever the batch size.
//
// A fused call that returns both log p and the score (MALA) counts in both. The Gaussian factor of
// RTK (ops.Backend.AddGaussianFactor) is closed form and is not counted.
type Evals struct {
	ScoreEvals, LogPEvals int64
	ScoreCalls, LogPCalls int64
}

// NaNReport says which chains ended up with a non-finite state (NaN or ±Inf in any coordinate).
// The state is checked at every trace point and at the end; a chain is counted once, at the first
// check that saw it non-finite. Samplers never average over such chains silently: the step-size
// adaptation skips them, and they are reported here.
type NaNReport struct {
	// Chains is the number of chains whose state was non-finite at some check.
	Chains int
	// First is the row (within this batch; the chain index is FirstChain + First) of the first
	// such chain, −1 when there is none.
	First int
	// Step is the step (Langevin, DDPM) or segment count (RTK) of the first check that saw a
	// non-finite state, −1 when there is none.
	Step int
	// Rows lists the rows of all such chains, in increasing order.
	Rows []int
}

func (r NaNReport) String() string {
	if r.Chains == 0 {
		return "no non-finite chains"
	}
	return fmt.Sprintf("%d non-finite chain(s), first row %d (seen at step %d)", r.Chains, r.First, r.Step)
}

// Result is what a sampler returns. Tensors live on the backend's device; Close frees them.
type Result struct {
	// Samples are the final states, (N, d), in the dtype of the run.
	Samples *tensor.Tensor
	// Trace, when requested, holds states along the run, (T, N, d); TraceSteps[k] says after how
	// many steps (Langevin, DDPM) or at which grid index (RTK) row k was taken.
	Trace      *tensor.Tensor
	TraceSteps []int
	// Accept holds per-chain acceptance rates of MALA moves (nil for other methods): for Langevin
	// the fraction accepted over the steps after the warm-up (over all steps when there are none
	// after it), for RTK-MALA over all inner steps.
	Accept []float64
	// StepSize is the final step size h of a Langevin run (after adaptation: the dual-averaging
	// iterate h̄; with per-chain adaptation the geometric mean of StepSizes). For RTK it is the
	// step size of the last segment processed, [t_0, t_1]; SegmentStepSizes holds all of them.
	// DDPM leaves it 0 (its steps are the grid's).
	StepSize float64
	// StepSizes holds per-chain final step sizes when they were adapted per chain.
	StepSizes []float64
	// SegmentStepSizes (RTK) holds the inner step size of segment k = [t_k, t_{k+1}].
	SegmentStepSizes []float64
	// Evals counts the target evaluations of the run (see Evals). The diffusion samplers count
	// each denoiser evaluation as a score evaluation (D and the score are affine functions of each
	// other, ScoreFromDenoiser).
	Evals
	// Denoised (diffusion samplers, with Trajectory) is the denoising trajectory, (Steps, N, d):
	// row i is the denoiser output D(x_i; σ_i) of step i, alongside the sampling trajectory x_i in
	// Trace.
	Denoised *tensor.Tensor
	// Sigmas (diffusion samplers) is the noise-level grid σ_0 > … > σ_K the run used (increasing
	// for DiffusionEncode): Trace row i is the state at σ_i.
	Sigmas []float64
	// BridgeTimes (Bridge.Simulate with Trajectory) is the time of every Trace row.
	BridgeTimes []float64
	// AugmentedTrace (GFDMSample with AugmentedTrajectory) holds the augmented state along the
	// run, (n, N, d, K + 1), row i at AugmentedTimes[i].
	AugmentedTrace *tensor.Tensor
	AugmentedTimes []float64
	// Clamped (LIM) is the number of α-stable noise values clipped to [−Clamp, Clamp].
	Clamped int64
	// NaN reports the chains whose state became non-finite.
	NaN NaNReport
}

// Close frees the result's tensors.
func (r *Result) Close() error {
	if r == nil {
		return nil
	}
	var errs []error
	for _, t := range []*tensor.Tensor{r.Samples, r.Trace, r.Denoised, r.AugmentedTrace} {
		if t != nil {
			errs = append(errs, t.Close())
		}
	}
	return errors.Join(errs...)
}

// AcceptMean is the mean of Accept over the chains not listed in the NaN report (NaN when there
// is no acceptance rate or no finite chain).
func (r *Result) AcceptMean() float64 {
	bad := make(map[int]bool, len(r.NaN.Rows))
	for _, i := range r.NaN.Rows {
		bad[i] = true
	}
	s, n := 0.0, 0
	for i, a := range r.Accept {
		if !bad[i] {
			s += a
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return s / float64(n)
}

// evaluator evaluates the (sub-)target a sampler runs on and counts the evaluations. With a
// center, it is the RTK sub-target: the target's outputs plus the Gaussian factor
// −‖center − a x‖²/(2v).
type evaluator struct {
	b      ops.Backend
	t      target.Target
	noise  ops.Noise
	center *tensor.Tensor
	a, v   float64
	ev     *Evals
}

// count records calls evaluations of n rows each made inside a fused run: a score per call, and
// a log-density too when logp is set.
func (e *evaluator) count(n, calls int64, logp bool) {
	e.ev.ScoreEvals += n * calls
	e.ev.ScoreCalls += calls
	if logp {
		e.ev.LogPEvals += n * calls
		e.ev.LogPCalls += calls
	}
}

func (e *evaluator) eval(out ops.ScoreOutputs, x *tensor.Tensor) error {
	if err := e.t.Evaluate(e.b, out, x, e.noise); err != nil {
		return fmt.Errorf("evaluate target: %w", err)
	}
	n := int64(x.Dim(0))
	if out.Score != nil {
		e.ev.ScoreEvals += n
		e.ev.ScoreCalls++
	}
	if out.LogP != nil {
		e.ev.LogPEvals += n
		e.ev.LogPCalls++
	}
	if e.center != nil {
		if err := e.b.AddGaussianFactor(ops.ScoreOutputs{LogP: out.LogP, Score: out.Score}, x, e.center, e.a, e.v); err != nil {
			return fmt.Errorf("add the reverse-kernel factor: %w", err)
		}
	}
	return nil
}

// nanTracker accumulates the NaN report over checks.
type nanTracker struct {
	seen []bool
	rep  NaNReport
}

func newNaNTracker(n int) *nanTracker {
	return &nanTracker{seen: make([]bool, n), rep: NaNReport{First: -1, Step: -1}}
}

// check marks the rows of x (N, d) that hold a NaN or ±Inf.
func (nt *nanTracker) check(x *tensor.Tensor, step int) error {
	v, err := x.Float64s()
	if err != nil {
		return fmt.Errorf("check for NaN: %w", err)
	}
	d := x.Dim(1)
	newRows := false
	for i := range nt.seen {
		if nt.seen[i] {
			continue
		}
		for _, e := range v[i*d : (i+1)*d] {
			if math.IsNaN(e) || math.IsInf(e, 0) {
				nt.seen[i] = true
				nt.rep.Chains++
				if nt.rep.Step < 0 {
					nt.rep.Step = step
				}
				if nt.rep.First < 0 || i < nt.rep.First {
					nt.rep.First = i
				}
				newRows = true
				break
			}
		}
	}
	if newRows {
		nt.rep.Rows = nt.rep.Rows[:0]
		for i, s := range nt.seen {
			if s {
				nt.rep.Rows = append(nt.rep.Rows, i)
			}
		}
	}
	return nil
}

// tracer keeps states in a (T, N, d) tensor.
type tracer struct {
	t     *tensor.Tensor
	steps []int
	n, d  int
}

func newTracer(dev tensor.Device, dt tensor.DType, rows, n, d int) (*tracer, error) {
	t, err := tensor.New(dev, dt, rows, n, d)
	if err != nil {
		return nil, fmt.Errorf("allocate the trace (%d, %d, %d): %w", rows, n, d, err)
	}
	return &tracer{t: t, n: n, d: d}, nil
}

// keep copies x into the next row of the trace and records its step.
func (tr *tracer) keep(x *tensor.Tensor, step int) error {
	row := len(tr.steps)
	v, err := tr.t.View(row*tr.n*tr.d, tr.n, tr.d)
	if err != nil {
		return fmt.Errorf("trace row %d: %w", row, err)
	}
	if err := v.CopyFrom(x); err != nil {
		return fmt.Errorf("trace row %d: %w", row, err)
	}
	tr.steps = append(tr.steps, step)
	return nil
}

// closeAll closes every non-nil tensor (the scratch of a run).
func closeAll(ts ...*tensor.Tensor) {
	for _, t := range ts {
		if t != nil {
			t.Close()
		}
	}
}

// finitePositive reports whether v is a finite number > 0.
func finitePositive(v float64) bool { return v > 0 && !math.IsInf(v, 0) }

// checkStart validates the backend, the target and a state x0 of shape (N, d).
func checkStart(op string, b ops.Backend, t target.Target, x *tensor.Tensor) error {
	if b == nil {
		return fmt.Errorf("%s: nil backend", op)
	}
	if t == nil {
		return fmt.Errorf("%s: nil target", op)
	}
	if x == nil || x.Closed() {
		return fmt.Errorf("%s: initial state is nil or closed", op)
	}
	if x.Device() != b.Device() {
		return fmt.Errorf("%s: initial state is on %s, the backend runs on %s", op, x.Device().Name(), b.Device().Name())
	}
	if x.Rank() != 2 {
		return fmt.Errorf("%s: initial state has shape %v: want (chains, dim)", op, x.Shape())
	}
	if x.Dim(0) == 0 {
		return fmt.Errorf("%s: zero chains: the initial state has shape %v", op, x.Shape())
	}
	if x.Dim(1) != t.Dim() {
		return fmt.Errorf("%s: initial state has dimension %d, the target %s has %d", op, x.Dim(1), t, t.Dim())
	}
	return nil
}

// checkChains validates a chain range [first, first+n).
func checkChains(op string, n int, first uint64) error {
	if n <= 0 {
		return fmt.Errorf("%s: chains n = %d: need at least one chain", op, n)
	}
	if first >= ops.MaxChains || uint64(n) > ops.MaxChains-first {
		return fmt.Errorf("%s: chains %d..%d: chain indices must be below 2^32", op, first, first+uint64(n))
	}
	return nil
}
