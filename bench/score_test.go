package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Score ops: GMMScore (a Gaussian mixture under noise, docs/math.md §1.1) and EmpiricalScore (the
// optimal denoiser of a data set, §1.2). Both are compute-bound — every (row, component) or
// (query, data point) pair costs O(d) arithmetic while the bytes moved are O(rows × d) — so they
// report "GFLOP/s" from the explicit FLOP counts below, and on a GPU the fraction of the FP32 or
// FP64 FMA peak ("%fp32peak", "%fp64peak").
//
// Benchmark names:
//
//	BenchmarkGMMScore[CUDA]/<dtype>/<covariance>/N=<rows>/K=<components>/d=<dim>
//	BenchmarkEmpiricalScore[CUDA]/<dtype>/N=<queries>/M=<points>/d=<dim>
//
// with powers of ten written 1e3, 1e4, … (N=1e5 is 100000 rows). The peers scripts
// (peers/score_torch.py, peers/score_jax.py) time the same problems — of the GMM ones the isotropic
// and diagonal mixtures (TestScorePeersTimeTheGMMBenchmark) — and print these names.

// FLOP-count conventions. An FMA counts as two FLOPs (as in the peak: lanes × 2 × clock), an
// exp or log as one. Per-problem constants that a kernel computes once per component and noise
// level (a·μ_k, 1/c_k, the log-normaliser) and the per-row finish (one log, d divisions) are not
// counted. These counts are the ones every backend and both peers scripts use, so a GFLOP/s ratio
// between two rows of the same problem is exactly their speed ratio, whatever the implementation
// actually executes (the PyTorch matmul form, for example, does different arithmetic).
const (
	// gmmScalarFLOPs is the per-component scalar work of GMMScore: r_k from the quadratic form
	// (multiply by −1/(2c_k), add the log-normaliser: 2), compare with the running maximum (1),
	// exp(r_k − m) (2), add to the running sum (1).
	gmmScalarFLOPs = 6
	// empiricalScalarFLOPs is the same scalar work per (data point, mixture term) of EmpiricalScore.
	empiricalScalarFLOPs = 6
)

// gmmFLOPsPerPair is the FLOP count of one (row, component) pair of GMMScore with score and log p
// requested, for every backend and the peers:
//
//	isotropic, diagonal:  6d + 6       per coordinate: the difference x_j − a μ_kj (1), the
//	                                   gradient g_j = diff_j / c_kj (1), the square-accumulate
//	                                   q += diff_j g_j (2), the accumulation of p_k g_j into the
//	                                   online sum (2); plus gmmScalarFLOPs
//	full:                 4d² + 6d + 6 as above, plus z = U_kᵀ diff and g = U_k (z / c_k), two
//	                                   d×d matrix–vector products (2d² each)
func gmmFLOPsPerPair(kind ops.CovKind, d int) float64 {
	fd := float64(d)
	flops := 6*fd + gmmScalarFLOPs
	if kind == ops.Full {
		flops += 4 * fd * fd
	}
	return flops
}

// gmmScoreFLOPs is the FLOP count of one GMMScore call on n rows and k components.
func gmmScoreFLOPs(kind ops.CovKind, n, k, d int) float64 {
	return float64(n) * float64(k) * gmmFLOPsPerPair(kind, d)
}

// empiricalFLOPsPerPoint is the FLOP count of one (query, data point) pair of EmpiricalScore with
// the denoiser requested and q mixture terms, for every backend and the peers:
//
//	3d + q(2d + 6)   the squared distance ‖x − a y_i‖² (difference 1, square-accumulate 2 per
//	                 coordinate), and per mixture term the accumulation of p y_i into the online
//	                 sum (2 per coordinate) plus empiricalScalarFLOPs.
//
// With one mixture term (Q = 1, the kernel density of the data) that is 5d + 6. The counts are the
// same whether the distance is summed from differences (the CPU reference) or expanded as
// ‖x‖² − 2a x·y + a²‖y‖² (a dot product, 2d, plus precomputed norms).
func empiricalFLOPsPerPoint(d, q int) float64 {
	fd := float64(d)
	return 3*fd + float64(q)*(2*fd+empiricalScalarFLOPs)
}

// empiricalScoreFLOPs is the FLOP count of one EmpiricalScore call on n queries and m points.
func empiricalScoreFLOPs(n, m, d, q int) float64 {
	return float64(n) * float64(m) * empiricalFLOPsPerPoint(d, q)
}

// gmmCase is one GMMScore problem: n rows against k components of dimension d.
type gmmCase struct {
	kind    ops.CovKind
	n, k, d int
}

// name is the sub-benchmark name below the dtype: <kind>/N=…/K=…/d=….
func (c gmmCase) name() string {
	return fmt.Sprintf("%v/N=%s/K=%d/d=%d", c.kind, pow10Label(c.n), c.k, c.d)
}

// empiricalCase is one EmpiricalScore problem: n queries against m data points of dimension d.
type empiricalCase struct{ n, m, d int }

// gmmGrid is every (n, k, d) of one covariance kind.
func gmmGrid(kind ops.CovKind, ns, ks, ds []int) []gmmCase {
	var cs []gmmCase
	for _, n := range ns {
		for _, k := range ks {
			for _, d := range ds {
				cs = append(cs, gmmCase{kind, n, k, d})
			}
		}
	}
	return cs
}

func empiricalGrid(ns, ms, ds []int) []empiricalCase {
	var cs []empiricalCase
	for _, n := range ns {
		for _, m := range ms {
			for _, d := range ds {
				cs = append(cs, empiricalCase{n, m, d})
			}
		}
	}
	return cs
}

// The score sweeps. The CPU sweeps stop where one call of the reference takes seconds on a
// laptop; the CUDA sweeps are those of the GPU targets (design: GMM score ≥ 3× PyTorch eager at
// N ≥ 10^5, empirical denoiser ≥ 50 % of the FP32 FMA peak for d ≥ 64).
var (
	cpuGMMNs, cpuGMMKs, cpuGMMDs    = []int{1e3, 1e4, 1e5}, []int{1, 8, 64}, []int{2, 16, 128}
	cudaGMMNs, cudaGMMKs, cudaGMMDs = []int{1e3, 1e4, 1e5, 1e6}, []int{1, 8, 64, 512}, []int{2, 16, 128, 512}

	// cpuGMMCases: isotropic over the grid, and one diagonal and one full mixture (K = 8, d = 16)
	// over the rows.
	cpuGMMCases = concat(
		gmmGrid(ops.Isotropic, cpuGMMNs, cpuGMMKs, cpuGMMDs),
		gmmGrid(ops.Diagonal, cpuGMMNs, []int{8}, []int{16}),
		gmmGrid(ops.Full, cpuGMMNs, []int{8}, []int{16}),
	)
	// cudaGMMCases: isotropic over the grid; diagonal and full at K = 8, d ∈ {16, 128} over the
	// rows; the diagonal design point N = 10^6, K = 64, d ∈ {2, 16, 64} (bench/RESULTS.md, the
	// performance model) and its edges of the per-thread kernels, d = 8 and 17. peers/score_torch.py
	// GMM_CASES holds the same list without the full mixtures.
	cudaGMMCases = concat(
		gmmGrid(ops.Isotropic, cudaGMMNs, cudaGMMKs, cudaGMMDs),
		gmmGrid(ops.Diagonal, cudaGMMNs, []int{8}, []int{16, 128}),
		gmmGrid(ops.Diagonal, []int{1e6}, []int{64}, []int{2, 8, 16, 17, 64}),
		gmmGrid(ops.Full, cudaGMMNs, []int{8}, []int{16, 128}),
	)

	cpuEmpiricalCases  = empiricalGrid([]int{1e2, 1e3}, []int{1e3, 1e4}, []int{2, 64})
	cudaEmpiricalCases = empiricalGrid([]int{1e3, 1e4, 1e5}, []int{1e3, 1e4, 1e5, 1e6}, []int{2, 16, 64, 128, 512})
)

func concat[T any](parts ...[]T) []T {
	var all []T
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// pow10Label writes a count for a benchmark name: a power of ten as 1e<k> (100000 → "1e5"),
// anything else in decimal.
func pow10Label(n int) string {
	if n >= 10 {
		k, m := 0, n
		for m%10 == 0 {
			m /= 10
			k++
		}
		if m == 1 {
			return fmt.Sprintf("1e%d", k)
		}
	}
	return strconv.Itoa(n)
}

// Noise levels of the benchmark problems (VE, σ = 0.5): the noise level does not change the work.
var (
	gmmNoise       = ops.AtSigma(0.5)
	empiricalNoise = ops.AtSigma(0.5)
)

// scoreTarget is a backend and the limits a problem must fit in.
type scoreTarget struct {
	// backend returns the backend one problem runs on and a function that releases what it holds
	// afterwards (the CUDA backend keeps uploaded targets until it is closed).
	backend func(b *testing.B) (ops.Backend, func())
	// fits returns why bytes of tensors cannot be allocated on the device now, or nil (nil: always).
	fits func(bytes int64) error
	// tooSlow returns why a call of flops FLOPs of the given op would take too long to time, or
	// nil (nil: never). op is "gmm/<kind>" or "empirical".
	tooSlow func(op string, flops float64) error
	// peak returns the device's peak FLOP rate for dt and the metric's unit ("%fp32peak"), or 0
	// when unknown.
	peak func(dt tensor.DType) (float64, string)
}

// benchGMMScore runs GMMScore (score and log p, one fused call) over dtypes × cases as
// sub-benchmarks <dtype>/<kind>/N=…/K=…/d=….
func benchGMMScore(b *testing.B, tg scoreTarget, cases []gmmCase) {
	for _, dt := range DTypes {
		b.Run(dt.String(), func(b *testing.B) {
			for _, c := range cases {
				b.Run(c.name(), func(b *testing.B) { benchGMMCase(b, tg, dt, c) })
			}
		})
	}
}

func benchGMMCase(b *testing.B, tg scoreTarget, dt tensor.DType, c gmmCase) {
	flops := gmmScoreFLOPs(c.kind, c.n, c.k, c.d)
	if tg.tooSlow != nil {
		if err := tg.tooSlow("gmm/"+c.kind.String(), flops); err != nil {
			Skipf(b, "%v", err)
		}
	}
	size := int64(dt.Size())
	params := int64(c.k) * int64(c.d) * 2
	if c.kind == ops.Full {
		params += int64(c.k) * int64(c.d) * int64(c.d)
	}
	bytes := size * (2*int64(c.n)*int64(c.d) + int64(c.n) + params) // x, score, log p, parameters
	if tg.fits != nil {
		if err := tg.fits(bytes); err != nil {
			Skipf(b, "%s: %v", tensor.HumanBytes(bytes), err)
		}
	}
	g, err := benchMixture(c.kind, c.k, c.d)
	if err != nil {
		b.Fatal(err)
	}
	be, release := tg.backend(b)
	defer release()
	dev := be.Device()
	x, err := benchRows(dev, dt, c.n, c.d, 3)
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	score, err := tensor.New(dev, dt, c.n, c.d)
	if err != nil {
		b.Fatalf("allocate score %dx%d on %s: %v", c.n, c.d, dev.Name(), err)
	}
	defer score.Close()
	logp, err := tensor.New(dev, dt, c.n)
	if err != nil {
		b.Fatalf("allocate log p (%d) on %s: %v", c.n, dev.Name(), err)
	}
	defer logp.Close()
	out := ops.ScoreOutputs{Score: score, LogP: logp}
	TimeOp(b, dev, func() error { return be.GMMScore(out, x, g, gmmNoise) })
	reportScoreRate(b, tg, dt, flops)
}

// benchEmpiricalScore runs EmpiricalScore (the denoiser, one mixture term) over dtypes × cases as
// sub-benchmarks <dtype>/N=…/M=…/d=….
func benchEmpiricalScore(b *testing.B, tg scoreTarget, cases []empiricalCase) {
	for _, dt := range DTypes {
		b.Run(dt.String(), func(b *testing.B) {
			for _, c := range cases {
				name := fmt.Sprintf("N=%s/M=%s/d=%d", pow10Label(c.n), pow10Label(c.m), c.d)
				b.Run(name, func(b *testing.B) { benchEmpiricalCase(b, tg, dt, c) })
			}
		})
	}
}

func benchEmpiricalCase(b *testing.B, tg scoreTarget, dt tensor.DType, c empiricalCase) {
	flops := empiricalScoreFLOPs(c.n, c.m, c.d, 1)
	if tg.tooSlow != nil {
		if err := tg.tooSlow("empirical", flops); err != nil {
			Skipf(b, "%v", err)
		}
	}
	size := int64(dt.Size())
	// queries and denoiser (N×d), data (M×d) and its squared norms (M).
	bytes := size * (2*int64(c.n)*int64(c.d) + int64(c.m)*int64(c.d) + int64(c.m))
	if tg.fits != nil {
		if err := tg.fits(bytes); err != nil {
			Skipf(b, "%s: %v", tensor.HumanBytes(bytes), err)
		}
	}
	e, err := benchDataSet(dt, c.m, c.d)
	if err != nil {
		b.Fatal(err)
	}
	be, release := tg.backend(b)
	defer release()
	dev := be.Device()
	x, err := benchRows(dev, dt, c.n, c.d, 1.2) // near the data (unit normals), as a sampler's late steps
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	den, err := tensor.New(dev, dt, c.n, c.d)
	if err != nil {
		b.Fatalf("allocate denoiser %dx%d on %s: %v", c.n, c.d, dev.Name(), err)
	}
	defer den.Close()
	out := ops.ScoreOutputs{Denoiser: den}
	TimeOp(b, dev, func() error { return be.EmpiricalScore(out, x, e, empiricalNoise) })
	reportScoreRate(b, tg, dt, flops)
}

// reportScoreRate reports GFLOP/s (and %peak where the target knows its peak) of the finished loop.
func reportScoreRate(b *testing.B, tg scoreTarget, dt tensor.DType, flopsPerOp float64) {
	var peak float64
	unit := ""
	if tg.peak != nil {
		peak, unit = tg.peak(dt)
	}
	reportFLOPRate(b, flopsPerOp, b.N, b.Elapsed(), peak, unit)
}

// reportFLOPRate reports "GFLOP/s" = flopsPerOp × n / elapsed / 10^9 and, when peak > 0, the
// achieved fraction of it in percent under peakUnit.
func reportFLOPRate(r metricReporter, flopsPerOp float64, n int, elapsed time.Duration, peak float64, peakUnit string) {
	if n <= 0 || elapsed <= 0 {
		return
	}
	rate := flopsPerOp * float64(n) / elapsed.Seconds()
	r.ReportMetric(rate/1e9, "GFLOP/s")
	if peak > 0 && peakUnit != "" {
		r.ReportMetric(100*rate/peak, peakUnit)
	}
}

// Inputs: drawn once per problem from fixed seeds with math/rand/v2 (never zeros), on the host,
// and copied to the device. The last problem's host arrays are kept, because the testing package
// calls a benchmark function several times (b.N = 1, then the real count).

// benchMixture is a random mixture of kind with k components in dimension d: weights in [0.5, 1.5),
// means with N(0, 3²) coordinates, variances in [0.5, 2) (isotropic, diagonal) or Σ = A Aᵀ/d + ½ I
// with standard normal A (full, eigendecomposed by NewGMM).
func benchMixture(kind ops.CovKind, k, d int) (*ops.GMM, error) {
	key := fmt.Sprint(kind, k, d)
	if lastMixture.key == key {
		return lastMixture.g, nil
	}
	r := rand.New(rand.NewPCG(uint64(k), uint64(d)))
	spec := ops.GMMSpec{Weights: make([]float64, k), Means: make([][]float64, k)}
	for c := 0; c < k; c++ {
		spec.Weights[c] = 0.5 + r.Float64()
		spec.Means[c] = make([]float64, d)
		for j := range spec.Means[c] {
			spec.Means[c][j] = 3 * r.NormFloat64()
		}
	}
	variance := func() float64 { return 0.5 + 1.5*r.Float64() }
	switch kind {
	case ops.Isotropic:
		spec.Vars = make([]float64, k)
		for c := range spec.Vars {
			spec.Vars[c] = variance()
		}
	case ops.Diagonal:
		spec.Diag = make([][]float64, k)
		for c := range spec.Diag {
			spec.Diag[c] = make([]float64, d)
			for j := range spec.Diag[c] {
				spec.Diag[c][j] = variance()
			}
		}
	case ops.Full:
		spec.Covs = make([][][]float64, k)
		a := make([]float64, d*d)
		for c := range spec.Covs {
			for i := range a {
				a[i] = r.NormFloat64()
			}
			cov := make([][]float64, d)
			for i := range cov {
				cov[i] = make([]float64, d)
			}
			for i := 0; i < d; i++ {
				for j := 0; j <= i; j++ {
					s := 0.0
					for l := 0; l < d; l++ {
						s += a[i*d+l] * a[j*d+l]
					}
					s /= float64(d)
					if i == j {
						s += 0.5
					}
					cov[i][j], cov[j][i] = s, s
				}
			}
			spec.Covs[c] = cov
		}
	}
	g, err := ops.NewGMM(spec)
	if err != nil {
		return nil, fmt.Errorf("benchmark mixture %v K=%d d=%d: %w", kind, k, d, err)
	}
	lastMixture.key, lastMixture.g = key, g
	return g, nil
}

var lastMixture struct {
	key string
	g   *ops.GMM
}

// benchDataSet is a data set of m standard normal points in dimension d, held in dt.
func benchDataSet(dt tensor.DType, m, d int) (*ops.Empirical, error) {
	key := fmt.Sprint(dt, m, d)
	if lastDataSet.key == key {
		return lastDataSet.e, nil
	}
	lastDataSet.key, lastDataSet.e = "", nil // let the previous one go before drawing the next
	data, err := hostNormals(dt, m, d, 1, uint64(m)<<20|uint64(d))
	if err != nil {
		return nil, err
	}
	e, err := ops.NewEmpirical(data)
	if err != nil {
		return nil, fmt.Errorf("benchmark data set M=%d d=%d: %w", m, d, err)
	}
	lastDataSet.key, lastDataSet.e = key, e
	return e, nil
}

var lastDataSet struct {
	key string
	e   *ops.Empirical
}

// benchRows is an (n, d) batch of N(0, scale²) rows on dev. The host array is kept for the next
// call with the same (dt, n, d, scale); the device copy is the caller's to close.
func benchRows(dev tensor.Device, dt tensor.DType, n, d int, scale float64) (*tensor.Tensor, error) {
	key := fmt.Sprint(dt, n, d, scale)
	if lastRows.key != key {
		lastRows.key, lastRows.x = "", nil
		x, err := hostNormals(dt, n, d, scale, uint64(n)<<24|uint64(d)<<1|1)
		if err != nil {
			return nil, err
		}
		lastRows.key, lastRows.x = key, x
	}
	x, err := lastRows.x.CopyTo(dev)
	if err != nil {
		return nil, fmt.Errorf("copy %v rows %dx%d to %s: %w", dt, n, d, dev.Name(), err)
	}
	return x, nil
}

var lastRows struct {
	key string
	x   *tensor.Tensor
}

// hostNormals is a host (rows, cols) tensor of N(0, scale²) draws in dt.
func hostNormals(dt tensor.DType, rows, cols int, scale float64, seed uint64) (*tensor.Tensor, error) {
	r := rand.New(rand.NewPCG(seed, 0x5c07e))
	n := rows * cols
	if dt == tensor.F32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(scale * r.NormFloat64())
		}
		return tensor.FromF32(v, rows, cols)
	}
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * r.NormFloat64()
	}
	return tensor.FromF64(v, rows, cols)
}

