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

// fftBatch transforms batch signals of length n held in buf (device, interleaved complex) in place.
func (b *Backend) fftBatch(buf *tensor.Tensor, batch, n int, inverse bool) error {
	return errPending("fft")
}
