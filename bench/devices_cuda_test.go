//go:build cuda || cudaemu

package bench

import (
	"fmt"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/cuda"
	"github.com/scorekit/scorekit/tensor"
)

// BenchmarkRunOnDevicesCUDA: the run of BenchmarkRunOnBackends over the first k GPUs of the
// machine, k = 1, 2, 4, … up to their number (one is skipped when the machine has fewer). Under the
// host execution of kernels it checks only that the benchmark runs.
func BenchmarkRunOnDevicesCUDA(b *testing.B) {
	count, err := tensor.CUDADeviceCount()
	if err != nil {
		b.Fatal(err)
	}
	backends := make([]ops.Backend, 0, count)
	for i := 0; i < count; i++ {
		dev, err := tensor.OpenCUDA(i)
		if err != nil {
			b.Fatal(err)
		}
		defer dev.Close()
		be, err := cuda.New(dev)
		if err != nil {
			b.Fatal(err)
		}
		defer be.Close()
		backends = append(backends, be)
	}
	for _, n := range runOnSizes {
		for k := 1; k <= 8; k *= 2 {
			b.Run(fmt.Sprintf("N=%d/devices=%d", n, k), func(b *testing.B) {
				if k > count {
					Skipf(b, "%d GPUs here", count)
				}
				benchRunOn(b, backends[:k], n)
			})
		}
	}
}
