package bench

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// exitHooks run after the last test or benchmark, in reverse order of registration (devices
// opened lazily by the CUDA suites are closed here).
var exitHooks []func() error

func atExit(f func() error) { exitHooks = append(exitHooks, f) }

func TestMain(m *testing.M) {
	code := m.Run()
	for i := len(exitHooks) - 1; i >= 0; i-- {
		if err := exitHooks[i](); err != nil {
			fmt.Fprintln(os.Stderr, "bench: at exit:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// The harness's own tests: they run in `go test ./bench/` (no benchmarks), so that a broken
// timing loop or metric is caught before anyone reads a number it produced.

// eventLog records the order in which TimeOp touches the op, the device and the timer.
type eventLog struct {
	tensor.Device
	events  []string
	syncErr error
}

func (l *eventLog) ResetTimer() { l.events = append(l.events, "reset") }
func (l *eventLog) StopTimer()  { l.events = append(l.events, "stop") }
func (l *eventLog) Synchronize() error {
	l.events = append(l.events, "sync")
	return l.syncErr
}
func (l *eventLog) op() error {
	l.events = append(l.events, "op")
	return nil
}

func TestTimeLoopSynchronisesBeforeTheTimerStops(t *testing.T) {
	l := &eventLog{Device: tensor.CPU()}
	require.NoError(t, timeLoop(l, 3, l, l.op))
	assert.Equal(t, []string{"op", "sync", "reset", "op", "op", "op", "sync", "stop"}, l.events,
		"warm-up and its sync before the reset; the last sync before the stop")
}

func TestTimeLoopReportsErrors(t *testing.T) {
	boom := errors.New("launch failed")
	l := &eventLog{Device: tensor.CPU()}
	calls := 0
	err := timeLoop(l, 5, l, func() error {
		calls++
		if calls == 3 {
			return boom
		}
		return nil
	})
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, 3, calls, "the loop stops at the first error")

	l = &eventLog{Device: tensor.CPU(), syncErr: boom}
	assert.ErrorIs(t, timeLoop(l, 2, l, l.op), boom, "a failed synchronisation (a kernel fault) is an error")

	l = &eventLog{Device: tensor.CPU()}
	err = timeLoop(l, 2, l, func() error { return boom })
	assert.ErrorContains(t, err, "warm-up")
	assert.NotContains(t, l.events, "reset", "a failing warm-up never starts the timed loop")
}

type metrics map[string]float64

func (m metrics) ReportMetric(v float64, unit string) { m[unit] = v }

func TestReportBandwidth(t *testing.T) {
	tests := []struct {
		name       string
		bytes      int64
		n          int
		elapsed    time.Duration
		peak       float64
		gbs, pct   float64
		hasPercent bool
	}{
		{"peak known", 1e9, 2, time.Second, 4e9, 2, 50, true},
		{"1 GiB in 0.5 ms", 1 << 30, 1, 500 * time.Microsecond, 3.35e12, 2147.483648, 64.104, true},
		{"peak unknown (CPU)", 4 << 20, 10, 20 * time.Millisecond, 0, 2.097152, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics{}
			reportBandwidth(m, tc.bytes, tc.n, tc.elapsed, tc.peak)
			assert.InEpsilon(t, tc.gbs, m["GB/s"], 1e-4)
			pct, ok := m["%peak"]
			assert.Equal(t, tc.hasPercent, ok)
			if tc.hasPercent {
				assert.InEpsilon(t, tc.pct, pct, 1e-4)
			}
		})
	}
	m := metrics{}
	reportBandwidth(m, 1<<20, 0, 0, 1e12)
	assert.Empty(t, m, "no metrics from an empty loop")
}

func TestPeakBandwidthOfAnH100(t *testing.T) {
	// H100 SXM5 80GB: 5120-bit HBM3 bus at 2619 MHz → 3.35 TB/s, the figure NVIDIA publishes.
	info := tensor.DeviceInfo{Kind: tensor.KindCUDA, MemoryBusBits: 5120, MemoryClockHz: 2619e6}
	m := metrics{}
	reportBandwidth(m, 3352e6, 1, time.Millisecond, info.PeakBandwidth())
	assert.InEpsilon(t, 100, m["%peak"], 1e-3)
}

func TestShapes(t *testing.T) {
	for _, totals := range [][]int{CPUTotals, CUDATotals} {
		for _, total := range totals {
			for _, dim := range RandomDims {
				s, err := ShapeFor(total, dim)
				require.NoError(t, err)
				assert.Equal(t, total, s.Elements())
				assert.Equal(t, int64(total)*8, s.Bytes(tensor.F64))
			}
		}
	}
	s, err := ShapeFor(1*Mi, 128)
	require.NoError(t, err)
	assert.Equal(t, "8192x128", s.String())
	_, err = ShapeFor(1000, 128)
	assert.Error(t, err)
	_, err = ShapeFor(1000, 0)
	assert.Error(t, err)

	assert.Equal(t, 256*Mi, CUDATotals[len(CUDATotals)-1], "the CUDA sweep reaches 2^28 elements (1 GiB of f32)")
	assert.LessOrEqual(t, CPUTotals[len(CPUTotals)-1], 16*Mi, "the CPU sweep stays modest")
}

func TestCountLabel(t *testing.T) {
	for n, want := range map[int]string{
		64 * Ki: "64Ki", 1 * Mi: "1Mi", 16 * Mi: "16Mi", 256 * Mi: "256Mi", 1 * Gi: "1Gi",
		1536 * Ki: "1536Ki", 1000: "1000", 0: "0",
	} {
		assert.Equal(t, want, CountLabel(n), "%d", n)
	}
}

// The CPU suite's problems are valid for the backend: every shape and dtype fills without error
// (on the smallest total, to keep `go test` fast) and writes something other than zeros.
func TestFillProblemsRunOnCPU(t *testing.T) {
	for _, fill := range []struct {
		name   string
		f      fillFunc
		dtypes []tensor.DType
	}{{"normal", fillNormal, DTypes}, {"uniform", fillUniform, DTypes}, {"bits", fillBits, []tensor.DType{tensor.F32}}} {
		for _, dt := range fill.dtypes {
			for _, dim := range RandomDims {
				s, err := ShapeFor(CPUTotals[0], dim)
				require.NoError(t, err)
				x, err := tensor.New(nil, dt, s.Chains, s.Dim)
				require.NoError(t, err)
				require.NoError(t, fill.f(ops.CPU(), x, ops.Draw{Seed: 1, Site: 2}), "%s %v %v", fill.name, dt, s)
				v, err := x.Float64s()
				require.NoError(t, err)
				zeros := 0
				for _, e := range v {
					if e == 0 {
						zeros++
					}
				}
				assert.Less(t, zeros, 8, "%s %v %v: %d zeros", fill.name, dt, s, zeros)
			}
		}
	}
	assert.Equal(t, []int{1, 2}, cpuWorkerCounts()[:2])
}
