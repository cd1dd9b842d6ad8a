package bench

import (
	"fmt"
	"math"
	"math/bits"
	"testing"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The batched complex FFT (ops.Backend.FFT): batch signals of n complex values, forward,
// out of place. Metrics:
//
//   - "GB/s": effective bandwidth 2·batch·n·(2·element size) / time — the data read once and
//     written once, whatever the implementation moves in between (a multi-pass GPU plan moves it
//     once per pass; see ops/cuda/fft.go); "%peak" divides it by the device's DRAM peak where known;
//   - "GFLOP/s": the conventional 5·n·log₂n flops per signal (radix-2 count), the unit FFT
//     libraries and the peers' tables report, so rows compare across implementations.
//
// Benchmark names: BenchmarkFFT[CUDA]/<dtype>/n=<n>/batch=<batch>.

// fftCase is one (n, batch) problem.
type fftCase struct{ n, batch int }

func (c fftCase) values() int64 { return int64(c.n) * int64(c.batch) }

// bytes is the effective traffic of one transform: read and write batch·n complex values.
func (c fftCase) bytes(dt tensor.DType) int64 { return 2 * c.values() * 2 * int64(dt.Size()) }

// flops is 5·n·log₂n per signal.
func (c fftCase) flops() float64 {
	return 5 * float64(c.values()) * float64(bits.Len(uint(c.n))-1)
}

// cpuFFTCases: n ∈ {2^10, 2^16, 2^20}, one signal and a batch of 2^22 values (32 MiB in f32).
var cpuFFTCases = []fftCase{
	{1 << 10, 1}, {1 << 10, 1 << 12},
	{1 << 16, 1}, {1 << 16, 1 << 6},
	{1 << 20, 1}, {1 << 20, 1 << 2},
}

// fftTarget is a backend, its sweep and its memory check (nil: always fits).
type fftTarget struct {
	backend ops.Backend
	cases   []fftCase
	fits    func(bytes int64) error
}

func benchFFT(b *testing.B, tg fftTarget) {
	for _, dt := range DTypes {
		b.Run(dt.String(), func(b *testing.B) {
			for _, c := range tg.cases {
				b.Run(fmt.Sprintf("n=%s/batch=%d", CountLabel(c.n), c.batch), func(b *testing.B) {
					benchFFTCase(b, tg, dt, c)
				})
			}
		})
	}
}

func benchFFTCase(b *testing.B, tg fftTarget, dt tensor.DType, c fftCase) {
	size := c.values() * 2 * int64(dt.Size()) // one buffer
	if tg.fits != nil {
		if err := tg.fits(2 * size); err != nil {
			Skipf(b, "%v n=%d batch=%d (2 × %s): %v", dt, c.n, c.batch, tensor.HumanBytes(size), err)
		}
	}
	dev := tg.backend.Device()
	src, err := tensor.New(dev, dt, c.batch, c.n, 2)
	if err != nil {
		b.Fatalf("allocate %v (%d, %d, 2) on %s: %v", dt, c.batch, c.n, dev.Name(), err)
	}
	defer src.Close()
	dst, err := tensor.New(dev, dt, c.batch, c.n, 2)
	if err != nil {
		b.Fatalf("allocate %v (%d, %d, 2) on %s: %v", dt, c.batch, c.n, dev.Name(), err)
	}
	defer dst.Close()
	if err := fillFFTInput(src); err != nil {
		b.Fatal(err)
	}
	RunBandwidth(b, dev, c.bytes(dt), func() error { return tg.backend.FFT(dst, src, false) })
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(c.flops()*float64(b.N)/s/1e9, "GFLOP/s")
	}
}

// fillFFTInput writes a bounded, non-trivial signal (a sum of two tones, so no value is zero).
func fillFFTInput(x *tensor.Tensor) error {
	n := x.Len() / 2
	vals := make([]float64, 2*n)
	for j := 0; j < n; j++ {
		a := 2 * math.Pi * float64(j%4096) / 4096
		vals[2*j], vals[2*j+1] = math.Cos(3*a)+0.5, math.Sin(7*a)
	}
	v, err := tensor.FromFloat64s(x.DType(), vals, x.Shape()...)
	if err != nil {
		return err
	}
	return x.CopyFrom(v)
}

func BenchmarkFFT(b *testing.B) {
	benchFFT(b, fftTarget{backend: ops.CPU(), cases: cpuFFTCases})
}
