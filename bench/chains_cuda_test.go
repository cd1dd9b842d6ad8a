//go:build cuda || cudaemu

package bench

import (
	"testing"

	"github.com/scorekit/scorekit/ops"
)

// The fused chains on the GPU (kernels/chains.cu, one launch per 100 steps, the state in
// registers) and, on the same problems, the step-by-step path on the GPU (ops.StepByStepChains:
// per step one launch per op with the state in device memory between them) — the problems and
// metrics of chains_test.go over chains ∈ {10^3, 10^4, 10^5, 10^6} × d ∈ {2, 16, 128}, f32 and
// f64. The peers scripts peers/chains_jax.py and peers/chains_torch.py time the same runs (100
// steps in one compiled loop). Each problem runs on its own backend (problemBackend: a fresh
// cuda.New backend over the shared device, closed after the problem). Problems whose tensors
// (chainsRunBytes, plus cudaHeadroom) do not fit in the free device memory are skipped with the
// reason.

var cudaChainsGrid = []struct{ chains, d int }{
	{1e3, 2}, {1e3, 16}, {1e3, 128}, {1e4, 2}, {1e4, 16}, {1e4, 128},
	{1e5, 2}, {1e5, 16}, {1e5, 128}, {1e6, 2}, {1e6, 16}, {1e6, 128},
}

func cudaChainsCases(m ops.ChainMethod) []chainsCase {
	cs := make([]chainsCase, 0, len(cudaChainsGrid))
	for _, g := range cudaChainsGrid {
		cs = append(cs, chainsCase{m, g.chains, g.d})
	}
	return cs
}

// cudaChainsTarget is GPU 0 with a fresh backend per problem; skipped when no GPU opens.
func cudaChainsTarget(b *testing.B, stepByStep bool) chainsTarget {
	requireGPU(b)
	return chainsTarget{
		backend:    problemBackend,
		fits:       fitsOnGPU,
		stepByStep: stepByStep,
		bandwidth:  true,
	}
}

// BenchmarkChainsMALACUDA is the fused MALA kernel: 100 steps per launch, h = 0.3, K = 4.
func BenchmarkChainsMALACUDA(b *testing.B) {
	benchChains(b, cudaChainsTarget(b, false), DTypes, cudaChainsCases(ops.ChainMALA))
}

// BenchmarkChainsULDCUDA is the fused ULD kernel on the same problems (γ = 1.5, u = 1).
func BenchmarkChainsULDCUDA(b *testing.B) {
	benchChains(b, cudaChainsTarget(b, false), DTypes, cudaChainsCases(ops.ChainULD))
}

// BenchmarkChainsMALAStepByStepCUDA is the same MALA run one op launch at a time.
func BenchmarkChainsMALAStepByStepCUDA(b *testing.B) {
	benchChains(b, cudaChainsTarget(b, true), DTypes, cudaChainsCases(ops.ChainMALA))
}

// BenchmarkChainsULDStepByStepCUDA is the same ULD run one op launch at a time.
func BenchmarkChainsULDStepByStepCUDA(b *testing.B) {
	benchChains(b, cudaChainsTarget(b, true), DTypes, cudaChainsCases(ops.ChainULD))
}
