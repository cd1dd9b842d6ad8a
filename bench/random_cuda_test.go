//go:build cuda

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

// cudaTarget is the CUDA sweep; the benchmark is skipped with the reason when no GPU opens.
func cudaTarget(b *testing.B) fillTarget {
	be, err := openGPU()
	if err != nil {
		Skipf(b, "%v", err)
	}
	return fillTarget{backend: be, totals: CUDATotals, fits: fitsOnGPU}
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

func BenchmarkNormalCUDA(b *testing.B)  { benchFill(b, cudaTarget(b), fillNormal, DTypes) }
func BenchmarkUniformCUDA(b *testing.B) { benchFill(b, cudaTarget(b), fillUniform, DTypes) }

// BenchmarkPhiloxBitsCUDA is the raw generator on the GPU (f32 bit patterns, no transform).
func BenchmarkPhiloxBitsCUDA(b *testing.B) {
	benchFill(b, cudaTarget(b), fillBits, []tensor.DType{tensor.F32})
}
