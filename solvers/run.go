package solvers

import (
	"fmt"

	"github.com/scorekit/scorekit/tensor"
)

// samplesRun is the Result of a sampler while it is being built: it owns the (n, d) samples and
// whatever the sampler attaches to the Result, and release frees all of it unless keep has handed
// the Result to the caller (the samplers defer release, so every error path frees it).
type samplesRun struct {
	res  *Result
	kept bool
}

// newSamplesRun allocates the (n, d) samples of a run of op in dtype on dev.
func newSamplesRun(op string, dev tensor.Device, dtype tensor.DType, n, d int) (*samplesRun, error) {
	x, err := tensor.New(dev, dtype, n, d)
	if err != nil {
		return nil, fmt.Errorf("%s: allocate the samples (%d, %d): %w", op, n, d, err)
	}
	return &samplesRun{res: &Result{Samples: x}}, nil
}

// release closes the Result unless keep has handed it over.
func (r *samplesRun) release() {
	if !r.kept {
		r.res.Close()
	}
}

// checkFinal marks the chains whose final samples (after step) hold a NaN or ±Inf, records the
// NaN report and, with a tracer, the steps of the trace.
func (r *samplesRun) checkFinal(op string, nt *nanTracker, tr *tracer, step int) error {
	if err := nt.check(r.res.Samples, step); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	r.res.NaN = nt.rep
	if tr != nil {
		r.res.TraceSteps = tr.steps
	}
	return nil
}

// keep hands the Result over to the caller: release no longer closes it.
func (r *samplesRun) keep() (*Result, error) {
	r.kept = true
	return r.res, nil
}
