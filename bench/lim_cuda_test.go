//go:build cuda || cudaemu

package bench

import (
	"testing"

	"github.com/scorekit/scorekit/tensor"
)

// The Lévy–Itō model on the GPU: solvers.LIM on the CUDA backend, the sweep and metrics of
// lim_test.go (α ∈ {1.5, 1.8}; det: η = 0, 40 steps; stoch: η = 1, 160 steps, no clamp; float32)
// over 10^3 … 10^6 samples of the 2-D mixture with 3 components, the 16-D one with 8 and the data
// set of 200 draws from the 2-D mixture.
//
// A run is what solvers.LIM does on any backend: the exact start drawn on the host and uploaded,
// per step one denoiser evaluation (for the mixtures one GMMScaleMixtureDenoise launch over the
// 64-node quadrature, for the data set one EmpiricalScore launch over its 16-node scale mixture),
// one Combine and (stoch) one isotropic α-stable draw on the device, and at the end the NaN scan of
// the samples.
//
// Each problem runs on its own backend (problemBackend: a fresh cuda.New backend over the shared
// device, closed after the problem); problems whose device tensors (limDeviceBytes, plus
// cudaHeadroom) do not fit in the free memory are skipped with the reason. Under the host
// execution of kernels (cudaemu: correct, not fast) the sweep is emuLIMProblems, 10^3 samples of
// the 2-D mixture, so that the benchmark's path is exercised in seconds.

// emuLIMProblems is the sweep of the emulated build.
var emuLIMProblems = []limProblem{{2, 3, 0, 1e3}}

// BenchmarkLIMCUDA is solvers.LIM (α ∈ {1.5, 1.8}; det: η = 0, 40 steps; stoch: η = 1, 160 steps)
// on GPU 0 in float32: 10^3 … 10^6 samples of the 2-D mixture with 3 components, of the 16-D one
// with 8 and of the data set of 200 draws from the 2-D mixture (emulated: 10^3 samples of the 2-D
// mixture).
func BenchmarkLIMCUDA(b *testing.B) {
	problems := cudaLIMProblems
	if tensor.CUDAEmulated {
		problems = emuLIMProblems
	}
	benchLIM(b, cudaSamplerTarget(b), []tensor.DType{tensor.F32}, problems)
}
