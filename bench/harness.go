package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/scorekit/scorekit/tensor"
)

// Element-count units used in sizes and benchmark names.
const (
	Ki = 1 << 10
	Mi = 1 << 20
	Gi = 1 << 30
)

// Size sweeps: total element counts (chains×dim) and the row lengths they are cut into. The peers
// scripts (peers/common.py) use the same numbers so that rows of RESULTS.md line up.
var (
	// CPUTotals is the sweep of the CPU suites; the largest case (2^24 elements, 128 MiB in f64)
	// keeps one `make bench` run within minutes on a laptop.
	CPUTotals = []int{64 * Ki, 1 * Mi, 16 * Mi}
	// CUDATotals is the sweep of the CUDA suites: from launch-bound (2^16) to bandwidth-bound
	// (2^28 elements: 1 GiB in f32, 2 GiB in f64).
	CUDATotals = []int{64 * Ki, 1 * Mi, 16 * Mi, 256 * Mi}
	// RandomDims are the row lengths of the random-fill sweeps: 2 (a toy 2-D target, many short
	// rows) and 128 (a typical latent dimension).
	RandomDims = []int{2, 128}
	// DTypes are the element types every suite covers.
	DTypes = []tensor.DType{tensor.F32, tensor.F64}
)

// Shape is one (chains, dim) problem.
type Shape struct{ Chains, Dim int }

// ShapeFor cuts total elements into rows of dim; total must be a multiple of dim.
func ShapeFor(total, dim int) (Shape, error) {
	if dim <= 0 || total < 0 || total%dim != 0 {
		return Shape{}, fmt.Errorf("bench: %d elements do not split into rows of %d", total, dim)
	}
	return Shape{Chains: total / dim, Dim: dim}, nil
}

// Elements is chains×dim.
func (s Shape) Elements() int { return s.Chains * s.Dim }

// Bytes is the size of a (chains, dim) tensor of dt.
func (s Shape) Bytes(dt tensor.DType) int64 { return int64(s.Elements()) * int64(dt.Size()) }

// String is "chains×dim" as the peers scripts print it, e.g. "131072x128".
func (s Shape) String() string { return fmt.Sprintf("%dx%d", s.Chains, s.Dim) }

// CountLabel names an element count in binary units for benchmark names: 65536 → "64Ki",
// 1<<28 → "256Mi"; counts that are not a whole number of units stay decimal.
func CountLabel(n int) string {
	switch {
	case n >= Gi && n%Gi == 0:
		return fmt.Sprintf("%dGi", n/Gi)
	case n >= Mi && n%Mi == 0:
		return fmt.Sprintf("%dMi", n/Mi)
	case n >= Ki && n%Ki == 0:
		return fmt.Sprintf("%dKi", n/Ki)
	}
	return fmt.Sprint(n)
}

// Skipf skips a benchmark with a reason that shows in the output whether or not -test.v is set
// (without it, `go test -bench` drops skip messages, and a size that did not run would vanish from
// the results unnoticed). The line starts with "--- SKIP:", which benchstat ignores.
func Skipf(b *testing.B, format string, args ...any) {
	b.Helper()
	msg := fmt.Sprintf(format, args...)
	if !testing.Verbose() {
		fmt.Printf("--- SKIP: %s: %s\n", b.Name(), msg)
	}
	b.Skip(msg)
}

// timer is the part of *testing.B that TimeOp drives (an interface so that a test can record the
// order of events).
type timer interface {
	ResetTimer()
	StopTimer()
}

// TimeOp times b.N calls of op on dev. It first runs op once and synchronises (warm-up: kernel
// loading, first-touch page faults, allocator caches), resets the timer, runs op b.N times, then
// calls dev.Synchronize before stopping the timer, so that asynchronous GPU work is inside the
// timed region. The first error fails the benchmark.
func TimeOp(b *testing.B, dev tensor.Device, op func() error) {
	b.Helper()
	if err := timeLoop(b, b.N, dev, op); err != nil {
		b.Fatal(err)
	}
}

func timeLoop(t timer, n int, dev tensor.Device, op func() error) error {
	if err := op(); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if err := dev.Synchronize(); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	t.ResetTimer()
	for i := 0; i < n; i++ {
		if err := op(); err != nil {
			return err
		}
	}
	err := dev.Synchronize()
	t.StopTimer()
	return err
}

// metricReporter is the part of *testing.B that reportBandwidth uses.
type metricReporter interface {
	ReportMetric(n float64, unit string)
}

// ReportBandwidth reports the bandwidth a finished timed loop achieved, counting bytesPerOp bytes
// of memory traffic per call of the op: "GB/s" (10^9 bytes per second) and, when the device's
// theoretical peak is known (info.PeakBandwidth() > 0), "%peak" (achieved / peak × 100). Call it
// after TimeOp; it reads b.N and b.Elapsed.
func ReportBandwidth(b *testing.B, bytesPerOp int64, info tensor.DeviceInfo) {
	reportBandwidth(b, bytesPerOp, b.N, b.Elapsed(), info.PeakBandwidth())
}

func reportBandwidth(r metricReporter, bytesPerOp int64, n int, elapsed time.Duration, peak float64) {
	reportBandwidthAs(r, bytesPerOp, n, elapsed, peak, "GB/s", "%peak")
}

// reportBandwidthAs is reportBandwidth under other unit names (a second byte count of the same
// loop, such as the traffic by design beside the output bytes).
func reportBandwidthAs(r metricReporter, bytesPerOp int64, n int, elapsed time.Duration, peak float64, rateUnit, peakUnit string) {
	if n <= 0 || elapsed <= 0 {
		return
	}
	perSecond := float64(bytesPerOp) * float64(n) / elapsed.Seconds()
	r.ReportMetric(perSecond/1e9, rateUnit)
	if peak > 0 {
		r.ReportMetric(100*perSecond/peak, peakUnit)
	}
}

// RunBandwidth is the body of a bandwidth-bound benchmark: b.SetBytes(bytesPerOp), TimeOp, then
// ReportBandwidth against dev's peak.
func RunBandwidth(b *testing.B, dev tensor.Device, bytesPerOp int64, op func() error) {
	b.Helper()
	b.SetBytes(bytesPerOp)
	TimeOp(b, dev, op)
	ReportBandwidth(b, bytesPerOp, dev.Info())
}
