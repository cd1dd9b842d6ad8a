//go:build cuda || cudaemu

package bench

import "testing"

// The noise suites of noise_test.go on GPU 0 (ops/cuda/noise.go, kernels/noise.cu), with the same
// metrics. Stable: 2^20, 2^24 and 2^27 values (≈ 10^6 … 1.3·10^8; 512 MiB in f32, 1 GiB in f64 at
// the top), elementwise, one thread per Philox block. MAFBM and Brownian run one thread per path,
// so the GPU fills only with ≳ 10^5 paths: paths ∈ {2^14, 2^17, 2^20} × 256 steps (up to 2^28
// outputs: 1 GiB in f32, 2 GiB in f64).
func cudaNoise(b *testing.B) noiseTarget {
	return noiseTarget{
		backend:      requireGPU(b),
		stableTotals: []int{1 * Mi, 16 * Mi, 128 * Mi},
		pathCases:    []noisePathCase{{16 * Ki, 256}, {128 * Ki, 256}, {1 * Mi, 256}},
		fits:         fitsOnGPU,
	}
}

func BenchmarkStableCUDA(b *testing.B)   { benchStable(b, cudaNoise(b)) }
func BenchmarkMAFBMCUDA(b *testing.B)    { benchMAFBM(b, cudaNoise(b)) }
func BenchmarkBrownianCUDA(b *testing.B) { benchBrownian(b, cudaNoise(b)) }
