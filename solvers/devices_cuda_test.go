//go:build cuda || cudaemu

package solvers

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/cuda"
	"github.com/scorekit/scorekit/tensor"
)

// A run spread over two devices gathers exactly the one-device run: under the host execution of
// kernels, two emulated devices (SCOREKIT_EMU_DEVICES=2); on a machine with one GPU, two backends
// on it. Every method, with trajectories, from FirstChain 3.
func TestRunOnTwoDevices(t *testing.T) {
	t.Setenv("SCOREKIT_EMU_DEVICES", "2")
	second := gpu
	if n, err := tensor.CUDADeviceCount(); err == nil && n >= 2 {
		dev, err := tensor.OpenCUDA(1)
		require.NoError(t, err)
		defer dev.Close()
		second = dev
	} else {
		t.Log("one device: both backends on GPU 0")
	}
	b0, err := cuda.New(gpu)
	require.NoError(t, err)
	defer b0.Close()
	b1, err := cuda.New(second)
	require.NoError(t, err)
	defer b1.Close()
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
			require.NoError(t, want.toHost())
			got, err := m.RunOn([]ops.Backend{b0, b1}, tg, n, tensor.F32, o)
			require.NoError(t, err)
			defer got.Close()
			requireSameRun(t, want, got)
			require.True(t, got.Samples.OnHost())
		})
	}
}
