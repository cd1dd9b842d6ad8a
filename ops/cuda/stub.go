//go:build !cuda && !cudaemu

package cuda

import (
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// New returns the CUDA backend for dev. This build has no CUDA support: it returns
// tensor.ErrNoCUDA.
func New(dev *tensor.CUDADevice) (ops.Backend, error) { return nil, tensor.ErrNoCUDA }