// The CPU suites.

// cpuScoreSeconds is the longest one call of the CPU reference may take in a CPU score benchmark;
// longer problems are skipped (with the estimate), so that `make bench` finishes in minutes.
const cpuScoreSeconds = 2.0

// cpuScoreRates are per-worker rates of the CPU reference in FLOP/s under the counts above, about
// 70 % of what it reaches on the largest problems of the sweep on a 2-vCPU AMD EPYC
// (bench/RESULTS.md). They only decide which problems to skip. Small d runs at a lower rate (the
// scalar work per pair dominates) but those problems are far below the limit. Diagonal mixtures
// take a log per coordinate, the full ones do two matrix–vector products in plain loops, and the
// empirical reference reads each data coordinate through Empirical.At.
var cpuScoreRates = map[string]float64{
	"gmm/isotropic": 1.5e9,
	"gmm/diagonal":  0.2e9,
	"gmm/full":      1.0e9,
	"empirical":     0.3e9,
	// the learned denoiser: dense loops over blocks of four rows (ops/mlp.go), measured at 4.4–6
	// GFLOP/s per worker on the 2-vCPU machine when idle; the estimate is for a busy one
	"mlp": 3e9,
}

// cpuScoreTarget runs on ops.CPUWorkers(workers) (0: GOMAXPROCS) and skips problems estimated to
// take longer than cpuScoreSeconds.
func cpuScoreTarget(workers int) scoreTarget {
	be := ops.CPUWorkers(workers)
	parallel := workers
	if parallel <= 0 {
		parallel = runtime.GOMAXPROCS(0)
	}
	return scoreTarget{
		backend: func(*testing.B) (ops.Backend, func()) { return be, func() {} },
		tooSlow: func(op string, flops float64) error {
			rate, ok := cpuScoreRates[op]
			if !ok {
				return nil
			}
			if est := flops / (rate * float64(parallel)); est > cpuScoreSeconds {
				return fmt.Errorf("%.3g GFLOP per call: about %.1f s on %d CPU workers at %.2g GFLOP/s each (limit %.0f s)",
					flops/1e9, est, parallel, rate/1e9, cpuScoreSeconds)
			}
			return nil
		},
	}
}

