//go:build cuda || cudaemu

package bench

import "testing"

// BenchmarkCombineCUDA is Combine on GPU 0 (kernels/diffusion.cu): dst = Σ_k C_k T_k (+ noise·ξ
// with the normals drawn in the kernel) for 2..6 terms, without and with noise, over 2^16..2^26
// elements in rows of 64, f32 and f64. "GB/s" counts k term reads and one write (the normals cost
// arithmetic, not traffic) and "%peak" divides it by the device's theoretical DRAM bandwidth:
// the op is memory-bound, so the large sizes should approach the peak (the 2^16 ones are
// launch-bound). Problems that do not fit in the free device memory are skipped with the reason.
func BenchmarkCombineCUDA(b *testing.B) {
	benchCombine(b, requireGPU(b), cudaCombineTotals, fitsOnGPU)
}
