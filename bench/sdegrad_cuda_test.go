//go:build cuda || cudaemu

package bench

import "testing"

// BenchmarkSDEGradientCUDA is BenchmarkSDEGradient's "fused" path on GPU 0: the forward solve
// (SolveOn: BrownianIncrements and the fused ReversibleHeun op per chunk of 256 steps) and the
// adjoint (AdjointOn: BrownianIncrements and the fused ReversibleHeunAdjoint op per chunk, last
// chunk first), float64, for the affine families (ou, gbm):
// BenchmarkSDEGradientCUDA/<family>/fused/paths=16/d=4/steps=<S>. The time includes the uploads
// of x_0 and the cotangents and the downloads of the final state and the gradient. The GPU peers
// (sde_torchsde.py, sde_diffrax.py on CUDA) map to these rows.
func BenchmarkSDEGradientCUDA(b *testing.B) {
	benchSDEGradient(b, requireGPU(b), []string{"fused"})
}
