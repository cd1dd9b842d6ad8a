//go:build cuda || cudaemu

package bench

import (
	"testing"

	"github.com/scorekit/scorekit/solvers"
)

// The Langevin samplers on the GPU: solvers.Langevin on the CUDA backend, the problems and metrics
// of langevin_test.go over chains ∈ {10^3, 10^4, 10^5, 10^6} × d ∈ {2, 16, 128}, f32 and f64.
//
// The run is what solvers.Langevin does on any backend: per step one GMMScore launch (MALA: score
// and log p of the proposal, fused), one Step launch (the proposal or the ULA move, normals drawn
// in the kernel) and for MALA one MALAAccept launch — separate kernels with the state in device
// memory between them, not a fused multi-step kernel. At the end of every call the solver copies
// the final state to the host and scans it for NaN (solvers' NaN report) and, for MALA, copies the
// acceptance counts: at 10^6 chains × d = 128 that copy and scan are part of the time. These rows are the baseline a fused kernel
// (docs/math.md §2: the chain's state in registers for S steps) is measured against; the design's
// target for it is MALA ≥ 10× JAX (peers/mala_jax.py) at 10^5 chains, d = 2..16.
//
// Each problem runs on its own backend (problemBackend: a fresh cuda.New backend over the shared
// device, closed after the problem). Problems whose tensors (langevinBytes, plus cudaHeadroom) do
// not fit in the free device memory are skipped with the reason.

// cudaLangevinTarget is GPU 0 with a fresh backend per problem; skipped when no GPU opens.
func cudaLangevinTarget(b *testing.B) langevinTarget {
	requireGPU(b)
	return langevinTarget{
		backend: problemBackend,
		fits:    fitsOnGPU,
	}
}

// BenchmarkMALACUDA is MALA (solvers.Langevin, 20 steps, h = 0.3) on GPU 0 on a K = 4 isotropic
// mixture: chains ∈ {10^3..10^6} × d ∈ {2, 16, 128}, f32 and f64.
func BenchmarkMALACUDA(b *testing.B) {
	benchLangevin(b, cudaLangevinTarget(b), solvers.MethodMALA, DTypes, cudaLangevinCases)
}

// BenchmarkULACUDA is ULA on the problems of BenchmarkMALACUDA.
func BenchmarkULACUDA(b *testing.B) {
	benchLangevin(b, cudaLangevinTarget(b), solvers.MethodULA, DTypes, cudaLangevinCases)
}
