//go:build cuda

package cuda

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// GMMScore: see ops.Backend.
func (b *Backend) GMMScore(out ops.ScoreOutputs, x *tensor.Tensor, g *ops.GMM, noise ops.Noise) error {
	if err := ops.CheckGMMScore(b.dev, out, x, g, noise); err != nil {
		return err
	}
	return fmt.Errorf("gmm score: not available on %s in this version", b.dev.Name())
}

// EmpiricalScore: see ops.Backend.
func (b *Backend) EmpiricalScore(out ops.ScoreOutputs, x *tensor.Tensor, e *ops.Empirical, noise ops.Noise) error {
	if err := ops.CheckEmpiricalScore(b.dev, out, x, e, noise); err != nil {
		return err
	}
	return fmt.Errorf("empirical score: not available on %s in this version", b.dev.Name())
}
