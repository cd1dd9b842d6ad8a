//go:build cuda || cudaemu

package cuda

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// BrownianIncrements: see ops.Backend. One thread per query descends the tree twice from the root
// (kernels/binterval.cu), in float64, with the reference's operations, so the values are the CPU
// reference's bits. The query times are validated on the host first with the reference's
// ops.CheckBrownianQueries (a synchronising copy of s and t), so both backends refuse the same
// queries with the same error.
func (b *Backend) BrownianIncrements(dst, s, t *tensor.Tensor, spec ops.BrownianIntervalSpec, d ops.Draw) error {
	defer b.enter()()
	if err := ops.CheckBrownianIncrements(b.dev, dst, s, t, spec, d); err != nil {
		return err
	}
	paths, q := int64(dst.Dim(0)), int64(dst.Dim(1))
	if paths == 0 || q == 0 {
		return nil
	}
	hs, err := s.CopyTo(nil)
	if err != nil {
		return fmt.Errorf("brownian increments: read the query times s back: %w", err)
	}
	ht, err := t.CopyTo(nil)
	if err != nil {
		return fmt.Errorf("brownian increments: read the query times t back: %w", err)
	}
	if err := ops.CheckBrownianQueries(hs, ht, spec); err != nil {
		return err
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
		SqrtT: math.Sqrt(spec.Horizon), Depth: int64(spec.Depth), Seed: d.Seed, Site: d.Site, Chain0: d.FirstChain})
	if err != nil {
		return fmt.Errorf("brownian increments (paths=%d, q=%d, depth=%d, %v): %w", paths, q, spec.Depth, dst.DType(), err)
	}
	return nil
}
