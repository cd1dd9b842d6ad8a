//go:build cuda || cudaemu

package solvers

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// A bridge simulated on the GPU (the fused MLP kernel and Combine) against the CPU reference from
// the same seed, forward and backward over two intervals with the trajectory: every row of every
// trace row agrees within the ops' tolerances (the endpoint prediction within the MLP kernel's,
// the step's sum formed in float64 on both; the step (1 − h/r) x + (h/r) D is a convex combination,
// so errors do not grow).
func TestGPUBridgeMatchesCPU(t *testing.T) {
	b := openBackend(t)
	const d, n = 3, 517
	br, err := NewBridge([]float64{0, 1, 2.5}, 0.6, bridgeTestNets(t, 2, d, 10), bridgeTestNets(t, 2, d, 20))
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(7, 8))
	x0 := make([]float64, n*d)
	for i := range x0 {
		x0[i] = rng.NormFloat64()
	}
	for _, c := range []struct {
		dt         tensor.DType
		atol, rtol float64
	}{{tensor.F64, 1e-9, 1e-9}, {tensor.F32, 2e-3, 2e-3}} {
		for _, cfg := range []BridgeSimConfig{
			{From: 0, To: 2.5, Steps: 6, Seed: 3, FirstChain: 9, Trajectory: true},
			{From: 2.5, To: 0.4, Steps: 5, Seed: 4, Trajectory: true},
		} {
			t.Run(fmt.Sprintf("%v/%g-%g", c.dt, cfg.From, cfg.To), func(t *testing.T) {
				host, err := tensor.FromFloat64s(c.dt, x0, n, d)
				require.NoError(t, err)
				ref, err := br.Simulate(ops.Reference(), host, cfg)
				require.NoError(t, err)
				defer ref.Close()
				dev, err := host.CopyTo(b.Device())
				require.NoError(t, err)
				defer dev.Close()
				got, err := br.Simulate(b, dev, cfg)
				require.NoError(t, err)
				defer got.Close()
				require.Equal(t, ref.BridgeTimes, got.BridgeTimes)
				h, err := got.Trace.CopyTo(tensor.CPU())
				require.NoError(t, err)
				defer h.Close()
				rows := ref.Trace.Len() / d
				w, err := ref.Trace.Reshape(rows, d)
				require.NoError(t, err)
				hr, err := h.Reshape(rows, d)
				require.NoError(t, err)
				frac, maxErr := rowDisagreement(t, w, hr, c.atol, c.rtol)
				t.Logf("max abs error %.3g", maxErr)
				require.Zero(t, frac, "rows of the trajectory that differ from the CPU reference")
			})
		}
	}
}
