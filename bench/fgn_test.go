package bench

import (
	"fmt"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Fractional Gaussian noise by Davies–Harte (ops.Backend.FGN, docs/math.md §4.1): paths × n values
// of unit-step fGn ("increments") or fBM paths on [0, 1] ("path"), H = 0.7, a fresh draw site per
// call. One call draws 2·n_e normals per path, runs one complex FFT of m = 2·n_e points per path
// (n_e the power of two ≥ n) and writes paths·n values; the plan (the circulant's eigenvalues) is
// built once, outside the timed loop. Metrics:
//
//   - "samples/s": paths·n output values per second, the unit the peers report
//     (peers/fgn_torch.py, peers/fgn_cupy.py);
//   - "GB/s" (and MB/s from SetBytes): output bytes per second; "%peak" divides it by the device's
//     DRAM peak where known. The work in between (normals, the FFT's passes over 2·n_e complex
//     values per path) moves several times the output, so this is a throughput figure, not the
//     memory traffic;
//   - "moved-GB/s" and "%peak-moved" (targets that know their design's traffic, the GPU): the
//     bytes the launches read and write by design (bench/fgn_cuda_test.go fgnCUDAMoved) per
//     second, and that against the DRAM peak.
//
// Benchmark names: BenchmarkFGN[CUDA]/<dtype>/<form>/n=<n>/paths=<paths>.

// fgnHurst is the Hurst index of every FGN benchmark (the cost does not depend on it).
const fgnHurst = 0.7

// fgnCase is one (n, paths) problem.
type fgnCase struct{ n, paths int }

func (c fgnCase) samples() int64 { return int64(c.n) * int64(c.paths) }

// cpuFGNCases: n ∈ {2^10, 2^14} × paths ∈ {1, 64, 1024}.
var cpuFGNCases = []fgnCase{
	{1 << 10, 1}, {1 << 10, 64}, {1 << 10, 1024},
	{1 << 14, 1}, {1 << 14, 64}, {1 << 14, 1024},
}

// fgnForms are the two output forms the suites time.
var fgnForms = []struct {
	name string
	form ops.FGNForm
}{
	{"increments", ops.FGNForm{}},
	{"path", ops.FGNForm{Horizon: 1, Path: true}},
}

// fgnTarget is a backend, its sweep and its memory check (nil: always fits).
type fgnTarget struct {
	backend ops.Backend
	cases   []fgnCase
	// fits returns why a problem needing bytes of device memory cannot run now, or nil.
	fits func(bytes int64) error
	// workBytes is the device memory a call holds besides its output (nil: none counted).
	workBytes func(dt tensor.DType, c fgnCase, ne int) int64
	// moved is the DRAM traffic of one call by the backend's design (nil: not reported).
	moved func(dt tensor.DType, form ops.FGNForm, c fgnCase, ne int) int64
}

func benchFGN(b *testing.B, tg fgnTarget) {
	for _, dt := range DTypes {
		b.Run(dt.String(), func(b *testing.B) {
			for _, f := range fgnForms {
				b.Run(f.name, func(b *testing.B) {
					for _, c := range tg.cases {
						b.Run(fmt.Sprintf("n=%s/paths=%d", CountLabel(c.n), c.paths), func(b *testing.B) {
							benchFGNCase(b, tg, dt, f.form, c)
						})
					}
				})
			}
		})
	}
}

func benchFGNCase(b *testing.B, tg fgnTarget, dt tensor.DType, form ops.FGNForm, c fgnCase) {
	p, err := ops.NewFGNPlan(fgnHurst, c.n)
	if err != nil {
		b.Fatal(err)
	}
	out := c.samples() * int64(dt.Size())
	if tg.fits != nil {
		need := out
		if tg.workBytes != nil {
			need += tg.workBytes(dt, c, p.EmbedSize())
		}
		if err := tg.fits(need); err != nil {
			Skipf(b, "%v n=%d paths=%d (%s): %v", dt, c.n, c.paths, tensor.HumanBytes(need), err)
		}
	}
	dev := tg.backend.Device()
	dst, err := tensor.New(dev, dt, c.paths, c.n)
	if err != nil {
		b.Fatalf("allocate %v (%d, %d) on %s: %v", dt, c.paths, c.n, dev.Name(), err)
	}
	defer dst.Close()
	d := ops.Draw{Seed: 0x5eed}
	RunBandwidth(b, dev, out, func() error {
		d.Site++
		return tg.backend.FGN(dst, p, form, d)
	})
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(c.samples())*float64(b.N)/s, "samples/s")
	}
	if tg.moved != nil {
		reportBandwidthAs(b, tg.moved(dt, form, c, p.EmbedSize()), b.N, b.Elapsed(), dev.Info().PeakBandwidth(),
			"moved-GB/s", "%peak-moved")
	}
}

func BenchmarkFGN(b *testing.B) {
	benchFGN(b, fgnTarget{backend: ops.CPU(), cases: cpuFGNCases})
}
