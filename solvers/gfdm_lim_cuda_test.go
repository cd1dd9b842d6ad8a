//go:build cuda || cudaemu

package solvers

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// Whole GFDM and LIM runs on the GPU against the CPU reference from the same seed. No run has an
// accept/reject decision, so no row may differ; the tolerances follow from what the two backends
// compute differently.

// gpuParityMix is the 3-D mixture of the GFDM and LIM parity runs.
var gpuParityMix = ops.GMMSpec{
	Weights: []float64{0.2, 0.5, 0.3},
	Means:   [][]float64{{-4, 0, 1}, {3, 1, 0}, {0, -3, 2}},
	Diag:    [][]float64{{0.5, 1, 2}, {1, 0.25, 1}, {0.3, 0.3, 0.3}},
}

// compareRuns requires every row of have (on any device) to be within atol + rtol·|want| of want
// (rows of d values) and returns the largest absolute error.
func compareRuns(t *testing.T, what string, want, have *tensor.Tensor, d int, atol, rtol float64) float64 {
	t.Helper()
	rows := want.Len() / d
	w, err := want.Reshape(rows, d)
	require.NoError(t, err)
	h, err := have.CopyTo(tensor.CPU())
	require.NoError(t, err)
	defer h.Close()
	hr, err := h.Reshape(rows, d)
	require.NoError(t, err)
	frac, maxErr := rowDisagreement(t, w, hr, atol, rtol)
	require.Zero(t, frac, "%s: rows that differ from the CPU reference", what)
	return maxErr
}

// TestGPUGFDMMatchesCPU: GFDMSample with both solvers (reverse SDE, probability-flow ODE) and the
// exponential integrator of the reverse SDE on the GPU against the CPU reference, samples and
// trajectory. Both run the same steps (ops.AugmentedStep: the kernel is bit for bit the
// reference, normals included) and the same mixture op in float64 (GMMScore, the denoiser); what
// differs is the mixture op's rounding (a few ulp of float64 per value, exp and log of the kernel
// against Go's) carried through the run. The reverse flow contracts towards the modes, so the
// float64 samples agree to far better than 1e-9 (measured: logged). The dtype only rounds the
// float64 result once at the end, so the float32 samples may differ by one float32 ulp (2⁻²³·|x|)
// where the two float64 values straddle a rounding boundary, plus the float64 bound.
func TestGPUGFDMMatchesCPU(t *testing.T) {
	before := gpu.Allocated()
	b := openBackend(t)
	den := TargetDenoiser(gmmTarget(t, gpuParityMix))
	p := newGFDM(t, GFDMConfig{Base: GFDMBaseFVE, Hurst: 0.3, K: 2})
	n := 1031
	if testing.Short() {
		n = 97
	}
	const tol64 = 1e-9
	for _, c := range []struct {
		dt         tensor.DType
		atol, rtol float64
	}{{tensor.F64, tol64, tol64}, {tensor.F32, tol64, 0x1p-23 + tol64}} {
		for _, m := range []struct {
			solver string
			exp    bool
			steps  int
		}{{GFDMSolverSDE, false, 240}, {GFDMSolverODE, false, 120}, {GFDMSolverSDE, true, 60}} {
			solver := m.solver
			if m.exp {
				solver += "-exponential"
			}
			t.Run(fmt.Sprintf("%s/%v", solver, c.dt), func(t *testing.T) {
				cfg := GFDMSampleConfig{Process: p, Solver: m.solver, Exponential: m.exp, Steps: m.steps, Seed: 29, FirstChain: 7, Trajectory: true}
				ref, err := GFDMSample(ops.Reference(), den, n, c.dt, cfg)
				require.NoError(t, err)
				defer ref.Close()
				got, err := GFDMSample(b, den, n, c.dt, cfg)
				require.NoError(t, err)
				defer got.Close()
				es := compareRuns(t, "samples", ref.Samples, got.Samples, 3, c.atol, c.rtol)
				et := compareRuns(t, "trajectory", ref.Trace, got.Trace, 3, c.atol, c.rtol)
				t.Logf("gfdm %s %v: max abs error samples %.3g, trajectory %.3g", solver, c.dt, es, et)
				require.Equal(t, ref.Evals, got.Evals)
				require.Equal(t, ref.Sigmas, got.Sigmas)
			})
		}
	}
	closeBackend(t, b)
	require.Equal(t, before, gpu.Allocated(), "device memory held after the GFDM runs and the backend's Close")
}