// BenchmarkGMMScore is the CPU backend (ops.CPU()) on GMMScore (score and log p in one call): isotropic
// mixtures over N ∈ {10^3, 10^4, 10^5}, K ∈ {1, 8, 64}, d ∈ {2, 16, 128}, and a diagonal and a
// full mixture at K = 8, d = 16.
func BenchmarkGMMScore(b *testing.B) { benchGMMScore(b, cpuScoreTarget(0), cpuGMMCases) }

// BenchmarkEmpiricalScore is the CPU backend on EmpiricalScore (the denoiser, one mixture term)
// over N ∈ {10^2, 10^3} queries, M ∈ {10^3, 10^4} points, d ∈ {2, 64}.
func BenchmarkEmpiricalScore(b *testing.B) {
	benchEmpiricalScore(b, cpuScoreTarget(0), cpuEmpiricalCases)
}

// BenchmarkGMMScoreCPUWorkers measures the CPU backend's parallel scaling on one problem
// (isotropic, f32, N = 10^5, K = 8, d = 16): compare ns/op across workers=….
func BenchmarkGMMScoreCPUWorkers(b *testing.B) {
	c := gmmCase{ops.Isotropic, 1e5, 8, 16}
	for _, w := range cpuWorkerCounts() {
		name := fmt.Sprintf("f32/%v/N=%s/K=%d/d=%d/workers=%d", c.kind, pow10Label(c.n), c.k, c.d, w)
		b.Run(name, func(b *testing.B) { benchGMMCase(b, cpuScoreTarget(w), tensor.F32, c) })
	}
}

