//go:build cuda

package cuda

import (
	"fmt"

	"github.com/scorekit/scorekit/kernels"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Backend runs ops on one GPU.
type Backend struct {
	dev *tensor.CUDADevice
}

var _ ops.Backend = (*Backend)(nil)

// New returns the CUDA backend for dev. The backend does not own dev: close dev after the backend.
func New(dev *tensor.CUDADevice) (ops.Backend, error) {
	if dev == nil {
		return nil, fmt.Errorf("cuda backend: nil device")
	}
	return &Backend{dev: dev}, nil
}

func (b *Backend) Name() string          { return b.dev.Name() }
func (b *Backend) Device() tensor.Device { return b.dev }
func (b *Backend) Close() error          { return nil }

// CUDADevice returns the GPU the backend runs on.
func (b *Backend) CUDADevice() *tensor.CUDADevice { return b.dev }

// kernel returns the named kernel of a module in package kernels, loading it on first use.
func (b *Backend) kernel(module, name string) (tensor.Kernel, error) {
	ptx, err := kernels.PTX(module)
	if err != nil {
		return tensor.Kernel{}, err
	}
	return b.dev.Kernel(module, ptx, name)
}

// threadsPerBlock is the block size of the element-wise kernels.
const threadsPerBlock = 256

// gridFor returns a 1-D launch covering work items with a grid-stride loop: enough blocks to fill
// every SM several times over, no more than the work needs.
func (b *Backend) gridFor(work int64) tensor.LaunchConfig {
	blocks := (work + threadsPerBlock - 1) / threadsPerBlock
	maxBlocks := int64(b.dev.Info().SMs) * 32
	if maxBlocks < 1 {
		maxBlocks = 1024
	}
	blocks = min(max(blocks, 1), maxBlocks)
	return tensor.Grid1D(int(blocks), threadsPerBlock)
}
