//go:build cuda

package cuda

import (
	"fmt"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

func errPending(op string) error { return fmt.Errorf("%s: not available in this build", op) }

func (b *Backend) FFT(dst, src *tensor.Tensor, inverse bool) error { return errPending("fft") }
func (b *Backend) FGN(dst *tensor.Tensor, p *ops.FGNPlan, form ops.FGNForm, d ops.Draw) error {
	return errPending("fgn")
}
func (b *Backend) MAFBM(dst, y *tensor.Tensor, m *ops.MAFBM, h float64, d ops.Draw, stride uint64) error {
	return errPending("ma-fbm")
}
func (b *Backend) Stable(dst *tensor.Tensor, s ops.StableSpec, d ops.Draw) (int64, error) {
	return 0, errPending("stable")
}
func (b *Backend) Brownian(dst *tensor.Tensor, s ops.BrownianSpec, d ops.Draw) error {
	return errPending("brownian")
}

// fftBatch transforms batch signals of length n held in buf (device, interleaved complex) in place.
func (b *Backend) fftBatch(buf *tensor.Tensor, batch, n int, inverse bool) error {
	return errPending("fft")
}
