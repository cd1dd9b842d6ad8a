//go:build cuda

package tensor

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"gorgonia.org/cu"
)

// CUDABuild reports whether this binary was built with CUDA support.
const CUDABuild = true

// CUDAEmulated reports whether the CUDA devices of this build are emulated on the host (the
// cudaemu build); in this build they are real GPUs.
const CUDAEmulated = false

// CUDADevice is one NVIDIA GPU driven through the CUDA driver API (gorgonia.org/cu).
//
// A CUDA context is bound to an OS thread, so every driver call runs on one goroutine that has
// called runtime.LockOSThread and made the device's primary context current; other goroutines
// hand it closures (do). Work is queued on one stream; copies synchronise it, launches do not
// (call Synchronize before reading results with the host clock).
type CUDADevice struct {
	ordinal int
	name    string
	info    DeviceInfo

	work chan func()
	quit chan struct{}

	// Owned by the worker goroutine.
	dev     cu.Device
	ctx     cu.CUContext
	stream  cu.Stream
	modules map[string]cu.Module
	kernels map[string]Kernel

	allocated   atomic.Int64 // bytes held by live allocations
	allocations atomic.Int64 // allocations made
	launchMu    sync.Mutex
	launches    map[string]int64 // queued launches per kernel
	closeOnce   sync.Once
	closed      atomic.Bool
}

// Kernel is a loaded kernel function of a CUDADevice.
type Kernel struct {
	Module, Name string
	fn           cu.Function
}

// OpenCUDA opens GPU number ordinal: retains its primary context on a dedicated OS thread and
// creates the device's stream. In a cuda build the process only starts where a driver answers
// (gorgonia.org/cu calls cuInit at init and exits otherwise), so a missing GPU surfaces here only
// as a bad ordinal.
func OpenCUDA(ordinal int) (*CUDADevice, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, fmt.Errorf("cuda: count devices: %w", err)
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("cuda: device %d does not exist (%d device(s) found)", ordinal, n)
	}
	d := &CUDADevice{
		ordinal: ordinal,
		name:    fmt.Sprintf("cuda:%d", ordinal),
		work:    make(chan func()),
		quit:    make(chan struct{}),
		modules: map[string]cu.Module{},
		kernels: map[string]Kernel{},
	}
	started := make(chan error)
	go d.run(started)
	if err := <-started; err != nil {
		return nil, err
	}
	if err := d.do(d.readInfo); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// run is the device's worker: it owns the OS thread the context is current on.
func (d *CUDADevice) run(started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := func() error {
		dev, err := cu.GetDevice(d.ordinal)
		if err != nil {
			return fmt.Errorf("cuda: get device %d: %w", d.ordinal, err)
		}
		ctx, err := dev.RetainPrimaryCtx()
		if err != nil {
			return fmt.Errorf("cuda: retain primary context of device %d: %w", d.ordinal, err)
		}
		if err := cu.SetCurrentContext(ctx); err != nil {
			dev.ReleasePrimaryCtx()
			return fmt.Errorf("cuda: make context of device %d current: %w", d.ordinal, err)
		}
		s, err := cu.MakeStream(cu.DefaultStream)
		if err != nil {
			dev.ReleasePrimaryCtx()
			return fmt.Errorf("cuda: create stream on device %d: %w", d.ordinal, err)
		}
		d.dev, d.ctx, d.stream = dev, ctx, s
		return nil
	}()
	started <- err
	if err != nil {
		return
	}
	for {
		select {
		case f := <-d.work:
			f()
		case <-d.quit:
			return
		}
	}
}

// do runs f on the device's thread and returns its error.
func (d *CUDADevice) do(f func() error) error {
	if d.closed.Load() {
		return fmt.Errorf("%s: device is closed", d.name)
	}
	errc := make(chan error, 1)
	select {
	case d.work <- func() { errc <- f() }:
	case <-d.quit:
		return fmt.Errorf("%s: device is closed", d.name)
	}
	return <-errc
}

func (d *CUDADevice) readInfo() error {
	name, err := d.dev.Name()
	if err != nil {
		return fmt.Errorf("cuda: device %d name: %w", d.ordinal, err)
	}
	attr := func(a cu.DeviceAttribute) int {
		v, aerr := d.dev.Attribute(a)
		if aerr != nil && err == nil {
			err = aerr
		}
		return v
	}
	total, terr := d.dev.TotalMem()
	d.info = DeviceInfo{
		Kind:          KindCUDA,
		Name:          name,
		Ordinal:       d.ordinal,
		Major:         attr(cu.ComputeCapabilityMajor),
		Minor:         attr(cu.ComputeCapabilityMinor),
		SMs:           attr(cu.MultiprocessorCount),
		TotalMemory:   total,
		MemoryBusBits: attr(cu.GlobalMemoryBusWidth),
		MemoryClockHz: int64(attr(cu.MemoryClockRate)) * 1000,
		Driver:        cu.Version(),
	}
	if err == nil {
		err = terr
	}
	if err != nil {
		return fmt.Errorf("cuda: device %d attributes: %w", d.ordinal, err)
	}
	return nil
}