// GPU peak FLOP rates.

// gpuArch is what a compute capability fixes for the peak: FMA lanes per SM in FP32 and FP64, and
// the boost clock of its usual data-centre part.
type gpuArch struct {
	fp32Lanes, fp64Lanes int
	clockGHz             float64
	example              string
}

// gpuArchs: NVIDIA's published lanes per SM and boost clocks. The peak is SMs × lanes × 2 × clock
// (an FMA is two FLOPs): A100 108 × 64 × 2 × 1.41 GHz = 19.5 TFLOP/s FP32; H100 SXM
// 132 × 128 × 2 × 1.98 GHz = 66.9 TFLOP/s FP32, 33.5 FP64.
var gpuArchs = map[[2]int]gpuArch{
	{7, 0}: {64, 32, 1.53, "V100 SXM2"},
	{8, 0}: {64, 32, 1.41, "A100"},
	{8, 6}: {128, 2, 1.74, "A40"},
	{8, 9}: {128, 2, 2.52, "L40S"},
	{9, 0}: {128, 64, 1.98, "H100 SXM / H200"},
}

// gpuClockByName corrects the clock of parts that share a compute capability with a faster one.
var gpuClockByName = []struct {
	contains string
	clockGHz float64
}{
	{"H100 PCIe", 1.755},
	{"H100 NVL", 1.785},
}

