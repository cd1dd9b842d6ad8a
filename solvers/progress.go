package solvers

import (
	"time"

	"github.com/scorekit/scorekit/tensor"
)

// Progress receives a run's progress: done of total units of work have completed, 0 < done ≤
// total, done increasing from call to call, and the last call has done == total (a run that fails
// stops calling). The unit is the sampler's step: one noise level of a diffusion or flow sampler,
// one DDPM or Langevin step, one inner step of RTK (total = segments × inner steps), one step of
// the constrained samplers; FPGD, which runs chain by chain, counts chain-steps (total = N·Steps).
//
// It is called on the goroutine that runs the sampler, between its operations, so it must return
// quickly and must not call the backend. The work reported is finished, not merely issued: on a GPU
// the sampler synchronises the device before a report, at most every progressSync (and before the
// last). A nil Progress is never called; with one, the samples are bit-identical to a run without
// it (a stretch of steps that would be one fused multi-step call is split into about
// progressChunks calls, which draw the same numbers).
type Progress func(done, total int64)

// progressChunks is about how many reports a fused multi-step stretch is split into.
const progressChunks = 100

// progressSync is the least time between two reports: a report synchronises the device (a
// variable so that tests can see every report).
var progressSync = 100 * time.Millisecond

// progress reports a run's steps to a Progress, at most every progressSync apart (and always the
// last step). A nil *progress reports nothing.
type progress struct {
	fn    Progress
	total int64
	dev   tensor.Device
	last  time.Time
}

// newProgress returns the reporter of a run of total units on dev; nil when fn is nil or there is
// nothing to report.
func newProgress(fn Progress, total int64, dev tensor.Device) *progress {
	if fn == nil || total <= 0 {
		return nil
	}
	return &progress{fn: fn, total: total, dev: dev, last: time.Now()}
}

// step reports that done units have completed; it synchronises the device first, so a
// device error surfaces here.
func (p *progress) step(done int64) error {
	if p == nil || done <= 0 {
		return nil
	}
	if done < p.total && time.Since(p.last) < progressSync {
		return nil
	}
	if p.dev != nil {
		if err := p.dev.Synchronize(); err != nil {
			return err
		}
	}
	p.last = time.Now()
	p.fn(min(done, p.total), p.total)
	return nil
}

// chunk is the number of steps of a fused stretch of n steps between two reports: all n without
// a reporter, about total/progressChunks with one.
func (p *progress) chunk(n int) int {
	if p == nil {
		return n
	}
	return int(max(1, (p.total+progressChunks-1)/progressChunks))
}
