package bench

import (
	"fmt"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// A run spread over several backends (solvers.Method.RunOn): Heun at 35 score evaluations on a
// 2-D mixture of 8 components, N chains split over k backends by index range and gathered on the
// host. Metric: chain-steps/s. On the CPU the k backends share the same cores, so this measures
// what splitting and gathering cost, not a speed-up (k = 1 is m.Run plus the copy to the host);
// BenchmarkRunOnDevicesCUDA runs the same over the GPUs of a machine.

var runOnSizes = []int{16384, 131072}

// runOnTarget is the 2-D mixture of 8 isotropic components of the device benchmarks.
func runOnTarget(b *testing.B) target.Target {
	spec := ops.GMMSpec{}
	for k := 0; k < 8; k++ {
		spec.Weights = append(spec.Weights, float64(k+1))
		spec.Means = append(spec.Means, []float64{float64(3 * (k % 4)), float64(3 * (k / 4))})
		spec.Vars = append(spec.Vars, 0.5)
	}
	g, err := ops.NewGMM(spec)
	if err != nil {
		b.Fatal(err)
	}
	return target.GMM{Mixture: g}
}

// benchRunOn times m.RunOn over the backends for n chains.
func benchRunOn(b *testing.B, backends []ops.Backend, n int) {
	m, err := solvers.LookupMethod(solvers.MethodHeun)
	if err != nil {
		b.Fatal(err)
	}
	tg := runOnTarget(b)
	o := solvers.MethodOptions{Budget: 35, Seed: 1}
	steps, err := m.Steps(o)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := m.RunOn(backends, tg, n, tensor.F32, o)
		if err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(n)*float64(steps)*float64(b.N)/s, "chain-steps/s")
	}
}

// BenchmarkRunOnBackends: k ∈ {1, 2, 4} CPU backends.
func BenchmarkRunOnBackends(b *testing.B) {
	for _, n := range runOnSizes {
		for _, k := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("N=%d/backends=%d", n, k), func(b *testing.B) {
				backends := make([]ops.Backend, k)
				for i := range backends {
					backends[i] = ops.CPU()
				}
				benchRunOn(b, backends, n)
			})
		}
	}
}
