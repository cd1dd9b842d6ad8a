//go:build cuda || cudaemu

package solvers

import (
	"fmt"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/cuda"
	"github.com/scorekit/scorekit/tensor"
)

// Whole sampler runs on the GPU against the CPU reference from the same seed: the fused path
// (one GMMChains launch per stretch of steps), the step-by-step path on the GPU and the CPU
// reference must give the same samples within a tolerance that follows from the ops' tolerances,
// except for chains where a MALA accept/reject decision flips on a near tie — counted, and
// required to be rare.

var gpu *tensor.CUDADevice

func TestMain(m *testing.M) {
	var err error
	if gpu, err = tensor.OpenCUDA(0); err != nil {
		println("solvers cuda tests: open GPU 0:", err.Error())
		os.Exit(1)
	}
	code := m.Run()
	if err := gpu.Close(); err != nil {
		println("solvers cuda tests: close GPU:", err.Error())
		code = 1
	}
	os.Exit(code)
}

// rowDisagreement compares rows of got and want (N, d): a row agrees when every coordinate is within
// atol + rtol·|want|; it returns the fraction of rows that do not.
func rowDisagreement(t *testing.T, want, got *tensor.Tensor, atol, rtol float64) (float64, float64) {
	t.Helper()
	w, err := want.Float64s()
	require.NoError(t, err)
	g, err := got.Float64s()
	require.NoError(t, err)
	n, d := want.Dim(0), want.Dim(1)
	bad, maxErr := 0, 0.0
	for i := 0; i < n; i++ {
		ok := true
		for j := 0; j < d; j++ {
			e := math.Abs(g[i*d+j] - w[i*d+j])
			if !(e <= atol+rtol*math.Abs(w[i*d+j])) {
				ok = false
			} else if e > maxErr {
				maxErr = e
			}
		}
		if !ok {
			bad++
		}
	}
	return float64(bad) / float64(n), maxErr
}

func TestGPUSamplersMatchCPU(t *testing.T) {
	before := gpu.Allocated()
	b := openBackend(t)
	mix := gmmTarget(t, ops.GMMSpec{
		Weights: []float64{0.2, 0.5, 0.3},
		Means:   [][]float64{{-3, 0, 1, 0}, {3, 1, 0, -1}, {0, -3, 0, 2}},
		Diag:    [][]float64{{0.5, 1, 2, 1}, {1, 0.25, 1, 1}, {0.3, 0.3, 0.3, 0.3}},
	})
	const n = 4096
	// Per dtype: the tolerance on a sample after a whole run (a few hundred ops, each within the
	// op tolerance of optest; errors do not grow on contractive targets), and the fraction of
	// chains allowed to differ because a MALA decision flipped (f64: a tie within 1e-10 of log U
	// has probability ~1e-10 per step; f32: log α carries ~1e-5 relative error, so flips stay
	// below ~1e-3 of the chains over these runs).
	for _, c := range []struct {
		dt         tensor.DType
		atol, rtol float64
		flips      float64
	}{{tensor.F64, 1e-8, 1e-8, 0}, {tensor.F32, 2e-3, 2e-3, 0.01}} {
		runs := []struct {
			name string
			run  func(b ops.Backend, stepByStep bool) (*Result, error)
		}{
			{"mala", func(b ops.Backend, sbs bool) (*Result, error) {
				x0 := startRows(t, b.Device(), c.dt, n, 4)
				defer x0.Close()
				return Langevin(b, mix, x0, LangevinConfig{Method: MethodMALA, Steps: 200, StepSize: 0.05, Seed: 3, StepByStep: sbs})
			}},
			{"uld", func(b ops.Backend, sbs bool) (*Result, error) {
				x0 := startRows(t, b.Device(), c.dt, n, 4)
				defer x0.Close()
				return Langevin(b, mix, x0, LangevinConfig{Method: MethodULD, Steps: 200, StepSize: 0.05, Friction: 2, Seed: 4, StepByStep: sbs})
			}},
			{"rtk-mala", func(b ops.Backend, sbs bool) (*Result, error) {
				return RTK(b, mix, n, c.dt, RTKConfig{Inner: MethodMALA, Seed: 5, StepByStep: sbs})
			}},
			{"rtk-uld", func(b ops.Backend, sbs bool) (*Result, error) {
				return RTK(b, mix, n, c.dt, RTKConfig{Inner: MethodULD, Seed: 6, StepByStep: sbs})
			}},
			{"ddpm", func(b ops.Backend, _ bool) (*Result, error) {
				return DDPM(b, mix, n, c.dt, DDPMConfig{Steps: 100, Seed: 7})
			}},
		}
		for _, r := range runs {
			t.Run(fmt.Sprintf("%s/%v", r.name, c.dt), func(t *testing.T) {
				ref, err := r.run(ops.Reference(), true)
				require.NoError(t, err)
				defer ref.Close()
				for _, sbs := range []bool{false, true} {
					got, err := r.run(b, sbs)
					require.NoError(t, err)
					host, err := got.Samples.CopyTo(tensor.CPU())
					require.NoError(t, err)
					frac, maxErr := rowDisagreement(t, ref.Samples, host, c.atol, c.rtol)
					t.Logf("%s %v step-by-step=%v: max abs error %.3g on agreeing chains, %.4f%% chains differ",
						r.name, c.dt, sbs, maxErr, 100*frac)
					require.LessOrEqual(t, frac, c.flips, "chains that differ from the CPU reference")
					require.Equal(t, ref.Evals, got.Evals)
					host.Close()
					got.Close()
				}
			})
		}
	}
	closeBackend(t, b)
	require.Equal(t, before, gpu.Allocated(), "device memory held after the sampler runs and the backend's Close")
}

// openBackend is a CUDA backend on gpu, closed at the end of the test unless closeBackend closed
// it first (the backend keeps what it uploads, a mixture's tables, until Close).
func openBackend(t *testing.T) ops.Backend {
	t.Helper()
	b, err := cuda.New(gpu)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

// closeBackend closes b (a second Close, at cleanup, does nothing).
func closeBackend(t *testing.T, b ops.Backend) {
	t.Helper()
	require.NoError(t, b.Close())
}

// startRows is a deterministic spread of starting points on dev.
func startRows(t *testing.T, dev tensor.Device, dt tensor.DType, n, d int) *tensor.Tensor {
	rows := make([][]float64, n)
	for i := range rows {
		rows[i] = make([]float64, d)
		for j := range rows[i] {
			rows[i][j] = 3 * math.Sin(float64(i*d+j)+0.5)
		}
	}
	x := fromRows(t, dt, rows)
	if dev.Kind() == tensor.KindCPU {
		return x
	}
	on, err := x.CopyTo(dev)
	require.NoError(t, err)
	return on
}