// Environment variables that override the table (TFLOP/s, e.g. SCOREKIT_FP32_PEAK_TFLOPS=51.2 for
// an H100 PCIe held at its boost clock, or the figure of a part the table does not know).
const (
	envFP32Peak = "SCOREKIT_FP32_PEAK_TFLOPS"
	envFP64Peak = "SCOREKIT_FP64_PEAK_TFLOPS"
)

// peakFLOPs returns the device's peak FMA rate for dt in FLOP/s, the metric unit ("%fp32peak" or
// "%fp64peak") and where the figure comes from. The environment variable of the dtype wins;
// otherwise the table by compute capability (and product name, for the clock). A peak of 0 means
// unknown: the benchmark then reports GFLOP/s only.
func peakFLOPs(info tensor.DeviceInfo, dt tensor.DType, getenv func(string) string) (peak float64, unit, source string) {
	env, unit := envFP32Peak, "%fp32peak"
	if dt == tensor.F64 {
		env, unit = envFP64Peak, "%fp64peak"
	}
	if s := strings.TrimSpace(getenv(env)); s != "" {
		t, err := strconv.ParseFloat(s, 64)
		if err != nil || !(t > 0) || math.IsInf(t, 0) {
			return 0, unit, fmt.Sprintf("%s=%q is not a positive number of TFLOP/s: peak unknown", env, s)
		}
		return t * 1e12, unit, env
	}
	arch, ok := gpuArchs[[2]int{info.Major, info.Minor}]
	if !ok || info.SMs <= 0 {
		return 0, unit, fmt.Sprintf("sm_%d%d is not in the table: peak unknown (set %s)", info.Major, info.Minor, env)
	}
	clock := arch.clockGHz
	for _, c := range gpuClockByName {
		if strings.Contains(info.Name, c.contains) {
			clock = c.clockGHz
		}
	}
	lanes := arch.fp32Lanes
	if dt == tensor.F64 {
		lanes = arch.fp64Lanes
	}
	peak = float64(info.SMs) * float64(lanes) * 2 * clock * 1e9
	source = fmt.Sprintf("table: sm_%d%d, %d SMs × %d lanes × 2 × %.3g GHz", info.Major, info.Minor, info.SMs, lanes, clock)
	return peak, unit, source
}

