package bench

import (
	"fmt"
	"math"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// Reversible Heun (docs/math.md §4.7). Metric "steps/s" counts coordinate-steps: chains · d ·
// steps per second.
//
//	BenchmarkReversibleHeunOp/<forward|inverse>/<dtype>/coords=<N·d>/q=<q>: the fused op
//	(ops.Backend.ReversibleHeun) alone, q steps per call on precomputed increments;
//	bytes counted: y, z and the increments.
//	BenchmarkReversibleHeunSolve/<fused|generic>/chains=<N>/steps=<steps>: a whole OU solve
//	(d = 1) with its Brownian increments — SolveOn (BrownianIncrements + the op per chunk of
//	256 steps, f64) or the step-by-step Solve on Brownian intervals.

func BenchmarkReversibleHeunOp(b *testing.B) {
	sde, err := ops.GeometricBrownian(0.3, 0.6)
	if err != nil {
		b.Fatal(err)
	}
	be := ops.CPU()
	const coords, q = 4096, 256
	w := make([]float64, coords*q)
	for i := range w {
		w[i] = 0.05 * math.Sin(float64(i))
	}
	dw, err := tensor.FromF64(w, coords, q)
	if err != nil {
		b.Fatal(err)
	}
	for _, dir := range []ops.HeunDirection{ops.HeunForward, ops.HeunInverse} {
		for _, dt := range DTypes {
			b.Run(fmt.Sprintf("%v/%v/coords=%s/q=%d", dir, dt, CountLabel(coords), q), func(b *testing.B) {
				ones := make([]float64, coords)
				for i := range ones {
					ones[i] = 1
				}
				y, err := tensor.FromFloat64s(dt, ones, coords, 1)
				if err != nil {
					b.Fatal(err)
				}
				z, err := tensor.FromFloat64s(dt, ones, coords, 1)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(coords)*int64(2*dt.Size()) + int64(coords*q*8))
				b.ResetTimer()
				for range b.N {
					if err := be.ReversibleHeun(y, z, dw, sde, 1.0/1024, dir); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(coords*q)*float64(b.N)/b.Elapsed().Seconds(), "steps/s")
			})
		}
	}
}

func BenchmarkReversibleHeunSolve(b *testing.B) {
	sde, err := ops.OrnsteinUhlenbeck(1, 0.5, 0.8)
	if err != nil {
		b.Fatal(err)
	}
	const chains, steps = 256, 1024
	r := solvers.ReversibleHeun{SDE: solvers.AffineFamily{SDE: sde, D: 1}, Horizon: 1, Steps: steps, Seed: 3}
	x0 := make([]float64, chains)
	for _, path := range []string{"fused", "generic"} {
		b.Run(fmt.Sprintf("%s/chains=%d/steps=%d", path, chains, steps), func(b *testing.B) {
			for range b.N {
				var err error
				if path == "fused" {
					_, err = r.SolveOn(ops.CPU(), tensor.F64, x0, chains)
				} else {
					_, err = r.Solve(x0, chains)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(chains*steps)*float64(b.N)/b.Elapsed().Seconds(), "steps/s")
		})
	}
}