func (d *CUDADevice) Kind() DeviceKind { return KindCUDA }
func (d *CUDADevice) Name() string     { return d.name }
func (d *CUDADevice) Info() DeviceInfo { return d.info }

// Allocated is the number of bytes held by this device's live tensors (a leak check compares it
// before and after).
func (d *CUDADevice) Allocated() int64 { return d.allocated.Load() }

// Allocations is the number of allocations made on the device so far (a test that an op reuses
// its buffers compares it before and after).
func (d *CUDADevice) Allocations() int64 { return d.allocations.Load() }

// MemInfo returns the driver's free and total device memory in bytes.
func (d *CUDADevice) MemInfo() (free, total int64, err error) {
	err = d.do(func() error {
		var e error
		free, total, e = cu.MemInfo()
		return e
	})
	return
}

// Synchronize waits for all work queued on the device's stream and returns the first error a
// kernel raised.
func (d *CUDADevice) Synchronize() error {
	return d.do(func() error {
		if err := d.stream.Synchronize(); err != nil {
			return fmt.Errorf("%s: synchronize: %w", d.name, err)
		}
		return nil
	})
}

// Kernel loads (once) module's PTX and returns the kernel called name in it.
func (d *CUDADevice) Kernel(module, ptx, name string) (Kernel, error) {
	var k Kernel
	err := d.do(func() error {
		key := module + "/" + name
		if c, ok := d.kernels[key]; ok {
			k = c
			return nil
		}
		m, ok := d.modules[module]
		if !ok {
			var err error
			if m, err = cu.LoadData(ptx); err != nil {
				return fmt.Errorf("%s: load PTX module %s: %w", d.name, module, err)
			}
			d.modules[module] = m
		}
		fn, err := m.Function(name)
		if err != nil {
			return fmt.Errorf("%s: kernel %s not found in module %s: %w", d.name, name, module, err)
		}
		k = Kernel{Module: module, Name: name, fn: fn}
		d.kernels[key] = k
		return nil
	})
	return k, err
}

// Launch queues kernel k on the device's stream. Every argument becomes one 8-byte kernel
// parameter (cu.Launch reads 8 bytes per parameter): *Tensor (its device address; it must live on
// this device), int, int64, uint64, uintptr and float64. 4-byte types are refused: the kernel
// would read garbage in their upper half.
func (d *CUDADevice) Launch(k Kernel, cfg LaunchConfig, args ...any) error {
	vals := make([]uint64, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case *Tensor:
			if v == nil || v.closed {
				return fmt.Errorf("%s: launch %s: argument %d: nil or closed tensor", d.name, k.Name, i)
			}
			if v.dev != Device(d) {
				return fmt.Errorf("%s: launch %s: argument %d is on %s", d.name, k.Name, i, v.dev.Name())
			}
			vals[i] = uint64(v.dptr)
		case int:
			vals[i] = uint64(int64(v))
		case int64:
			vals[i] = uint64(v)
		case uint64:
			vals[i] = v
		case uintptr:
			vals[i] = uint64(v)
		case float64:
			vals[i] = math.Float64bits(v)
		default:
			return fmt.Errorf("%s: launch %s: argument %d has type %T: kernel parameters must be 8-byte values "+
				"(pointers, int64, uint64, float64)", d.name, k.Name, i, a)
		}
	}
	for _, g := range append(cfg.Grid[:], cfg.Block[:]...) {
		if g < 1 {
			return fmt.Errorf("%s: launch %s: bad geometry grid %v block %v", d.name, k.Name, cfg.Grid, cfg.Block)
		}
	}
	return d.do(func() error {
		params := make([]unsafe.Pointer, len(vals))
		for i := range vals {
			params[i] = unsafe.Pointer(&vals[i])
		}
		err := k.fn.Launch(cfg.Grid[0], cfg.Grid[1], cfg.Grid[2], cfg.Block[0], cfg.Block[1], cfg.Block[2],
			cfg.SharedMem, d.stream, params)
		if err != nil {
			return fmt.Errorf("%s: launch %s (grid %v, block %v): %w", d.name, k.Name, cfg.Grid, cfg.Block, err)
		}
		d.launchMu.Lock()
		if d.launches == nil {
			d.launches = map[string]int64{}
		}
		d.launches[k.Name]++
		d.launchMu.Unlock()
		return nil
	})
}