// Tests of the score suites' own pieces (they run in `go test ./bench/`).

func TestScoreFLOPCounts(t *testing.T) {
	assert.Equal(t, 6.0*16+6, gmmFLOPsPerPair(ops.Isotropic, 16))
	assert.Equal(t, gmmFLOPsPerPair(ops.Isotropic, 16), gmmFLOPsPerPair(ops.Diagonal, 16))
	assert.Equal(t, 4.0*16*16+6*16+6, gmmFLOPsPerPair(ops.Full, 16))
	assert.Equal(t, 1e5*8*102.0, gmmScoreFLOPs(ops.Isotropic, 1e5, 8, 16))
	assert.Equal(t, 5.0*64+6, empiricalFLOPsPerPoint(64, 1), "Q = 1: 5d + 6")
	assert.Equal(t, 3.0*64+3*(2*64+6), empiricalFLOPsPerPoint(64, 3), "the distance once, the rest per mixture term")
	assert.Equal(t, 1e3*1e4*326.0, empiricalScoreFLOPs(1e3, 1e4, 64, 1))
}

func TestPow10Label(t *testing.T) {
	for n, want := range map[int]string{1e3: "1e3", 1e6: "1e6", 10: "1e1", 1: "1", 512: "512", 2000: "2000", 0: "0"} {
		assert.Equal(t, want, pow10Label(n), "%d", n)
	}
}

