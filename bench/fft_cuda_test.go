//go:build cuda || cudaemu

package bench

import (
	"testing"
)

// The batched FFT on GPU 0 (ops/cuda/fft.go, kernels/fft.cu): n = 2^4 … 2^22 with batch = 2^26/n,
// so every row moves the same 2^26 complex values (512 MiB in f32, 1 GiB in f64, per buffer),
// forward, out of place. The metrics are those of fft_test.go: "GB/s" counts one read and one
// write of the data (2·2^26·(8 or 16) bytes per call) and "%peak" divides that by the DRAM peak.
//
// What the kernels move is that traffic times the number of passes: one pass for n ≤ 4096 (f32)
// or 2048 (f64), two up to 2^22. A single-pass row near the peak and a two-pass row near half of
// it are both running at full bandwidth; the model is bytes = 2·P·batch·n·(8 or 16).
// The peers time torch.fft.fft and cupy.fft.fft (cuFFT) on the same problems:
// peers/fft_torch.py and peers/fft_cupy.py.

// cudaFFTCases: n = 2^4 … 2^22, batch·n = 2^26.
var cudaFFTCases = func() []fftCase {
	var cs []fftCase
	for logn := 4; logn <= 22; logn++ {
		cs = append(cs, fftCase{n: 1 << logn, batch: 1 << (26 - logn)})
	}
	return cs
}()

func BenchmarkFFTCUDA(b *testing.B) {
	benchFFT(b, fftTarget{backend: requireGPU(b), cases: cudaFFTCases, fits: fitsOnGPU})
}
