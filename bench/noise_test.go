package bench

import (
	"fmt"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Correlated and heavy-tailed noise (docs/math.md §4.2–4.4): α-stable variates (ops.Backend.Stable),
// MA-fBM paths (MAFBM) and Brownian paths and epoch bridges (Brownian), a fresh draw site per
// call. Each op reads nothing but its random numbers (MAFBM also reads and writes its (paths, K)
// state), so the bytes counted are the output's; "GB/s" is output bytes per second and "%peak"
// divides it by the device's DRAM peak where known. On the CPU all three are compute-bound
// (Philox rounds and the transcendental functions of the maps).
//
//   - Stable: rows × dim values of the symmetric law (α = 1.5; one Philox block and a
//     Chambers–Mallows–Stuck map per value in f64, per two values in f32) or isotropic vectors
//     (α = 1.5; a Box–Muller normal per value and one positive stable mixing variable per row).
//     Metric "samples/s" = values per second.
//   - MAFBM: paths × S steps of K ∈ {2, 5} OU states (H = 0.3, γ_max = 20), from a zeroed state
//     kept across calls (the timed op is a continuation). Metric "path-steps/s" = paths·S per second.
//   - Brownian: paths × n points, plain or restarted as a bridge every τ = 64 steps (which draws each
//     epoch's normals twice). Metric "samples/s".
//
// Benchmark names:
//
//	BenchmarkStable[CUDA]/<kind>/<dtype>/n=<total>/dim=<dim>
//	BenchmarkMAFBM[CUDA]/K=<K>/<dtype>/paths=<paths>/steps=<S>
//	BenchmarkBrownian[CUDA]/<plain|epoch=64>/<dtype>/paths=<paths>/n=<n>

// noiseTarget is a backend, its sweeps and its memory check (nil: always fits).
type noiseTarget struct {
	backend      ops.Backend
	stableTotals []int
	pathCases    []noisePathCase
	fits         func(bytes int64) error
}

// noisePathCase is one (paths, steps) problem of MAFBM and Brownian.
type noisePathCase struct{ paths, steps int }

func (c noisePathCase) String() string {
	return fmt.Sprintf("paths=%s/steps=%s", CountLabel(c.paths), CountLabel(c.steps))
}

var cpuNoiseTarget = noiseTarget{
	stableTotals: []int{64 * Ki, 1 * Mi},
	pathCases:    []noisePathCase{{1 * Ki, 256}, {16 * Ki, 64}},
}

// noiseStableSpecs are the laws BenchmarkStable times.
var noiseStableSpecs = []struct {
	name string
	spec ops.StableSpec
}{
	{"symmetric", ops.StableSpec{Kind: ops.StableSymmetric, Alpha: 1.5}},
	{"isotropic", ops.StableSpec{Kind: ops.StableIsotropic, Alpha: 1.5}},
}

// reportRate reports count items per call as a per-second metric of unit.
func reportRate(b *testing.B, count int64, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(count)*float64(b.N)/s, unit)
	}
}

// newNoiseTensor allocates a (rows, cols) tensor of dt on tg's device, skipping the benchmark when
// it does not fit.
func newNoiseTensor(b *testing.B, tg noiseTarget, dt tensor.DType, rows, cols int) *tensor.Tensor {
	b.Helper()
	bytes := int64(rows) * int64(cols) * int64(dt.Size())
	if tg.fits != nil {
		if err := tg.fits(bytes); err != nil {
			Skipf(b, "%v (%d, %d) (%s): %v", dt, rows, cols, tensor.HumanBytes(bytes), err)
		}
	}
	dev := tg.backend.Device()
	x, err := tensor.New(dev, dt, rows, cols)
	if err != nil {
		b.Fatalf("allocate %v (%d, %d) on %s: %v", dt, rows, cols, dev.Name(), err)
	}
	return x
}

func benchStable(b *testing.B, tg noiseTarget) {
	for _, s := range noiseStableSpecs {
		b.Run(s.name, func(b *testing.B) {
			for _, dt := range DTypes {
				b.Run(dt.String(), func(b *testing.B) {
					for _, total := range tg.stableTotals {
						b.Run("n="+CountLabel(total), func(b *testing.B) {
							for _, dim := range RandomDims {
								b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
									shape, err := ShapeFor(total, dim)
									if err != nil {
										b.Fatal(err)
									}
									x := newNoiseTensor(b, tg, dt, shape.Chains, shape.Dim)
									defer x.Close()
									d := ops.Draw{Seed: 0x5eed}
									RunBandwidth(b, tg.backend.Device(), shape.Bytes(dt), func() error {
										d.Site += 2 // the isotropic kind also draws at Site+1
										_, err := tg.backend.Stable(x, s.spec, d)
										return err
									})
									reportRate(b, int64(total), "samples/s")
								})
							}
						})
					}
				})
			}
		})
	}
}

func benchMAFBM(b *testing.B, tg noiseTarget) {
	for _, k := range []int{2, 5} {
		m, err := ops.NewMAFBM(0.3, k, 20, 1)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("K=%d", k), func(b *testing.B) {
			for _, dt := range DTypes {
				b.Run(dt.String(), func(b *testing.B) {
					for _, c := range tg.pathCases {
						b.Run(c.String(), func(b *testing.B) {
							dst := newNoiseTensor(b, tg, dt, c.paths, c.steps)
							defer dst.Close()
							y := newNoiseTensor(b, tg, dt, c.paths, k)
							defer y.Close()
							if err := y.Fill(0); err != nil {
								b.Fatal(err)
							}
							h := 1 / float64(c.steps)
							d := ops.Draw{Seed: 0x5eed}
							out := int64(c.paths) * int64(c.steps) * int64(dt.Size())
							RunBandwidth(b, tg.backend.Device(), out, func() error {
								d.Site += uint64(c.steps)
								return tg.backend.MAFBM(dst, y, m, h, d, 1)
							})
							reportRate(b, int64(c.paths)*int64(c.steps), "path-steps/s")
						})
					}
				})
			}
		})
	}
}

func benchBrownian(b *testing.B, tg noiseTarget) {
	for _, epoch := range []int{0, 64} {
		name := "plain"
		if epoch > 0 {
			name = fmt.Sprintf("epoch=%d", epoch)
		}
		b.Run(name, func(b *testing.B) {
			for _, dt := range DTypes {
				b.Run(dt.String(), func(b *testing.B) {
					for _, c := range tg.pathCases {
						b.Run(fmt.Sprintf("paths=%s/n=%s", CountLabel(c.paths), CountLabel(c.steps)), func(b *testing.B) {
							x := newNoiseTensor(b, tg, dt, c.paths, c.steps)
							defer x.Close()
							s := ops.BrownianSpec{Horizon: 1, Epoch: epoch}
							d := ops.Draw{Seed: 0x5eed}
							out := int64(c.paths) * int64(c.steps) * int64(dt.Size())
							RunBandwidth(b, tg.backend.Device(), out, func() error {
								d.Site++
								return tg.backend.Brownian(x, s, d)
							})
							reportRate(b, int64(c.paths)*int64(c.steps), "samples/s")
						})
					}
				})
			}
		})
	}
}

func cpuNoise() noiseTarget {
	tg := cpuNoiseTarget
	tg.backend = ops.CPU()
	return tg
}

func BenchmarkStable(b *testing.B)   { benchStable(b, cpuNoise()) }
func BenchmarkMAFBM(b *testing.B)    { benchMAFBM(b, cpuNoise()) }
func BenchmarkBrownian(b *testing.B) { benchBrownian(b, cpuNoise()) }