func TestReportFLOPRate(t *testing.T) {
	m := metrics{}
	reportFLOPRate(m, 2e9, 10, 400*time.Millisecond, 100e9, "%fp32peak")
	assert.InEpsilon(t, 50, m["GFLOP/s"], 1e-9)
	assert.InEpsilon(t, 50, m["%fp32peak"], 1e-9)

	m = metrics{}
	reportFLOPRate(m, 2e9, 10, 400*time.Millisecond, 0, "%fp32peak")
	assert.Equal(t, metrics{"GFLOP/s": 50}, m, "no %peak when the peak is unknown")

	m = metrics{}
	reportFLOPRate(m, 2e9, 0, 0, 100e9, "%fp32peak")
	assert.Empty(t, m, "no metrics from an empty loop")
}

func TestPeakFLOPs(t *testing.T) {
	noEnv := func(string) string { return "" }
	a100 := tensor.DeviceInfo{Kind: tensor.KindCUDA, Name: "NVIDIA A100-SXM4-80GB", Major: 8, Minor: 0, SMs: 108}
	h100 := tensor.DeviceInfo{Kind: tensor.KindCUDA, Name: "NVIDIA H100 80GB HBM3", Major: 9, Minor: 0, SMs: 132}
	h100pcie := tensor.DeviceInfo{Kind: tensor.KindCUDA, Name: "NVIDIA H100 PCIe", Major: 9, Minor: 0, SMs: 114}
	for _, tc := range []struct {
		name string
		info tensor.DeviceInfo
		dt   tensor.DType
		want float64 // NVIDIA's published figure, TFLOP/s
		unit string
	}{
		{"A100 FP32", a100, tensor.F32, 19.5, "%fp32peak"},
		{"A100 FP64", a100, tensor.F64, 9.7, "%fp64peak"},
		{"H100 SXM FP32", h100, tensor.F32, 67, "%fp32peak"},
		{"H100 SXM FP64", h100, tensor.F64, 34, "%fp64peak"},
		{"H100 PCIe FP32", h100pcie, tensor.F32, 51, "%fp32peak"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peak, unit, source := peakFLOPs(tc.info, tc.dt, noEnv)
			assert.InEpsilon(t, tc.want*1e12, peak, 0.02, "%s", source)
			assert.Equal(t, tc.unit, unit)
			assert.Contains(t, source, "table")
		})
	}

	env := map[string]string{envFP32Peak: " 51.2 ", envFP64Peak: "fast"}
	peak, _, source := peakFLOPs(h100, tensor.F32, func(k string) string { return env[k] })
	assert.Equal(t, 51.2e12, peak, "the environment overrides the table")
	assert.Equal(t, envFP32Peak, source)
	peak, _, source = peakFLOPs(h100, tensor.F64, func(k string) string { return env[k] })
	assert.Zero(t, peak, "a malformed override means unknown, not the table")
	assert.Contains(t, source, envFP64Peak)

	peak, _, source = peakFLOPs(tensor.DeviceInfo{Major: 12, Minor: 0, SMs: 170}, tensor.F32, noEnv)
	assert.Zero(t, peak)
	assert.Contains(t, source, "sm_120")
}

