//go:build cuda || cudaemu

package bench

import (
	"testing"

	"github.com/scorekit/scorekit/tensor"
)

// cudaTarget is the CUDA sweep on GPU 0's shared backend (gpu_cuda_test.go); the benchmark is
// skipped with the reason when no GPU opens.
func cudaTarget(b *testing.B) fillTarget {
	return fillTarget{backend: requireGPU(b), totals: CUDATotals, fits: fitsOnGPU}
}

func BenchmarkNormalCUDA(b *testing.B)  { benchFill(b, cudaTarget(b), fillNormal, DTypes) }
func BenchmarkUniformCUDA(b *testing.B) { benchFill(b, cudaTarget(b), fillUniform, DTypes) }

// BenchmarkPhiloxBitsCUDA is the raw generator on the GPU (f32 bit patterns, no transform).
func BenchmarkPhiloxBitsCUDA(b *testing.B) {
	benchFill(b, cudaTarget(b), fillBits, []tensor.DType{tensor.F32})
}
