package bench

import (
	"fmt"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// Schrödinger-bridge simulation (solvers.Bridge.Simulate): 20 steps of the bridge integrator over
// one interval, each one MLPScore (the endpoint prediction) and one Combine (the step with its
// fresh normals), for N ∈ {4096, 65536} points in d ∈ {2, 50} with networks of width 64, depth
// 2, F = 8 — the sizes of the bridge studies. Metrics: GFLOP/s of the networks (mlpScoreFLOPs per
// step; the step's own arithmetic is not counted) and point-steps/s.

type bridgeCase struct{ n, d int }

func (c bridgeCase) name() string { return fmt.Sprintf("N=%d/d=%d", c.n, c.d) }

var bridgeCases = []bridgeCase{{4096, 2}, {65536, 2}, {4096, 50}, {65536, 50}}

const bridgeBenchSteps = 20

func benchBridge(b *testing.B, tg scoreTarget) {
	for _, dt := range DTypes {
		b.Run(dt.String(), func(b *testing.B) {
			for _, c := range bridgeCases {
				b.Run(c.name(), func(b *testing.B) { benchBridgeCase(b, tg, dt, c) })
			}
		})
	}
}

func benchBridgeCase(b *testing.B, tg scoreTarget, dt tensor.DType, c bridgeCase) {
	cfg := ops.MLPConfig{Dim: c.d, Width: 64, Depth: 2, BlockLayers: 1, Fourier: 8, SigmaData: 1, BranchMult: 1, OutMult: 1}
	flops := bridgeBenchSteps * mlpScoreFLOPs(cfg, c.n)
	if tg.tooSlow != nil {
		if err := tg.tooSlow("mlp", flops); err != nil {
			Skipf(b, "%v", err)
		}
	}
	fwd, err := ops.RandomMLP(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	br, err := solvers.NewBridge([]float64{0, 1}, 0.5, []*ops.MLP{fwd}, nil)
	if err != nil {
		b.Fatal(err)
	}
	bytes := int64(dt.Size()) * 4 * int64(c.n) * int64(c.d) // x0, the state, the prediction, the normals
	if tg.fits != nil {
		if err := tg.fits(bytes); err != nil {
			Skipf(b, "%s: %v", tensor.HumanBytes(bytes), err)
		}
	}
	be, release := tg.backend(b)
	defer release()
	dev := be.Device()
	x, err := benchRows(dev, dt, c.n, c.d, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	sim := solvers.BridgeSimConfig{From: 0, To: 1, Steps: bridgeBenchSteps, Seed: 1}
	TimeOp(b, dev, func() error {
		res, err := br.Simulate(be, x, sim)
		if err != nil {
			return err
		}
		return res.Close()
	})
	reportScoreRate(b, tg, dt, flops)
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(c.n)*bridgeBenchSteps*float64(b.N)/s, "point-steps/s")
	}
}

// BenchmarkBridgeSimulate is the CPU backend (ops.CPU()) over the sweep above.
func BenchmarkBridgeSimulate(b *testing.B) { benchBridge(b, cpuScoreTarget(0)) }
