package tensor

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// DeviceKind says what kind of processor a Device is.
type DeviceKind int

const (
	KindCPU DeviceKind = iota + 1
	KindCUDA
)

func (k DeviceKind) String() string {
	switch k {
	case KindCPU:
		return "cpu"
	case KindCUDA:
		return "cuda"
	}
	return fmt.Sprintf("DeviceKind(%d)", int(k))
}

// DeviceInfo describes a device for `scorekit info` and for benchmark reports.
type DeviceInfo struct {
	Kind          DeviceKind
	Name          string // "cpu" or the GPU's product name
	Ordinal       int    // GPU index
	Major, Minor  int    // compute capability (CUDA)
	SMs           int    // multiprocessors (CUDA) or logical CPUs
	TotalMemory   int64  // bytes
	MemoryBusBits int    // CUDA: global memory bus width
	MemoryClockHz int64  // CUDA: peak memory clock
	Driver        int    // CUDA driver version (e.g. 12040), 0 for the CPU
	Emulated      bool   // a CUDA device emulated on the host (cudaemu build): correct, not fast
}

// PeakBandwidth is the theoretical DRAM bandwidth in bytes/s (2 transfers per clock), or 0 when
// unknown. Benchmarks report achieved bandwidth as a fraction of it.
func (i DeviceInfo) PeakBandwidth() float64 {
	if i.MemoryClockHz == 0 || i.MemoryBusBits == 0 {
		return 0
	}
	return 2 * float64(i.MemoryClockHz) * float64(i.MemoryBusBits) / 8
}

// Device is a place tensors live and ops run: the CPU, or a CUDA GPU.
type Device interface {
	Kind() DeviceKind
	Name() string // "cpu", "cuda:0"
	Info() DeviceInfo
	// Synchronize waits for all queued work on the device (a no-op on the CPU).
	Synchronize() error
	// Close releases the device; tensors on it must be closed first.
	Close() error
}

// deviceMemory is implemented by devices whose memory is not Go memory.
type deviceMemory interface {
	// alloc returns bytes of device memory, zero-filled when zero is set (else uninitialised).
	alloc(bytes int64, zero bool) (uintptr, error)
	free(p uintptr) error
	htod(dst uintptr, src unsafe.Pointer, bytes int64) error
	dtoh(dst unsafe.Pointer, src uintptr, bytes int64) error
	dtod(dst, src uintptr, bytes int64) error
}

// LaunchConfig is a kernel's grid (blocks), block (threads) and dynamic shared memory (bytes).
type LaunchConfig struct {
	Grid      [3]int
	Block     [3]int
	SharedMem int
}

// Grid1D is a one-dimensional launch of blocks × threads.
func Grid1D(blocks, threads int) LaunchConfig {
	return LaunchConfig{Grid: [3]int{blocks, 1, 1}, Block: [3]int{threads, 1, 1}}
}

// ErrNoCUDA is returned by OpenCUDA in a build without the `cuda` tag.
var ErrNoCUDA = errors.New("this scorekit build has no CUDA support: rebuild with `-tags cuda` " +
	"(needs the CUDA toolkit headers and libcuda; see README, \"GPU build\") on a machine with an NVIDIA GPU")

type cpuDevice struct{}

var theCPU Device = cpuDevice{}

// CPU returns the host device.
func CPU() Device { return theCPU }

func (cpuDevice) Kind() DeviceKind   { return KindCPU }
func (cpuDevice) Name() string       { return "cpu" }
func (cpuDevice) Synchronize() error { return nil }
func (cpuDevice) Close() error       { return nil }
func (cpuDevice) Info() DeviceInfo {
	return DeviceInfo{Kind: KindCPU, Name: "cpu", SMs: runtime.NumCPU()}
}

// HumanBytes formats a byte count as "3.2 GiB".
func HumanBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
