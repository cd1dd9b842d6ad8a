//go:build cuda || cudaemu

package bench

import (
	"testing"

	"github.com/scorekit/scorekit/tensor"
)

// FGN on GPU 0 (ops/cuda/fgn.go, kernels/fgn.cu): n = 2^10, 2^12, …, 2^20 with paths = 2^26/n (every
// row writes 2^26 values: 256 MiB in f32, 512 MiB in f64), and n = 2^16 × 1024 paths, the size of
// a typical fBM-driven run. The metrics are those of fgn_test.go ("samples/s"; "GB/s" and "%peak"
// of the output). A call moves far more than its output: per path it writes 2·n_e complex values
// (the spectrum), the FFT reads and writes them once per pass (one pass up to 4096 points in f32 /
// 2048 in f64, two up to 2^22), and the last kernel reads n of them again; for n = n_e that is
// about (2 + 4·passes + 1)·(2 × element size) bytes per output value against 1 × element size
// written. The peers (peers/fgn_torch.py, peers/fgn_cupy.py) time Davies–Harte with torch.fft and
// cupy.fft on the same problems.

// cudaFGNCases: n = 2^10 … 2^20 (even powers) with paths·n = 2^26, and 2^16 × 1024.
var cudaFGNCases = func() []fgnCase {
	var cs []fgnCase
	for logn := 10; logn <= 20; logn += 2 {
		cs = append(cs, fgnCase{n: 1 << logn, paths: 1 << (26 - logn)})
	}
	return append(cs, fgnCase{n: 1 << 16, paths: 1024})
}()

// fgnCUDAWork is the device memory FGN holds beside its output: the complex scratch (all paths,
// at most 1 GiB) and as much again for the FFT's own scratch.
func fgnCUDAWork(dt tensor.DType, c fgnCase, ne int) int64 {
	scratch := min(int64(c.paths)*int64(2*ne)*2*int64(dt.Size()), 1<<30)
	return 2 * scratch
}

func BenchmarkFGNCUDA(b *testing.B) {
	benchFGN(b, fgnTarget{backend: requireGPU(b), cases: cudaFGNCases, fits: fitsOnGPU, workBytes: fgnCUDAWork})
}
