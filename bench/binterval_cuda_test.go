//go:build cuda || cudaemu

package bench

import "testing"

// The Brownian-interval suite of binterval_test.go on GPU 0 (ops/cuda/binterval.go,
// kernels/binterval.cu): one thread per query, so the GPU fills with ≳ 10^5 queries:
// 2^14 and 2^17 paths × 1000 queries (up to 1 GB of f64 output).
func BenchmarkBrownianIncrementsCUDA(b *testing.B) {
	benchBrownianIncrements(b, requireGPU(b), []bintervalCase{{16 * Ki, 1000}, {128 * Ki, 1000}}, fitsOnGPU)
}
