//go:build cuda || cudaemu

package solvers

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Every diffusion method on the GPU against the CPU reference from the same seed: samples, and
// with a trajectory both trajectories, agree row by row within a tolerance that follows from the
// ops' (the denoiser within its op tolerance, Combine's sum formed in float64 on both, the
// normals exact); the probability-flow map is contractive, so errors do not grow over
// the run. There is no accept/reject decision: no row may differ. After the backend's Close the
// device holds what it held before.
func TestGPUDiffusionMatchesCPU(t *testing.T) {
	before := gpu.Allocated()
	b := openBackend(t)
	den := TargetDenoiser(gmmTarget(t, ops.GMMSpec{
		Weights: []float64{0.2, 0.5, 0.3},
		Means:   [][]float64{{-4, 0, 1}, {3, 1, 0}, {0, -3, 2}},
		Diag:    [][]float64{{0.5, 1, 2}, {1, 0.25, 1}, {0.3, 0.3, 0.3}},
	}))
	const n, steps = 1031, 24
	for _, c := range []struct {
		dt         tensor.DType
		atol, rtol float64
	}{{tensor.F64, 1e-9, 1e-9}, {tensor.F32, 2e-3, 2e-3}} {
		for _, m := range DiffusionMethods() {
			t.Run(fmt.Sprintf("%s/%v", m, c.dt), func(t *testing.T) {
				cfg := DiffusionConfig{Method: m, Steps: steps, Seed: 17, FirstChain: 5, Trajectory: m == MethodHeun || m == MethodEDMSDE}
				if m == MethodDDIM {
					cfg.Eta = 0.5
				}
				ref, err := Diffusion(ops.Reference(), den, n, c.dt, cfg)
				require.NoError(t, err)
				defer ref.Close()
				got, err := Diffusion(b, den, n, c.dt, cfg)
				require.NoError(t, err)
				defer got.Close()
				compare := func(what string, want, have *tensor.Tensor) {
					rows := want.Len() / 3
					w, err := want.Reshape(rows, 3)
					require.NoError(t, err)
					h, err := have.CopyTo(tensor.CPU())
					require.NoError(t, err)
					defer h.Close()
					hr, err := h.Reshape(rows, 3)
					require.NoError(t, err)
					frac, maxErr := rowDisagreement(t, w, hr, c.atol, c.rtol)
					t.Logf("%s %v %s: max abs error %.3g", m, c.dt, what, maxErr)
					require.Zero(t, frac, "%s: rows that differ from the CPU reference", what)
				}
				compare("samples", ref.Samples, got.Samples)
				if cfg.Trajectory {
					compare("sampling trajectory", ref.Trace, got.Trace)
					compare("denoising trajectory", ref.Denoised, got.Denoised)
				}
				require.Equal(t, ref.Evals, got.Evals)
				require.Equal(t, ref.NaN, got.NaN)
			})
		}
	}
	closeBackend(t, b)
	require.Equal(t, before, gpu.Allocated(), "device memory held after the diffusion runs and the backend's Close")
}
