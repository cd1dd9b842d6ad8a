//go:build cuda || cudaemu

package cuda

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/scorekit/scorekit/kernels"
	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Backend runs ops on one GPU.
type Backend struct {
	dev *tensor.CUDADevice

	// op is held by every op for its whole call: the tables and scratch buffers an op uses belong
	// to it until it returns, and the launches of two calls never interleave on the device's
	// stream (which runs them in order anyway).
	op      sync.Mutex
	tables  *tableCache  // device copies of targets, under a byte budget (cache.go)
	scratch *scratchPool // work buffers, reused between calls
	closed  bool
}

var _ ops.Backend = (*Backend)(nil)

// Options configure a Backend.
type Options struct {
	// TableBytes is the budget of the device copies of targets (mixtures and their per-level
	// constants, data sets, fGn weights, MA-fBM transitions, domains, FFT twiddles): past it the
	// least recently used tables of earlier calls are freed. 0 means DefaultTableFraction of the
	// device's memory.
	TableBytes int64
}

// DefaultTableFraction is the share of device memory the table budget takes by default.
const DefaultTableFraction = 0.5

// New returns the CUDA backend for dev with default Options. The backend does not own dev: close
// dev after the backend.
func New(dev *tensor.CUDADevice) (ops.Backend, error) { return NewWithOptions(dev, Options{}) }

// NewWithOptions returns the CUDA backend for dev configured by o.
func NewWithOptions(dev *tensor.CUDADevice, o Options) (*Backend, error) {
	if dev == nil {
		return nil, fmt.Errorf("cuda backend: nil device")
	}
	if o.TableBytes < 0 {
		return nil, fmt.Errorf("cuda backend: table budget %d bytes is negative", o.TableBytes)
	}
	budget := o.TableBytes
	if budget == 0 {
		budget = int64(DefaultTableFraction * float64(dev.Info().TotalMemory))
	}
	b := &Backend{dev: dev}
	b.tables = newTableCache(budget, dev.Synchronize)
	b.scratch = newScratchPool(func(dt tensor.DType, elems int) (*tensor.Tensor, error) {
		return tensor.Empty(dev, dt, elems)
	}, dev.Synchronize)
	return b, nil
}

func (b *Backend) Name() string          { return b.dev.Name() }
func (b *Backend) Device() tensor.Device { return b.dev }

// enter starts an op: it takes the backend for the call and returns the function that gives it
// back (defer b.enter()()).
func (b *Backend) enter() func() {
	b.op.Lock()
	b.tables.beginOp()
	return b.op.Unlock
}

// Close frees what the backend holds on the device: the tables (mixtures, data sets, fGn
// weights, MA-fBM transitions, domains, FFT twiddles) and the scratch buffers (FFT, fGn and
// empirical work space, the clamp counter). The backend must not be used afterwards.
func (b *Backend) Close() error {
	b.op.Lock()
	defer b.op.Unlock()
	b.closed = true
	return errors.Join(b.tables.closeAll(), b.scratch.closeAll())
}

// Release frees the device copies the backend keeps of target (an *ops.GMM, *ops.Empirical,
// *ops.MAFBM, *ops.FGNPlan, *ops.Domain or *ops.MLP) now, instead of when the table budget evicts
// them or at Close: for callers that go through many targets (a parameter sweep) and know when one
// is done (see ops.Releaser).
func (b *Backend) Release(target any) error {
	defer b.enter()()
	switch t := target.(type) {
	case *ops.Empirical:
		// The data set is keyed by its data tensor (shared by WithMixture copies), the mixture
		// table by the target.
		return errors.Join(b.tables.release(t), b.tables.release(t.Data()))
	case *ops.FGNPlan:
		// The weights depend on (H, n_e) alone and are shared by the plans that have them.
		return b.tables.release(fgnWeightsOwner{t.Hurst(), t.EmbedSize()})
	}
	return b.tables.release(target)
}

var _ ops.Releaser = (*Backend)(nil)

