//go:build !cuda

package train

import (
	"fmt"
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
