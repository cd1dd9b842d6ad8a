//go:build !cuda

package train

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkTrainStep times one training step (batch draw, forward, backward, Adam) on the CPU.
func BenchmarkTrainStep(b *testing.B) {
	src := gaussSource(b)
	for _, c := range []struct{ width, depth, layers int }{
		{64, 4, 1}, {64, 8, 1}, {128, 4, 1}, {128, 8, 1}, {128, 4, 2},
	} {
		for _, f32 := range []bool{false, true} {
			dt := "f64"
			if f32 {
				dt = "f32"
			}
			name := fmt.Sprintf("W%d/L%d/blk%d/B256/%s", c.width, c.depth, c.layers, dt)
			b.Run(name, func(b *testing.B) {
				cfg := Config{Width: c.width, Depth: c.depth, BlockLayers: c.layers, Fourier: 8, Param: DepthMuP,
					LR: 1e-3, Batch: 256, Seed: 1, Float32: f32}
				tr, err := New(cfg, src)
				if err != nil {
					b.Fatal(err)
				}
				defer tr.Close()
				if _, err := tr.Step(); err != nil { // warm up
					b.Fatal(err)
				}
				b.ResetTimer()
				for b.Loop() {
					if _, err := tr.Step(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/step")
			})
		}
	}
}

// BenchmarkBridgeIteration times one outer iteration of FitBridge (forward): three intervals of
// 2000 points each fitted concurrently (width 64, depth 2, batch 256, 300 Adam steps per network)
// and the reciprocal projection (40 bridge steps per interval over every point), in d = 2 and
// d = 50. Metrics: seconds per iteration and Adam steps per second over all networks.
func BenchmarkBridgeIteration(b *testing.B) {
	for _, d := range []int{2, 50} {
		b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, uint64(d)))
			times := []float64{0, 1, 2, 3}
			snaps := make([][]float64, len(times))
			for k := range snaps {
				snaps[k] = make([]float64, 2000*d)
				for i := range snaps[k] {
					snaps[k][i] = float64(k) + rng.NormFloat64()
				}
			}
			cfg := BridgeConfig{Net: Config{Width: 64, Depth: 2, BlockLayers: 1, Fourier: 8, LR: 3e-3, Batch: 256, Steps: 300, Seed: 1},
				Eps: 0.5, Iterations: 1, SimSteps: 40}
			for b.Loop() {
				if _, err := FitBridge(cfg, times, snaps, d); err != nil {
					b.Fatal(err)
				}
			}
			s := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(s, "s/iteration")
			b.ReportMetric(float64(3*cfg.Net.Steps)/s, "steps/s")
		})
	}
}