// TestGPULIMMatchesCPU: LIM, deterministic (η = 0) and stochastic (η = 0.7, noise clamped to 20),
// on the GPU against the CPU reference, samples and trajectories, on two targets:
//
//   - the mixture, whose LIM denoiser is GMMScaleMixtureDenoise (the scale-mixture kernel: the
//     reference's float64 terms with the device's log and exp, within a few ulp of float64 per
//     step); the device also runs Combine (the same float64 sum in the same order, rounded once)
//     and, with η > 0, Stable (optest.StableTolerance: float64 ≈ 1e-14 relative; float32, the
//     kernel's powf/logf/sincospif against the float64 map rounded once, ≈ 1e-5 relative);
//   - a data set, whose denoiser is the EmpiricalScore kernel with the quadrature as its scale
//     mixture (8 nodes, to keep the emulated kernel quick): its rounding (float32: a few hundred
//     ulp of a softmax over M·q terms) enters at every step.
//
// Each step maps y_i to D_i + c(y_i − D_i) + noise with c ≤ 1; the denoiser's slope grows as ρ
// falls, so per-step differences grow by a bounded factor over the run: float64 1e-9, float32
// 2e-3 (as the other whole-run parity tests). The clamp counts agree (a value within the
// tolerance of the clamp is a near-tie, absent at these sizes).
func TestGPULIMMatchesCPU(t *testing.T) {
	before := gpu.Allocated()
	b := openBackend(t)
	pts := make([][]float64, 61)
	for i := range pts {
		pts[i] = []float64{2 * math.Sin(1.3*float64(i)), 1.5 * math.Cos(0.7*float64(i)+1), math.Sin(float64(i*i) + 0.2)}
	}
	pt := fromRows(t, tensor.F64, pts)
	defer pt.Close()
	set, err := ops.NewEmpirical(pt)
	require.NoError(t, err)
	const alpha = 1.7
	mixDen, err := NewLIMDenoiser(gmmTarget(t, gpuParityMix), alpha, 0)
	require.NoError(t, err)
	setDen, err := NewLIMDenoiser(target.Empirical{DataSet: set}, alpha, 8) // 8 nodes: 61·8 kernel terms per row
	require.NoError(t, err)
	n := 1031
	if testing.Short() {
		n = 97
	}
	for _, tg := range []struct {
		name string
		den  *LIMDenoiser
	}{{"mixture", mixDen}, {"dataset", setDen}} {
		for _, c := range []struct {
			dt         tensor.DType
			atol, rtol float64
		}{{tensor.F64, 1e-9, 1e-9}, {tensor.F32, 2e-3, 2e-3}} {
			for _, eta := range []float64{0, 0.7} {
				t.Run(fmt.Sprintf("%s/eta=%g/%v", tg.name, eta, c.dt), func(t *testing.T) {
					cfg := LIMConfig{Alpha: alpha, Steps: 24, Eta: eta, Clamp: 20, Seed: 31, FirstChain: 3, Trajectory: true}
					ref, err := LIM(ops.Reference(), tg.den, n, c.dt, cfg)
					require.NoError(t, err)
					defer ref.Close()
					got, err := LIM(b, tg.den, n, c.dt, cfg)
					require.NoError(t, err)
					defer got.Close()
					es := compareRuns(t, "samples", ref.Samples, got.Samples, 3, c.atol, c.rtol)
					et := compareRuns(t, "trajectory", ref.Trace, got.Trace, 3, c.atol, c.rtol)
					ed := compareRuns(t, "denoised", ref.Denoised, got.Denoised, 3, c.atol, c.rtol)
					t.Logf("lim %s η=%g %v: max abs error samples %.3g, trajectory %.3g, denoised %.3g; clamped %d",
						tg.name, eta, c.dt, es, et, ed, got.Clamped)
					require.Equal(t, ref.Clamped, got.Clamped, "values clamped")
					require.Equal(t, ref.Evals, got.Evals)
					require.Equal(t, ref.NaN, got.NaN)
				})
			}
		}
	}
	closeBackend(t, b)
	require.Equal(t, before, gpu.Allocated(), "device memory held after the LIM runs and the backend's Close")
}
