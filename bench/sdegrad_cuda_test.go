//go:build cuda || cudaemu

package bench

import "testing"

// BenchmarkSDEGradientCUDA is BenchmarkSDEGradient's "fused" path with the forward solve on GPU 0
// (SolveOn: BrownianIncrements and the fused ReversibleHeun op per chunk of 256 steps, float64)
// and the adjoint on the host (solvers.ReversibleHeun.Adjoint has no device path), for the affine
// families (ou, gbm): BenchmarkSDEGradientCUDA/<family>/fused/paths=16/d=4/steps=<S>. The time
// includes the upload of x_0 and the download of the final state. The GPU peers
// (sde_torchsde.py, sde_diffrax.py on CUDA) map to these rows.
func BenchmarkSDEGradientCUDA(b *testing.B) {
	benchSDEGradient(b, requireGPU(b), []string{"fused"})
}
