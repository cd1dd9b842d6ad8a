//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"sync"

	"github.com/scorekit/scorekit/kernels"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Backend runs ops on one GPU.
type Backend struct {
	dev *tensor.CUDADevice

	mu     sync.Mutex
	params map[paramKey]*tensor.Tensor // uploaded target parameters, freed by Close
}

// paramKey names one uploaded parameter array: the immutable target it belongs to (*ops.GMM,
// *ops.Empirical), which array, and the dtype it was converted to.
type paramKey struct {
	owner any
	name  string
	dtype tensor.DType
}

var _ ops.Backend = (*Backend)(nil)

// New returns the CUDA backend for dev. The backend does not own dev: close dev after the backend.
func New(dev *tensor.CUDADevice) (ops.Backend, error) {
	if dev == nil {
		return nil, fmt.Errorf("cuda backend: nil device")
	}
	return &Backend{dev: dev, params: map[paramKey]*tensor.Tensor{}}, nil
}

func (b *Backend) Name() string          { return b.dev.Name() }
func (b *Backend) Device() tensor.Device { return b.dev }

// Close frees what the backend holds on the device: the parameter tables it uploaded (mixtures,
// data sets, fGn spectra, MA-fBM transitions, domains, FFT twiddles) and its scratch buffers (FFT
// and fGn work space).
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for k, t := range b.params {
		if err := t.Close(); err != nil {
			errs = append(errs, err)
		}
		delete(b.params, k)
	}
	return errors.Join(errs...)
}

// upload returns a device copy of data (converted to dt, with the given shape) for the immutable
// target owner, uploading it on first use and keeping it until Close. Targets are immutable after
// construction, so the cache never goes stale.
func (b *Backend) upload(owner any, name string, dt tensor.DType, data []float64, shape ...int) (*tensor.Tensor, error) {
	key := paramKey{owner, name, dt}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.params[key]; ok {
		return t, nil
	}
	h, err := tensor.FromFloat64s(dt, data, shape...)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", name, err)
	}
	t, err := h.CopyTo(b.dev)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", name, err)
	}
	b.params[key] = t
	return t, nil
}

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

// typedKernel returns the entry op_<dtype> of module (kernels are named <op>_f32 / <op>_f64).
func (b *Backend) typedKernel(module, op string, dt tensor.DType) (tensor.Kernel, error) {
	return b.kernel(module, op+"_"+dt.String())
}

// normalLanes is the number of coordinates one Philox block serves in dt's normal stream (four
// f32 or two f64 normals): also 16 bytes of dt, the width of one thread's vector access.
func normalLanes(dt tensor.DType) int64 {
	if dt == tensor.F32 {
		return 4
	}
	return 2
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
