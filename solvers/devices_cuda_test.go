//go:build cuda || cudaemu

package solvers

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/cuda"
	"github.com/scorekit/scorekit/tensor"
)

// openTwo returns backends on GPU 0 and on a second device: GPU 1 where there is one (two
// emulated devices under the host execution of kernels), else GPU 0 again.
func openTwo(t *testing.T) (ops.Backend, ops.Backend) {
	t.Setenv("SCOREKIT_EMU_DEVICES", "2")
	second := gpu
	if n, err := tensor.CUDADeviceCount(); err == nil && n >= 2 {
		dev, err := tensor.OpenCUDA(1)
		require.NoError(t, err)
		t.Cleanup(func() { dev.Close() })
		second = dev
	} else {
		t.Log("one device: both backends on GPU 0")
	}
	b0, err := cuda.New(gpu)
	require.NoError(t, err)
	b1, err := cuda.New(second)
	require.NoError(t, err)
	t.Cleanup(func() { b1.Close(); b0.Close() })
	return b0, b1
}

// FPGD and SGDWOR spread over two devices are the one-device runs.
func TestDescentOnTwoDevices(t *testing.T) {
	b0, b1 := openTwo(t)
	w, err := NewDoubleWell(2, 0.5)
	require.NoError(t, err)
	const n = 6
	x0v := make([]float64, 0, 2*n)
	for i := 0; i < n; i++ {
		x0v = append(x0v, -1, 0.2*float64(i))
	}
	xh, err := tensor.FromFloat64s(tensor.F32, x0v, n, 2)
	require.NoError(t, err)
	x0, err := xh.CopyTo(gpu)
	require.NoError(t, err)
	defer x0.Close()
	for _, method := range []string{FGNDaviesHarte, FGNMAFBM} {
		cfg := FPGDConfig{Method: method, Hurst: 0.6, StepSize: 0.05, Sigma: 1.2, Steps: 40, Seed: 5, FirstChain: 2, Thin: 8}
		want, err := FPGD(b0, w, x0, cfg)
		require.NoError(t, err)
		got, err := FPGDOn([]ops.Backend{b0, b1}, w, x0, cfg)
		require.NoError(t, err)
		for _, p := range [][2]*tensor.Tensor{{want.Final, got.Final}, {want.Trace, got.Trace}} {
			h, err := p[0].CopyTo(tensor.CPU())
			require.NoError(t, err)
			wv, _ := h.Float64s()
			gv, _ := p[1].Float64s()
			require.Equal(t, wv, gv, method)
			h.Close()
		}
		want.Close()
		got.Close()
	}
	cfg := SGDWORConfig{Beta: 0.5, StepSize: 0.05, Sigma: 1, Steps: 30, Epoch: 0.5, Seed: 2, Thin: 5}
	want, err := SGDWOR(b0, w, x0, cfg)
	require.NoError(t, err)
	defer want.Close()
	got, err := SGDWOROn([]ops.Backend{b0, b1}, w, x0, cfg)
	require.NoError(t, err)
	defer got.Close()
	h, err := want.Final.CopyTo(tensor.CPU())
	require.NoError(t, err)
	defer h.Close()
	wv, _ := h.Float64s()
	gv, _ := got.Final.Float64s()
	require.Equal(t, wv, gv)
}

// A run spread over two devices gathers exactly the one-device run: under the host execution of
// kernels, two emulated devices (SCOREKIT_EMU_DEVICES=2); on a machine with one GPU, two backends
// on it. Every method, with trajectories, from FirstChain 3.
func TestRunOnTwoDevices(t *testing.T) {
	b0, b1 := openTwo(t)
	tg := gmmTarget(t, ops.GMMSpec{Weights: []float64{1, 2}, Means: [][]float64{{-2, 0}, {2, 1}}, Vars: []float64{0.5, 1}})
	box, err := ops.NewBox([]float64{-3, -3}, []float64{3, 3})
	require.NoError(t, err)
	const n = 9
	for _, m := range Methods() {
		t.Run(m.Name, func(t *testing.T) {
			o := MethodOptions{Budget: 15, Seed: 4, FirstChain: 3, Trajectory: true, AugmentedTrajectory: m.Takes("hurst")}
			if m.Takes("constraint") {
				o.Domain = box
			}
			want, err := m.Run(b0, tg, n, tensor.F32, o)
			require.NoError(t, err)
			defer want.Close()
			require.NoError(t, hostTensors(gpu, &want.Samples, &want.Trace, &want.Denoised, &want.AugmentedTrace))
			got, err := m.RunOn([]ops.Backend{b0, b1}, tg, n, tensor.F32, o)
			require.NoError(t, err)
			defer got.Close()
			requireSameRun(t, want, got)
			require.True(t, got.Samples.OnHost())
		})
	}
}