// TableBytes returns the bytes held by the backend's tables and its budget.
func (b *Backend) TableBytes() (used, budget int64) {
	b.op.Lock()
	defer b.op.Unlock()
	return b.tables.used, b.tables.budget
}

// ScratchBytes returns the bytes held by the backend's scratch buffers.
func (b *Backend) ScratchBytes() int64 {
	b.op.Lock()
	defer b.op.Unlock()
	return b.scratch.bytes()
}

// table returns the cached table key (nil when absent), marking it used by the current op.
func (b *Backend) table(key paramKey) *tableEntry { return b.tables.get(key) }

// upload returns a device copy of data (converted to dt, with the given shape) for the immutable
// target owner, uploading it on first use. Targets are immutable after construction, so a table
// never goes stale.
func (b *Backend) upload(owner any, name string, dt tensor.DType, data []float64, shape ...int) (*tensor.Tensor, error) {
	key := paramKey{owner, name, dt}
	if e := b.tables.get(key); e != nil {
		return e.t, nil
	}
	h, err := tensor.FromFloat64s(dt, data, shape...)
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", name, err)
	}
	return b.keep(key, h)
}

// uploadFrom is upload with the data computed only on first use (data() is not called when the
// table is cached), for targets whose accessors copy or compute.
func (b *Backend) uploadFrom(owner any, name string, dt tensor.DType, data func() []float64, shape ...int) (*tensor.Tensor, error) {
	if e := b.tables.get(paramKey{owner, name, dt}); e != nil {
		return e.t, nil
	}
	return b.upload(owner, name, dt, data(), shape...)
}

// ensureFree evicts tables of earlier ops until the device has at least bytes free (or no table
// is left to evict).
func (b *Backend) ensureFree(bytes int64) error {
	free, _, err := freeMemory(b)
	if err != nil {
		return fmt.Errorf("query free device memory: %w", err)
	}
	if free >= bytes {
		return nil
	}
	return b.tables.evictBytes(bytes - free)
}

// keep copies the host tensor h to the device and caches it under key. When the device is out of
// memory, it frees every table of earlier ops and tries once more.
func (b *Backend) keep(key paramKey, h *tensor.Tensor) (*tensor.Tensor, error) {
	if err := b.tables.makeRoom(h.Bytes()); err != nil {
		return nil, fmt.Errorf("upload %s: %w", key.name, err)
	}
	t, err := h.CopyTo(b.dev)
	if err != nil && b.tables.evictable() > 0 {
		if err := b.tables.makeRoom(math.MaxInt64 / 2); err != nil {
			return nil, fmt.Errorf("upload %s: %w", key.name, err)
		}
		t, err = h.CopyTo(b.dev)
	}
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", key.name, err)
	}
	if _, err := b.tables.put(key, t); err != nil {
		t.Close()
		return nil, fmt.Errorf("upload %s: %w", key.name, err)
	}
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

// launch checks args — the kernel's argument struct (args.go) — against the kernel's entry in the
// generated table and launches it with them.
func (b *Backend) launch(k tensor.Kernel, cfg tensor.LaunchConfig, args any) error {
	e, err := entryOf(k.Module, k.Name)
	if err != nil {
		return err
	}
	vals, err := packArgs(e, args)
	if err != nil {
		return fmt.Errorf("launch %s: %w", k.Name, err)
	}
	return b.dev.Launch(k, cfg, vals...)
}

// typedKernel returns the entry op_<dtype> of module (kernels are named <op>_f32 / <op>_f64).
func (b *Backend) typedKernel(module, op string, dt tensor.DType) (tensor.Kernel, error) {
	return b.kernel(module, op+"_"+dt.String())
}

// sms is the device's multiprocessor count, the planners' measure of its width.
func (b *Backend) sms() int { return b.dev.Info().SMs }

// gridFor is elementGrid on this device.
func (b *Backend) gridFor(work int64) tensor.LaunchConfig { return elementGrid(b.sms(), work) }
