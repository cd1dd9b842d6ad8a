//go:build cuda || cudaemu

package bench

import (
	"fmt"
	"sync"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/cuda"
	"github.com/scorekit/scorekit/tensor"
)

// GPU 0 and its backend, opened on first use and closed by TestMain after the last benchmark.
var (
	gpuOnce    sync.Once
	gpu        *tensor.CUDADevice
	gpuBackend ops.Backend
	gpuErr     error
)

// cudaHeadroom is the device memory left free next to a benchmark's tensors (the context, loaded
// modules, the driver's own pools).
const cudaHeadroom = 256 << 20

// openGPU opens GPU 0 and its backend once.
func openGPU() (ops.Backend, error) {
	gpuOnce.Do(func() {
		dev, err := tensor.OpenCUDA(0)
		if err != nil {
			gpuErr = fmt.Errorf("open GPU 0: %w", err)
			return
		}
		be, err := cuda.New(dev)
		if err != nil {
			dev.Close()
			gpuErr = fmt.Errorf("cuda backend on %s: %w", dev.Name(), err)
			return
		}
		gpu, gpuBackend = dev, be
		atExit(func() error {
			if err := be.Close(); err != nil {
				return fmt.Errorf("close cuda backend: %w", err)
			}
			if n := dev.Allocated(); n != 0 {
				return fmt.Errorf("%s: %s still allocated after the benchmarks", dev.Name(), tensor.HumanBytes(n))
			}
			return dev.Close()
		})
		// Configuration lines in the benchmark output format, so benchstat keeps them with the
		// results that follow.
		info := dev.Info()
		fmt.Printf("gpu: %s (sm_%d%d, %d SMs, %s, driver %d)\n", info.Name, info.Major, info.Minor,
			info.SMs, tensor.HumanBytes(info.TotalMemory), info.Driver)
		if peak := info.PeakBandwidth(); peak > 0 {
			fmt.Printf("gpu-peak-bandwidth: %.0f GB/s\n", peak/1e9)
		}
	})
	return gpuBackend, gpuErr
}

// requireGPU is GPU 0's shared backend; b is skipped with the reason when no GPU opens.
func requireGPU(b *testing.B) ops.Backend {
	b.Helper()
	be, err := openGPU()
	if err != nil {
		Skipf(b, "%v", err)
	}
	return be
}

// problemBackend is the backend of one problem of the solver suites: a fresh cuda.New backend
// over GPU 0 (opened by requireGPU), and the function that closes it after the problem, so that
// what the problem uploaded (a mixture, a data set) does not stay on the GPU for the rest of the
// sweep. TimeOp's untimed first call loads the kernels and uploads the problem's data, and the
// device is synchronised before the timer stops.
func problemBackend(b *testing.B) (ops.Backend, func()) {
	be, err := cuda.New(gpu)
	if err != nil {
		b.Fatalf("cuda backend on %s: %v", gpu.Name(), err)
	}
	return be, func() {
		if err := be.Close(); err != nil {
			b.Errorf("close cuda backend: %v", err)
		}
	}
}

// fitsOnGPU reports why bytes (plus cudaHeadroom) do not fit in the GPU's free memory now.
func fitsOnGPU(bytes int64) error {
	free, total, err := gpu.MemInfo()
	if err != nil {
		return fmt.Errorf("query free memory: %w", err)
	}
	if bytes+cudaHeadroom > free {
		return fmt.Errorf("needs %s + %s headroom, %s of %s free on %s",
			tensor.HumanBytes(bytes), tensor.HumanBytes(cudaHeadroom),
			tensor.HumanBytes(free), tensor.HumanBytes(total), gpu.Name())
	}
	return nil
}