// LaunchCounts returns how many launches of each kernel (by entry name) were queued on the device.
func (d *CUDADevice) LaunchCounts() map[string]int64 {
	d.launchMu.Lock()
	defer d.launchMu.Unlock()
	out := make(map[string]int64, len(d.launches))
	for k, v := range d.launches {
		out[k] = v
	}
	return out
}

// Close destroys the stream, unloads the modules and releases the primary context. Tensors still
// open on the device are reported (their memory goes with the context).
func (d *CUDADevice) Close() error {
	var err error
	d.closeOnce.Do(func() {
		err = d.do(func() error {
			var errs []error
			if e := d.stream.Synchronize(); e != nil {
				errs = append(errs, fmt.Errorf("synchronize: %w", e))
			}
			if e := d.stream.Destroy(); e != nil {
				errs = append(errs, fmt.Errorf("destroy stream: %w", e))
			}
			for name, m := range d.modules {
				if e := m.Unload(); e != nil {
					errs = append(errs, fmt.Errorf("unload module %s: %w", name, e))
				}
			}
			if e := d.dev.ReleasePrimaryCtx(); e != nil {
				errs = append(errs, fmt.Errorf("release context: %w", e))
			}
			if live := d.allocated.Load(); live != 0 {
				errs = append(errs, fmt.Errorf("%d bytes of open tensors were still allocated", live))
			}
			return errors.Join(errs...)
		})
		d.closed.Store(true)
		close(d.quit)
		if err != nil {
			err = fmt.Errorf("%s: close: %w", d.name, err)
		}
	})
	return err
}

// deviceMemory.

func (d *CUDADevice) alloc(bytes int64, zero bool) (uintptr, error) {
	if bytes == 0 {
		return 0, nil
	}
	var p cu.DevicePtr
	err := d.do(func() error {
		var e error
		p, e = cu.MemAlloc(bytes)
		if e != nil {
			free, total, _ := cu.MemInfo()
			return fmt.Errorf("allocate %s (%s free of %s): %w", HumanBytes(bytes), HumanBytes(free), HumanBytes(total), e)
		}
		if zero {
			if e := cu.MemsetD8Async(p, 0, bytes, d.stream); e != nil {
				_ = cu.MemFree(p)
				return fmt.Errorf("clear %s: %w", HumanBytes(bytes), e)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	d.allocated.Add(bytes)
	d.allocations.Add(1)
	return uintptr(p), nil
}

func (d *CUDADevice) free(p uintptr) error {
	if p == 0 {
		return nil
	}
	return d.do(func() error {
		size, _, err := cu.DevicePtr(p).AddressRange()
		if err != nil {
			return err
		}
		if err := cu.MemFree(cu.DevicePtr(p)); err != nil {
			return err
		}
		d.allocated.Add(-size)
		return nil
	})
}

func (d *CUDADevice) htod(dst uintptr, src unsafe.Pointer, bytes int64) error {
	return d.do(func() error {
		if err := cu.MemcpyHtoDAsync(cu.DevicePtr(dst), src, bytes, d.stream); err != nil {
			return fmt.Errorf("%s: copy %s host to device: %w", d.name, HumanBytes(bytes), err)
		}
		if err := d.stream.Synchronize(); err != nil {
			return fmt.Errorf("%s: copy %s host to device: %w", d.name, HumanBytes(bytes), err)
		}
		return nil
	})
}

func (d *CUDADevice) dtoh(dst unsafe.Pointer, src uintptr, bytes int64) error {
	return d.do(func() error {
		if err := cu.MemcpyDtoHAsync(dst, cu.DevicePtr(src), bytes, d.stream); err != nil {
			return fmt.Errorf("%s: copy %s device to host: %w", d.name, HumanBytes(bytes), err)
		}
		if err := d.stream.Synchronize(); err != nil {
			return fmt.Errorf("%s: copy %s device to host: %w", d.name, HumanBytes(bytes), err)
		}
		return nil
	})
}

func (d *CUDADevice) dtod(dst, src uintptr, bytes int64) error {
	return d.do(func() error {
		if err := cu.MemcpyDtoDAsync(cu.DevicePtr(dst), cu.DevicePtr(src), bytes, d.stream); err != nil {
			return fmt.Errorf("%s: copy %s device to device: %w", d.name, HumanBytes(bytes), err)
		}
		return nil
	})
}

// CUDADeviceCount returns the number of CUDA devices the driver sees.
func CUDADeviceCount() (int, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return 0, fmt.Errorf("cuda: count devices: %w", err)
	}
	return n, nil
}
