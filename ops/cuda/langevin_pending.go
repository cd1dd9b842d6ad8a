//go:build cuda

package cuda

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Step: see ops.Backend.
func (b *Backend) Step(dst, x, score *tensor.Tensor, c ops.Coeffs, d ops.Draw) error {
	if err := ops.CheckStep(b.dev, dst, x, score, c, d); err != nil {
		return err
	}
	return fmt.Errorf("step: not available on %s in this version", b.dev.Name())
}

// MALAAccept: see ops.Backend.
func (b *Backend) MALAAccept(cur, prop ops.MALAState, h float64, hs *tensor.Tensor, d ops.Draw, accepted *tensor.Tensor) error {
	if err := ops.CheckMALAAccept(b.dev, cur, prop, h, hs, d, accepted); err != nil {
		return err
	}
	return fmt.Errorf("mala accept: not available on %s in this version", b.dev.Name())
}

// ULDStep: see ops.Backend.
func (b *Backend) ULDStep(x, v, score *tensor.Tensor, h float64, p ops.ULDParams, d ops.Draw) error {
	if err := ops.CheckULDStep(b.dev, x, v, score, h, p, d); err != nil {
		return err
	}
	return fmt.Errorf("uld step: not available on %s in this version", b.dev.Name())
}

// AddGaussianFactor: see ops.Backend.
func (b *Backend) AddGaussianFactor(out ops.ScoreOutputs, x, center *tensor.Tensor, a, v float64) error {
	if err := ops.CheckGaussianFactor(b.dev, out, x, center, a, v); err != nil {
		return err
	}
	return fmt.Errorf("gaussian factor: not available on %s in this version", b.dev.Name())
}
