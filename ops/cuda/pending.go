//go:build cuda

package cuda

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

func errPending(op string) error { return fmt.Errorf("%s: not available in this build", op) }

func (b *Backend) FGN(dst *tensor.Tensor, p *ops.FGNPlan, form ops.FGNForm, d ops.Draw) error {
	return errPending("fgn")
}