// The PyTorch and JAX peers time BenchmarkGMMScoreCUDA's isotropic and diagonal problems (GMM_CASES
// of peers/score_torch.py, which score_jax.py imports), in its order, under its names and with its
// FLOP counts; --quick picks some of them. Full covariances have no peer.
func TestScorePeersTimeTheGMMBenchmark(t *testing.T) {
	py, err := peerPython("json")
	if err != nil {
		t.Skipf("no Python for the peers: %v", err)
	}
	const script = `
import json, sys
sys.path.insert(0, "peers")
import score_torch as s
def rows(cases):
    return [{"name": s.go_benchmark("gmm", dt, n, k, d, kind), "flops": s.gmm_flops_per_pair(d)}
            for dt in s.DTYPES for kind, n, k, d in cases]
print(json.dumps({"full": rows(s.GMM_CASES), "quick": rows(s.QUICK_GMM_CASES)}))
`
	out, err := exec.Command(py, "-B", "-c", script).CombinedOutput() // -B: no __pycache__ in peers/
	require.NoError(t, err, "%s", out)
	type row struct {
		Name  string  `json:"name"`
		FLOPs float64 `json:"flops"`
	}
	var peers struct{ Full, Quick []row }
	require.NoError(t, json.Unmarshal(out, &peers), "%s", out)

	var want []row
	for _, dt := range DTypes {
		for _, c := range cudaGMMCases {
			if c.kind != ops.Full {
				want = append(want, row{"BenchmarkGMMScoreCUDA/" + dt.String() + "/" + c.name(), gmmFLOPsPerPair(c.kind, c.d)})
			}
		}
	}
	require.Equal(t, want, peers.Full)
	assert.Contains(t, want, row{"BenchmarkGMMScoreCUDA/f32/diagonal/N=1e6/K=64/d=16", 6*16 + 6}, "the design point")
	require.NotEmpty(t, peers.Quick)
	for _, r := range peers.Quick {
		assert.Contains(t, want, r, "--quick")
	}
}

// The CPU time estimate skips the problems that take seconds and keeps the ones the scaling
// benchmark and the tables rely on.
func TestCPUScoreSkips(t *testing.T) {
	tg := cpuScoreTarget(2)
	assert.Error(t, tg.tooSlow("gmm/isotropic", gmmScoreFLOPs(ops.Isotropic, 1e6, 64, 128)))
	assert.NoError(t, tg.tooSlow("gmm/isotropic", gmmScoreFLOPs(ops.Isotropic, 1e5, 64, 128)), "the largest CPU GMM problem runs")
	assert.NoError(t, tg.tooSlow("gmm/isotropic", gmmScoreFLOPs(ops.Isotropic, 1e5, 8, 16)))
	assert.NoError(t, tg.tooSlow("gmm/full", gmmScoreFLOPs(ops.Full, 1e5, 8, 16)))
	assert.NoError(t, tg.tooSlow("empirical", empiricalScoreFLOPs(1e3, 1e3, 64, 1)))
	assert.Error(t, tg.tooSlow("empirical", empiricalScoreFLOPs(1e3, 1e4, 64, 1)))
	for _, c := range cpuGMMCases {
		_, ok := cpuScoreRates["gmm/"+c.kind.String()]
		assert.True(t, ok, "no CPU rate for %v", c.kind)
	}
}

// The benchmark problems are valid for the backend and produce finite, non-trivial outputs from
// non-zero inputs (small sizes, to keep `go test` fast).
func TestScoreProblemsRunOnCPU(t *testing.T) {
	be := ops.CPU()
	for _, dt := range DTypes {
		for _, kind := range []ops.CovKind{ops.Isotropic, ops.Diagonal, ops.Full} {
			const n, k, d = 33, 8, 16
			g, err := benchMixture(kind, k, d)
			require.NoError(t, err)
			require.Equal(t, kind, g.Kind())
			x, err := benchRows(be.Device(), dt, n, d, 3)
			require.NoError(t, err)
			score, _ := tensor.New(nil, dt, n, d)
			logp, _ := tensor.New(nil, dt, n)
			require.NoError(t, be.GMMScore(ops.ScoreOutputs{Score: score, LogP: logp}, x, g, gmmNoise), "%v %v", dt, kind)
			assertFiniteNonZero(t, x, "x %v %v", dt, kind)
			assertFiniteNonZero(t, score, "score %v %v", dt, kind)
			assertFiniteNonZero(t, logp, "log p %v %v", dt, kind)
		}
		e, err := benchDataSet(dt, 100, 8)
		require.NoError(t, err)
		x, err := benchRows(be.Device(), dt, 10, 8, 1.2)
		require.NoError(t, err)
		den, _ := tensor.New(nil, dt, 10, 8)
		require.NoError(t, be.EmpiricalScore(ops.ScoreOutputs{Denoiser: den}, x, e, empiricalNoise))
		assertFiniteNonZero(t, den, "denoiser %v", dt)
	}
}

func assertFiniteNonZero(t *testing.T, x *tensor.Tensor, format string, args ...any) {
	t.Helper()
	v, err := x.Float64s()
	require.NoError(t, err)
	zeros := 0
	for i, e := range v {
		if math.IsNaN(e) || math.IsInf(e, 0) {
			t.Fatalf("element %d = %g: %s", i, e, fmt.Sprintf(format, args...))
		}
		if e == 0 {
			zeros++
		}
	}
	assert.Zero(t, zeros, "%d zeros: %s", zeros, fmt.Sprintf(format, args...))
}
