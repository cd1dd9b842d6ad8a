//go:build cudaemu && !cuda

package tensor

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/scorekit/scorekit/kernels/hostexec"
)

// CUDABuild reports whether this binary was built with CUDA support: the cudaemu build's CUDA
// devices run the kernels on the host (package kernels/hostexec).
const CUDABuild = true

// CUDAEmulated reports whether the CUDA devices of this build are emulated on the host.
const CUDAEmulated = true

// Environment of the emulated devices.
const (
	EnvEmuDevices = "SCOREKIT_EMU_DEVICES"   // number of emulated devices (default 1)
	EnvEmuSMs     = "SCOREKIT_EMU_SMS"       // multiprocessors each reports (default 2)
	EnvEmuMemory  = "SCOREKIT_EMU_MEMORY_MB" // device memory each reports and enforces (default 4096)
)

// CUDADevice is, in a cudaemu build, a host emulation of a CUDA GPU: device memory is host memory
// (one allocation per tensor, so an address sanitizer sees out-of-bounds accesses), and Launch
// runs the host-compiled kernel of the same name (kernels/hostexec) with the same 8-byte
// arguments, grid, block and dynamic shared memory as a GPU launch would get. Launches and copies
// run in order, one at a time, and complete before they return.
type CUDADevice struct {
	ordinal int
	name    string
	info    DeviceInfo

	mu          sync.Mutex // serialises launches and copies (one stream)
	allocs      map[uintptr]int64
	launches    map[string]int64 // completed launches per kernel
	allocated   atomic.Int64
	allocations atomic.Int64
	closeOnce   sync.Once
	closed      atomic.Bool
}

// Kernel is a loaded kernel function of a CUDADevice.
type Kernel struct {
	Module, Name string
	entry        hostexec.Entry
}

func emuInt(name string, def, lo, hi int64) (int64, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want an integer in [%d, %d]", name, v, lo, hi)
	}
	return n, nil
}

// CUDADeviceCount returns the number of emulated devices (SCOREKIT_EMU_DEVICES, default 1).
func CUDADeviceCount() (int, error) {
	n, err := emuInt(EnvEmuDevices, 1, 1, 64)
	if err != nil {
		return 0, fmt.Errorf("cuda (host-emulated): %w", err)
	}
	return int(n), nil
}

// OpenCUDA opens emulated device number ordinal.
func OpenCUDA(ordinal int) (*CUDADevice, error) {
	n, err := CUDADeviceCount()
	if err != nil {
		return nil, err
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("cuda: device %d does not exist (%d device(s) found)", ordinal, n)
	}
	sms, err := emuInt(EnvEmuSMs, 2, 1, 1024)
	if err != nil {
		return nil, fmt.Errorf("cuda (host-emulated): %w", err)
	}
	mb, err := emuInt(EnvEmuMemory, 4096, 1, 1<<24)
	if err != nil {
		return nil, fmt.Errorf("cuda (host-emulated): %w", err)
	}
	return &CUDADevice{
		ordinal: ordinal,
		name:    fmt.Sprintf("cuda:%d", ordinal),
		info: DeviceInfo{
			Kind: KindCUDA, Name: "host-emulated CUDA device (cudaemu)", Ordinal: ordinal,
			Major: 8, Minor: 0, SMs: int(sms), TotalMemory: mb << 20, Emulated: true,
		},
		allocs:   map[uintptr]int64{},
		launches: map[string]int64{},
	}, nil
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

// MemInfo returns the free and total device memory in bytes (the emulated total, less what is
// allocated).
func (d *CUDADevice) MemInfo() (free, total int64, err error) {
	if d.closed.Load() {
		return 0, 0, fmt.Errorf("%s: device is closed", d.name)
	}
	return d.info.TotalMemory - d.allocated.Load(), d.info.TotalMemory, nil
}

// Synchronize returns at once: every launch and copy has completed when it returned.
func (d *CUDADevice) Synchronize() error {
	if d.closed.Load() {
		return fmt.Errorf("%s: device is closed", d.name)
	}
	return nil
}

// Kernel returns the host-compiled kernel name of module; the PTX is not used (the host build is
// compiled from the same source).
func (d *CUDADevice) Kernel(module, ptx, name string) (Kernel, error) {
	if d.closed.Load() {
		return Kernel{}, fmt.Errorf("%s: device is closed", d.name)
	}
	if ptx == "" {
		return Kernel{}, fmt.Errorf("%s: load PTX module %s: empty PTX", d.name, module)
	}
	e, err := hostexec.Lookup(module, name)
	if err != nil {
		return Kernel{}, fmt.Errorf("%s: kernel %s not found in module %s: %w", d.name, name, module, err)
	}
	return Kernel{Module: module, Name: name, entry: e}, nil
}

// Launch runs kernel k and returns when it has finished. Every argument becomes one 8-byte kernel
// parameter, as on a GPU: *Tensor (its device address; it must live on this device), int, int64,
// uint64, uintptr and float64. 4-byte types are refused.
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
	if d.closed.Load() {
		return fmt.Errorf("%s: device is closed", d.name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := hostexec.Launch(k.entry, cfg.Grid, cfg.Block, cfg.SharedMem, vals); err != nil {
		return fmt.Errorf("%s: launch %s (grid %v, block %v): %w", d.name, k.Name, cfg.Grid, cfg.Block, err)
	}
	d.launches[k.Name]++
	// A write past the end of any allocation (into its guard bytes) is this launch's doing.
	for p, size := range d.allocs {
		if over, at := hostexec.Check(p, size); over {
			return fmt.Errorf("%s: launch %s (grid %v, block %v): out-of-bounds write: byte %d of a device allocation "+
				"of %d bytes", d.name, k.Name, cfg.Grid, cfg.Block, at, size)
		}
	}
	return nil
}

// LaunchCounts returns how many launches of each kernel (by entry name) completed on the device.
func (d *CUDADevice) LaunchCounts() map[string]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]int64, len(d.launches))
	for k, v := range d.launches {
		out[k] = v
	}
	return out
}

