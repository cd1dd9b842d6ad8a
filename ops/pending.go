package ops

import (
	"fmt"

	"github.com/scorekit/scorekit/tensor"
)

func errPending(op string) error { return fmt.Errorf("%s: not available in this build", op) }

func (cpuBackend) FGN(dst *tensor.Tensor, p *FGNPlan, form FGNForm, d Draw) error {
	return errPending("fgn")
}
