//go:build cuda || cudaemu

package bench

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/scorekit/scorekit/tensor"
)

// The score ops on the GPU: the sweeps of the GPU targets, GFLOP/s under the FLOP counts of
// score_test.go and the fraction of the FMA peak of the dtype ("%fp32peak", "%fp64peak").
//
// The peak comes from SCOREKIT_FP32_PEAK_TFLOPS / SCOREKIT_FP64_PEAK_TFLOPS when set (TFLOP/s),
// otherwise from the table in score_test.go (SMs × FMA lanes per SM × 2 × boost clock, by compute
// capability); the benchmark prints which, as "gpu-peak-fp32:" and "gpu-peak-fp64:" lines ahead
// of its results. A GPU held below its boost clock (power or thermal limits) reaches less than the
// table's figure: set the variables to the clock it actually sustains for a stricter %peak.
//
// Each problem runs on its own backend (problemBackend: a fresh cuda.New backend over the shared
// device, closed after the problem).
// Problems whose tensors (plus cudaHeadroom) do not fit in the free device memory are skipped
// with the reason. The largest empirical problems are hundreds of TFLOP per call: run the sweep
// with a time-based -test.benchtime (1s: such a problem is timed once, after its warm-up).

var printPeaksOnce sync.Once

// gpuPeak is the peak FMA rate of GPU 0 for dt (0 when unknown) and its metric unit.
func gpuPeak(dt tensor.DType) (float64, string) {
	peak, unit, _ := peakFLOPs(gpu.Info(), dt, os.Getenv)
	return peak, unit
}

// cudaScoreTarget is GPU 0 with a fresh backend per problem; skipped when no GPU opens.
func cudaScoreTarget(b *testing.B) scoreTarget {
	requireGPU(b)
	printPeaksOnce.Do(func() {
		for _, dt := range DTypes {
			peak, _, source := peakFLOPs(gpu.Info(), dt, os.Getenv)
			name := map[tensor.DType]string{tensor.F32: "fp32", tensor.F64: "fp64"}[dt]
			fmt.Printf("gpu-peak-%s: %.1f TFLOP/s (%s)\n", name, peak/1e12, source)
		}
	})
	return scoreTarget{
		backend: problemBackend,
		fits:    fitsOnGPU,
		peak:    gpuPeak,
	}
}

// BenchmarkGMMScoreCUDA is GMMScore (score and log p in one call) on GPU 0: isotropic mixtures
// over N ∈ {10^3..10^6}, K ∈ {1, 8, 64, 512}, d ∈ {2, 16, 128, 512}, and diagonal and full
// mixtures at K = 8, d ∈ {16, 128}, in f32 and f64.
func BenchmarkGMMScoreCUDA(b *testing.B) { benchGMMScore(b, cudaScoreTarget(b), cudaGMMCases) }

// BenchmarkEmpiricalScoreCUDA is EmpiricalScore (the denoiser, one mixture term) on GPU 0 over
// N ∈ {10^3, 10^4, 10^5} queries, M ∈ {10^3..10^6} points, d ∈ {2, 16, 64, 128, 512}, f32 and f64.
func BenchmarkEmpiricalScoreCUDA(b *testing.B) {
	benchEmpiricalScore(b, cudaScoreTarget(b), cudaEmpiricalCases)
}
