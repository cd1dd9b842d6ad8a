//go:build cuda || cudaemu

package bench

import (
	"testing"

	"github.com/scorekit/scorekit/tensor"
)

// SGD without replacement with its noise on the GPU: solvers.SGDWOR on the CUDA backend, the
// sweep and metrics of sgdwor_test.go (quadratic and double well, epoched and plain noise, 250
// steps, d = 5, float64) over 10^5 and 10^6 chains.
//
// A run is what solvers.SGDWOR does on any backend: the Brownian increments (epoched or plain) of
// every (chain, coordinate) generated on the device in blocks of at most
// solvers.DefaultNoiseBlock values and copied to the host, the float64 recursion on the host in
// parallel over chains, and the final states copied back to the device. chain-steps/s therefore
// measures the device's noise generation, the transfers and the host's recursion together.
//
// Each problem runs on its own backend (problemBackend); problems whose device tensors
// (sgdworDeviceBytes, plus cudaHeadroom) do not fit in the free memory are skipped with the
// reason. Under the host execution of kernels (cudaemu: correct, not fast) the sweep is
// emuSGDWORChains, 10^3 chains, so that the benchmark's path is exercised in seconds.

// emuSGDWORChains is the sweep of the emulated build.
var emuSGDWORChains = []int{1e3}

// BenchmarkSGDWORCUDA is solvers.SGDWOR (β = 0.5, h = 0.02, σ = 1, 250 steps, d = 5; epoched and
// plain noise) on GPU 0: 10^5 and 10^6 chains on the quadratic and the double well (emulated:
// 10^3 chains).
func BenchmarkSGDWORCUDA(b *testing.B) {
	chains := cudaSGDWORChains
	if tensor.CUDAEmulated {
		chains = emuSGDWORChains
	}
	benchSGDWOR(b, cudaSamplerTarget(b), chains)
}
