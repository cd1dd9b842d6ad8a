//go:build cuda || cudaemu

package bench

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/cuda"
	"github.com/scorekit/scorekit/tensor"
)

// FGN on GPU 0 (ops/cuda/fgn.go, kernels/fgn.cu): n = 2^10, 2^12, …, 2^20 with paths = 2^26/n (every
// row writes 2^26 values: 256 MiB in f32, 512 MiB in f64), and n = 2^16 × 1024 paths, the size of
// a typical fBM-driven run. The metrics are those of fgn_test.go ("samples/s"; "GB/s" and "%peak"
// of the output; "moved-GB/s" and "%peak-moved" of the traffic by design, fgnCUDAMoved). A call
// moves more than its output: per pair of paths it writes m = 2·n_e complex values (the spectrum),
// the FFT reads and writes them once per pass (one pass up to 4096 points in f32 / 2048 in f64,
// two up to 2^22), and the increments are written by the last pass (float, more than one pass) or
// read back by a last kernel. The peers (peers/fgn_torch.py, peers/fgn_cupy.py) time Davies–Harte
// with torch.fft and cupy.fft on the same problems.

// cudaFGNCases: n = 2^10 … 2^20 (even powers) with paths·n = 2^26, and 2^16 × 1024.
var cudaFGNCases = func() []fgnCase {
	var cs []fgnCase
	for logn := 10; logn <= 20; logn += 2 {
		cs = append(cs, fgnCase{n: 1 << logn, paths: 1 << (26 - logn)})
	}
	return append(cs, fgnCase{n: 1 << 16, paths: 1024})
}()

// fgnCUDAWork bounds the device memory FGN holds beside its output: the complex scratch (a signal
// of m = 2·n_e values per pair of paths, at most 1 GiB) and as much again for the FFT's own
// scratch (which the float increments of a two-pass plan do not allocate).
func fgnCUDAWork(dt tensor.DType, c fgnCase, ne int) int64 {
	scratch := min((int64(c.paths)+1)/2*int64(2*ne)*2*int64(dt.Size()), 1<<30)
	return 2 * scratch
}

// fgnCUDAMoved is the DRAM traffic of one FGN call by design (the launches of
// cuda.PlanFGNLaunches; chunks hold whole pairs, so the total does not depend on them): the
// spectrum writes each pair's m complex values and every FFT pass reads and writes them; then
// either the last pass writes the increments (paths·n values) instead of its complex output (and
// for the path form fgn_cumsum reads and rewrites them), or a finishing kernel (fgn_increments,
// fgn_path) reads each pair's first n complex values and writes paths·n values. Where the last
// pass writes the increments (float, several passes) the first pass generates the signal itself
// (fgn_r<R>_f32): no spectrum is written, and the first pass only writes. The weights and twiddles (KiB to MiB, L2-resident) are not counted.
func fgnCUDAMoved(dt tensor.DType, form ops.FGNForm, c fgnCase, ne int) int64 {
	m, esize := int64(2*ne), int64(dt.Size())
	pairs, out := (int64(c.paths)+1)/2, int64(c.paths)*int64(c.n)*esize
	signal := pairs * m * 2 * esize
	passes := int64(len(cuda.PlanFFTLaunches(1, 1, int(m), dt)))
	moved := signal + passes*2*signal
	launches := cuda.PlanFGNLaunches(1, c.paths, c.n, ne, dt, form.Path)
	if strings.HasPrefix(launches[0].Entry, "fgn_r") {
		// the first pass generates its input and the last writes the increments; the path form
		// then reads and writes them again (fgn_cumsum)
		moved = moved - signal - 2*signal + out
		if form.Path {
			moved += 2 * out
		}
		return moved
	}
	return moved + pairs*int64(c.n)*2*esize + out
}

func BenchmarkFGNCUDA(b *testing.B) {
	benchFGN(b, fgnTarget{backend: requireGPU(b), cases: cudaFGNCases, fits: fitsOnGPU, workBytes: fgnCUDAWork,
		moved: fgnCUDAMoved})
}

// The traffic by design of the model's fGn problem (n = 2^16, 1024 paths, f32: 512 pairs of m =
// 2^17 complex values, 512 MiB): the generating first pass writes 1×, the last pass reads 1× and
// writes the 256 MiB of increments; the path form then reads and rewrites them (fgn_cumsum). In
// double the spectrum is written, the passes read and write it and fgn_increments reads the
// transform back.
func TestFGNCUDAMoved(t *testing.T) {
	const mib = 1 << 20
	c := fgnCase{n: 1 << 16, paths: 1024}
	assert.Equal(t, int64((512+512+256)*mib), fgnCUDAMoved(tensor.F32, ops.FGNForm{}, c, 1<<16))
	assert.Equal(t, int64((512+512+256+256+256)*mib), fgnCUDAMoved(tensor.F32, ops.FGNForm{Path: true}, c, 1<<16))
	assert.Equal(t, int64((1024+2048+2048+512+512)*mib), fgnCUDAMoved(tensor.F64, ops.FGNForm{}, c, 1<<16))
}