// Close releases the device. Tensors still open on it are reported (and freed).
func (d *CUDADevice) Close() error {
	var err error
	d.closeOnce.Do(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if live := d.allocated.Load(); live != 0 {
			err = fmt.Errorf("%s: close: %d bytes of open tensors were still allocated", d.name, live)
		}
		for p := range d.allocs {
			hostexec.Free(p)
		}
		d.allocs = nil
		d.closed.Store(true)
	})
	return err
}

// deviceMemory.

func (d *CUDADevice) alloc(bytes int64, zero bool) (uintptr, error) {
	if bytes == 0 {
		return 0, nil
	}
	if d.closed.Load() {
		return 0, fmt.Errorf("%s: device is closed", d.name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if used := d.allocated.Load(); bytes > d.info.TotalMemory-used {
		return 0, fmt.Errorf("allocate %s (%s free of %s): CUDA_ERROR_OUT_OF_MEMORY: out of memory",
			HumanBytes(bytes), HumanBytes(d.info.TotalMemory-used), HumanBytes(d.info.TotalMemory))
	}
	// Memory a GPU hands out uninitialised is filled with 0xff bytes (NaN in either float type), so
	// that reading it before writing it shows.
	fill := byte(0xff)
	if zero {
		fill = 0
	}
	p := hostexec.Alloc(bytes, fill)
	if p == 0 {
		return 0, fmt.Errorf("allocate %s: out of host memory", HumanBytes(bytes))
	}
	d.allocs[p] = bytes
	d.allocated.Add(bytes)
	d.allocations.Add(1)
	return p, nil
}

func (d *CUDADevice) free(p uintptr) error {
	if p == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.allocs == nil { // closed: Close freed it
		return nil
	}
	size, ok := d.allocs[p]
	if !ok {
		return errors.New("CUDA_ERROR_INVALID_VALUE: not an allocation of this device")
	}
	delete(d.allocs, p)
	hostexec.Free(p)
	d.allocated.Add(-size)
	return nil
}

func (d *CUDADevice) htod(dst uintptr, src unsafe.Pointer, bytes int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	hostexec.CopyToDevice(dst, src, bytes)
	return nil
}

func (d *CUDADevice) dtoh(dst unsafe.Pointer, src uintptr, bytes int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	hostexec.CopyFromDevice(dst, src, bytes)
	return nil
}

func (d *CUDADevice) dtod(dst, src uintptr, bytes int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	hostexec.CopyOnDevice(dst, src, bytes)
	return nil
}
