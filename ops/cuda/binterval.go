//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// BrownianIncrements: see ops.Backend. One thread per query descends the tree from the root
// (kernels/binterval.cu), the two times together down to the node where they part, in float64
// with the reference's operations, so the values are the CPU reference's bits. The kernel checks
// every query (0 ≤ s < t ≤ T) and counts the bad ones in an 8-byte device counter that is read
// back (a synchronising copy); when it is not 0 the times are copied to the host and checked with
// the reference's ops.CheckBrownianQueries, so both backends refuse the same queries with the
// same error. After such an error dst holds the good queries' values and is otherwise
// unchanged (the CPU writes nothing).
func (b *Backend) BrownianIncrements(dst, s, t *tensor.Tensor, spec ops.BrownianIntervalSpec, d ops.Draw) error {
	defer b.enter()()
	if err := ops.CheckBrownianIncrements(b.dev, dst, s, t, spec, d); err != nil {
		return err
	}
	paths, q := int64(dst.Dim(0)), int64(dst.Dim(1))
	if paths == 0 || q == 0 {
		return nil
	}
	bad, err := b.scratch.get("brownian interval bad-query counter", tensor.F64, 1)
	if err != nil {
		return fmt.Errorf("brownian increments: %w", err)
	}
	if err := bad.Fill(0); err != nil {
		return fmt.Errorf("brownian increments: bad-query counter: %w", err)
	}
	k, err := b.typedKernel("binterval", "binterval", dst.DType())
	if err != nil {
		return fmt.Errorf("brownian increments: %w", err)
	}
	shared := func(x *tensor.Tensor) int64 {
		if x.Dim(0) == 1 && paths > 1 {
			return 1
		}
		return 0
	}
	err = b.launch(k, b.gridFor(paths*q), bintervalArgs{Dst: dst, S: s, T: t, Paths: paths, Q: q,
		SShared: shared(s), TShared: shared(t), Horizon: spec.Horizon, Scale: spec.GridScale(),
		SqrtT: math.Sqrt(spec.Horizon), Depth: int64(spec.Depth), Bad: bad, Seed: d.Seed, Site: d.Site,
		Chain0: d.FirstChain})
	if err != nil {
		return fmt.Errorf("brownian increments (paths=%d, q=%d, depth=%d, %v): %w", paths, q, spec.Depth, dst.DType(), err)
	}
	h, err := bad.CopyTo(nil)
	if err != nil {
		return fmt.Errorf("brownian increments: read the bad-query count: %w", err)
	}
	hv, _ := h.F64()
	n := math.Float64bits(hv[0])
	if n == 0 {
		return nil
	}
	hs, err := s.CopyTo(nil)
	if err != nil {
		return fmt.Errorf("brownian increments: %d bad queries: read the times s back: %w", n, err)
	}
	ht, err := t.CopyTo(nil)
	if err != nil {
		return fmt.Errorf("brownian increments: %d bad queries: read the times t back: %w", n, err)
	}
	if err := ops.CheckBrownianQueries(hs, ht, spec); err != nil {
		return err
	}
	return fmt.Errorf("brownian increments: the kernel counted %d bad queries that the host check accepts", n)
}
