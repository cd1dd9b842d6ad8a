//go:build cuda || cudaemu

package bench

import "testing"

// The diffusion samplers on the GPU: solvers.Diffusion on the CUDA backend, the problems and
// metrics of diffusion_test.go with 10^5 samples of the 2-D (K = 8) and 64-D (K = 16) mixtures,
// euler, heun and dpmpp-2m at 18, 50 and 100 steps, f32 and f64.
//
// A run is what solvers.Diffusion does on any backend: per denoiser evaluation one GMMScore launch
// (the exact denoiser), per update one Combine launch (the whole multi-term update, fresh normals
// drawn in the kernel where a method has noise), the state in device memory between them; at the
// end the NaN scan of the samples on the host. The peer (peers/diffusion_torch.py) runs the same
// samplers k-diffusion style (a Python loop over steps, the closed-form denoiser in torch ops) on
// the same mixtures and prints the same samples/s, score-evals/s, mode-tv and scale-err.
//
// Each problem runs on its own backend (problemBackend: a fresh cuda.New backend over the shared
// device, closed after the problem).

// cudaSamplerTarget is GPU 0 with a fresh backend per problem; skipped when no GPU opens.
func cudaSamplerTarget(b *testing.B) samplerTarget {
	requireGPU(b)
	return samplerTarget{
		backend: problemBackend,
		fits:    fitsOnGPU,
	}
}

// BenchmarkDiffusionCUDA is solvers.Diffusion (euler, heun, dpmpp-2m; 18, 50, 100 steps) on GPU 0:
// 10^5 samples of the 2-D mixture with 8 components and of the 64-D one with 16, f32 and f64.
func BenchmarkDiffusionCUDA(b *testing.B) {
	benchDiffusion(b, cudaSamplerTarget(b), DTypes, cudaDiffusionProblems)
}
