package ops

import (
	"fmt"

	"github.com/scorekit/scorekit/tensor"
)

func errPending(op string) error { return fmt.Errorf("%s: not available in this build", op) }

func (cpuBackend) FFT(dst, src *tensor.Tensor, inverse bool) error { return errPending("fft") }
func (cpuBackend) FGN(dst *tensor.Tensor, p *FGNPlan, form FGNForm, d Draw) error {
	return errPending("fgn")
}
func (cpuBackend) MAFBM(dst, y *tensor.Tensor, m *MAFBM, h float64, d Draw, stride uint64) error {
	return errPending("ma-fbm")
}
func (cpuBackend) Stable(dst *tensor.Tensor, s StableSpec, d Draw) (int64, error) {
	return 0, errPending("stable")
}
func (cpuBackend) Brownian(dst *tensor.Tensor, s BrownianSpec, d Draw) error {
	return errPending("brownian")
}
