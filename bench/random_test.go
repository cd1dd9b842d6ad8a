package bench

import (
	"fmt"
	"runtime"
	"slices"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Random fills: Normal, Uniform and PhiloxBits write chains×dim numbers and read nothing, so the
// bytes an op moves are its output bytes. On the CPU they are compute-bound (Philox rounds,
// Box–Muller's log/sin/cos); on a GPU they should run at a large fraction of DRAM bandwidth.

// fillFunc is one of a Backend's fill methods.
type fillFunc func(be ops.Backend, dst *tensor.Tensor, d ops.Draw) error

var (
	fillNormal  fillFunc = func(be ops.Backend, dst *tensor.Tensor, d ops.Draw) error { return be.Normal(dst, d) }
	fillUniform fillFunc = func(be ops.Backend, dst *tensor.Tensor, d ops.Draw) error { return be.Uniform(dst, d) }
	fillBits    fillFunc = func(be ops.Backend, dst *tensor.Tensor, d ops.Draw) error { return be.PhiloxBits(dst, d) }
)

// fillTarget is a backend and the sweep it runs.
type fillTarget struct {
	backend ops.Backend
	totals  []int
	// fits returns why a tensor of the given size cannot be allocated on the backend's device
	// (the benchmark is then skipped with that reason), or nil. Nil means always.
	fits func(bytes int64) error
}

// benchFill runs fill over dtypes × tg.totals × RandomDims as sub-benchmarks
// <dtype>/n=<total>/dim=<dim>. Each call draws a fresh site, as a sampler does step by step.
func benchFill(b *testing.B, tg fillTarget, fill fillFunc, dtypes []tensor.DType) {
	for _, dt := range dtypes {
		b.Run(dt.String(), func(b *testing.B) {
			for _, total := range tg.totals {
				b.Run("n="+CountLabel(total), func(b *testing.B) {
					for _, dim := range RandomDims {
						b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
							benchFillShape(b, tg, fill, dt, total, dim)
						})
					}
				})
			}
		})
	}
}

func benchFillShape(b *testing.B, tg fillTarget, fill fillFunc, dt tensor.DType, total, dim int) {
	s, err := ShapeFor(total, dim)
	if err != nil {
		b.Fatal(err)
	}
	if tg.fits != nil {
		if err := tg.fits(s.Bytes(dt)); err != nil {
			Skipf(b, "%v %v (%s): %v", dt, s, tensor.HumanBytes(s.Bytes(dt)), err)
		}
	}
	dev := tg.backend.Device()
	x, err := tensor.New(dev, dt, s.Chains, s.Dim)
	if err != nil {
		b.Fatalf("allocate %v %v (%s) on %s: %v", dt, s, tensor.HumanBytes(s.Bytes(dt)), dev.Name(), err)
	}
	defer x.Close()
	d := ops.Draw{Seed: 0x5eed}
	RunBandwidth(b, dev, s.Bytes(dt), func() error {
		d.Site++
		return fill(tg.backend, x, d)
	})
}

func cpuTarget() fillTarget { return fillTarget{backend: ops.CPU(), totals: CPUTotals} }

func BenchmarkNormal(b *testing.B)  { benchFill(b, cpuTarget(), fillNormal, DTypes) }
func BenchmarkUniform(b *testing.B) { benchFill(b, cpuTarget(), fillUniform, DTypes) }

// BenchmarkPhiloxBits is the raw generator: Philox words with no transform (f32 bit patterns).
func BenchmarkPhiloxBits(b *testing.B) {
	benchFill(b, cpuTarget(), fillBits, []tensor.DType{tensor.F32})
}

// cpuWorkerCounts is 1, 2 and every logical CPU (when there are more than 2).
func cpuWorkerCounts() []int {
	counts := []int{1, 2}
	if n := runtime.NumCPU(); n > 2 {
		counts = append(counts, n)
	}
	return slices.Compact(counts)
}

// BenchmarkNormalCPUWorkers measures the CPU backend's parallel scaling on one problem (f32
// normals, 2^20 elements in rows of 128): compare ns/op across workers=….
func BenchmarkNormalCPUWorkers(b *testing.B) {
	const total, dim = 1 * Mi, 128
	for _, w := range cpuWorkerCounts() {
		name := fmt.Sprintf("f32/n=%s/dim=%d/workers=%d", CountLabel(total), dim, w)
		b.Run(name, func(b *testing.B) {
			tg := fillTarget{backend: ops.CPUWorkers(w)}
			benchFillShape(b, tg, fillNormal, tensor.F32, total, dim)
		})
	}
}
