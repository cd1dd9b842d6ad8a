//go:build cuda || cudaemu

package bench

import (
	"testing"

	"github.com/scorekit/scorekit/tensor"
)

// Generative fractional diffusion on the GPU: solvers.GFDMSample on the CUDA backend, the sweep and
// metrics of gfdm_test.go (sde 100 steps, exp 20, ode 100; K ∈ {1, 3}; H = 0.3, FVE; float32) over
// 10^3 … 10^6 samples of the 2-D mixture with 3 components and the 16-D one with 8.
//
// A run is what solvers.GFDMSample does on any backend (its documentation says where the augmented
// state lives and what crosses to the host): the (K+1)×(K+1) matrices of the run computed on the
// host, the terminal statistic drawn on the host, per denoiser evaluation one GMMScore launch (the
// exact denoiser at the VE level σ̃(t), float64), the steps' normals drawn on the device, and at the
// end the samples rounded to the dtype and scanned for NaN. The peer (peers/gfdm_torch.py) keeps
// the whole state on the GPU (a Python loop over steps, torch ops on the (K+1, N·d) state, the
// closed-form denoiser) and prints the same samples/s, chain-steps/s, GB/s (the same traffic by
// design, gfdmMovedBytes), mode-tv and scale-err.
//
// Each problem runs on its own backend (problemBackend: a fresh cuda.New backend over the shared
// device, closed after the problem); problems whose device tensors (gfdmDeviceBytes, plus
// cudaHeadroom) do not fit in the free memory are skipped with the reason. Under the host
// execution of kernels (cudaemu: correct, not fast) the sweep is emuGFDMProblems, 10^3 samples in
// 2-D, so that the benchmark's path is exercised in seconds.

// emuGFDMProblems is the sweep of the emulated build.
var emuGFDMProblems = []gfdmProblem{{2, 3, 1e3}}

// BenchmarkGFDMCUDA is solvers.GFDMSample (sde 100 steps, exp 20, ode 100; K ∈ {1, 3}; H = 0.3,
// FVE) on GPU 0 in float32: 10^3 … 10^6 samples of the 2-D mixture with 3 components and of the
// 16-D one with 8 (emulated: 10^3 samples in 2-D).
func BenchmarkGFDMCUDA(b *testing.B) {
	problems := cudaGFDMProblems
	if tensor.CUDAEmulated {
		problems = emuGFDMProblems
	}
	benchGFDM(b, cudaSamplerTarget(b), []tensor.DType{tensor.F32}, problems)
}
