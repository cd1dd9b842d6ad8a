package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// Diffusion samplers end to end and their fused update.
//
// Whole runs: solvers.Diffusion with TargetDenoiser of an isotropic Gaussian mixture (the exact
// denoiser, docs/math.md §1.1), methods euler, heun and dpmpp-2m on the default EDM grid (ρ = 7,
// σ from 80 down to 0.002, then 0) with 18, 50 and 100 steps, from the default initial state
// σ_0 ξ. One call is everything a user's run pays for: the scratch tensors, the initial draw, one
// GMMScore evaluation (the denoiser) and one Combine per step (heun: two of each but on the last
// step), and the NaN scan of the samples. Metrics:
//
//	samples/s      N × calls / seconds
//	score-evals/s  denoiser evaluations (Result.ScoreEvals: N per evaluation) × calls / seconds
//	mode-tv        ½ Σ_k |mean_i r_k(x_i) − π_k|, r_k(x) the component responsibilities of the
//	               target at σ = 0: the error of the samples' mode weights
//	scale-err      mean_i Σ_k r_k(x_i) ‖x_i − μ_k‖² / (d s_k²) − 1: the error of their spread
//
// Both accuracy metrics have expectation 0 for exact samples (E_p[r_k(X)] = π_k and
// E_p[r_k(X) ‖X − μ_k‖²] = π_k d s_k², since p(x) r_k(x) = π_k N(x; μ_k, s_k² I), however much the
// components overlap), so they measure the sampler, up to Monte-Carlo noise of order 1/√N; they
// are taken from the first (untimed) call. The peer (peers/diffusion_torch.py) runs the same
// samplers on the same mixtures and prints the same four numbers, so "as fast at equal accuracy"
// can be read off one table.
//
// Benchmark names:
//
//	BenchmarkDiffusion[CUDA]/<dtype>/<method>/steps=<S>/d=<dim>/K=<components>/samples=<N>
//
// The fused update alone: BenchmarkCombine[CUDA]/<dtype>/terms=<k>/noise=<0|1>/n=<elements>
// (rows of diffusionCombineDim), "GB/s" counting k reads and one write of the (N, d) tensors.

// diffusionMethods and diffusionSteps are the sweep of the whole-run benchmarks.
var (
	diffusionMethods = []string{solvers.MethodEuler, solvers.MethodHeun, solvers.MethodDPMPP2M}
	diffusionSteps   = []int{18, 50, 100}
)

// diffusionProblem is one target: dimension d with K components, and the number of samples.
type diffusionProblem struct{ d, k, n int }

// The targets: 8 components in 2-D and 16 in 64-D. CPU: 10^4 samples in 2-D and 10^3 in 64-D
// (a heun run of 100 steps on 10^4 samples in 64-D takes tens of seconds there); CUDA: 10^5.
var (
	cpuDiffusionProblems  = []diffusionProblem{{2, 8, 1e4}, {64, 16, 1e3}}
	cudaDiffusionProblems = []diffusionProblem{{2, 8, 1e5}, {64, 16, 1e5}}
)

// diffusionMixture is the benchmark's mixture of K isotropic components in dimension d, given by a
// formula that peers/diffusion_torch.py evaluates identically (same numbers, not only the same
// distribution): weights ∝ 1 + (k mod 3), means μ_kj = 4 sin(2.4 k + 1.3 j + 0.5), variances
// s_k² = 0.3 + 0.1 (k mod 4).
type diffusionMixture struct {
	weights []float64 // normalised
	means   [][]float64
	vars    []float64
	g       *ops.GMM
}

func newDiffusionMixture(k, d int) (*diffusionMixture, error) {
	m := &diffusionMixture{weights: make([]float64, k), means: make([][]float64, k), vars: make([]float64, k)}
	total := 0.0
	for c := 0; c < k; c++ {
		m.weights[c] = 1 + float64(c%3)
		total += m.weights[c]
		m.means[c] = make([]float64, d)
		for j := range m.means[c] {
			m.means[c][j] = 4 * math.Sin(2.4*float64(c)+1.3*float64(j)+0.5)
		}
		m.vars[c] = 0.3 + 0.1*float64(c%4)
	}
	for c := range m.weights {
		m.weights[c] /= total
	}
	g, err := ops.NewGMM(ops.GMMSpec{Weights: m.weights, Means: m.means, Vars: m.vars})
	if err != nil {
		return nil, err
	}
	m.g = g
	return m, nil
}

// responsibilities writes into resp the mixture's responsibilities r_k(x) of the row x (log
// terms, their maximum subtracted, exponentiated and normalised) and, when quad is not nil, the
// squared distances ‖x − μ_k‖²; it reports false, resp undefined, for a row whose log terms are
// not finite.
func (m *diffusionMixture) responsibilities(x, resp, quad []float64) bool {
	d := len(x)
	best := math.Inf(-1)
	for c := range resp {
		q := 0.0
		for j, v := range x {
			r := v - m.means[c][j]
			q += r * r
		}
		if quad != nil {
			quad[c] = q
		}
		resp[c] = math.Log(m.weights[c]) - 0.5*float64(d)*math.Log(2*math.Pi*m.vars[c]) - q/(2*m.vars[c])
		best = math.Max(best, resp[c])
	}
	if math.IsNaN(best) || math.IsInf(best, 0) {
		return false
	}
	sum := 0.0
	for c := range resp {
		resp[c] = math.Exp(resp[c] - best)
		sum += resp[c]
	}
	for c := range resp {
		resp[c] /= sum
	}
	return true
}

// accuracy returns the mode-tv and scale-err of samples (N rows of d, row-major) against the
// mixture; rows that are not finite are left out (the run reports them).
func (m *diffusionMixture) accuracy(samples []float64, d int) (modeTV, scaleErr float64) {
	k := len(m.weights)
	resp := make([]float64, k)
	meanResp := make([]float64, k)
	quad := make([]float64, k)
	scale, rows := 0.0, 0
	for i := 0; i+d <= len(samples); i += d {
		if !m.responsibilities(samples[i:i+d], resp, quad) {
			continue
		}
		s := 0.0
		for c := range resp {
			meanResp[c] += resp[c]
			s += resp[c] * quad[c] / (float64(d) * m.vars[c])
		}
		scale += s
		rows++
	}
	if rows == 0 {
		return math.NaN(), math.NaN()
	}
	for c := range meanResp {
		modeTV += math.Abs(meanResp[c]/float64(rows)-m.weights[c]) / 2
	}
	return modeTV, scale/float64(rows) - 1
}

// diffusionEvals is the number of denoiser evaluations per sample of method with steps steps on
// a grid ending at 0 (solvers.Diffusion's table).
func diffusionEvals(method string, steps int) int {
	if method == solvers.MethodHeun {
		return 2*steps - 1
	}
	return steps
}

// samplerTarget is where the whole-run sampler benchmarks (diffusion, GFDM, LIM, SGDWOR) run: a
// backend per problem and the limit a problem must fit in.
type samplerTarget struct {
	backend func(b *testing.B) (ops.Backend, func())
	fits    func(bytes int64) error // nil: always
}

// cpuSamplerTarget is the CPU backend, shared by every problem, without a memory limit.
func cpuSamplerTarget() samplerTarget {
	be := ops.CPU()
	return samplerTarget{backend: func(*testing.B) (ops.Backend, func()) { return be, func() {} }}
}

// skipUnlessFits skips b when a problem needing bytes of device memory does not fit now.
func (tg samplerTarget) skipUnlessFits(b *testing.B, bytes int64) {
	if tg.fits == nil {
		return
	}
	if err := tg.fits(bytes); err != nil {
		Skipf(b, "%s: %v", tensor.HumanBytes(bytes), err)
	}
}

// diffusionBytes is the device memory of one run at its peak: the samples, the denoiser outputs
// (dpmpp-2m keeps two), heun's stage point and its output, and the GMM evaluation's own scratch
// (at most one more (N, d) tensor).
func diffusionBytes(method string, dt tensor.DType, n, d int) int64 {
	tensors := int64(3)
	switch method {
	case solvers.MethodHeun:
		tensors += 2
	case solvers.MethodDPMPP2M:
		tensors++
	}
	return tensors * int64(n) * int64(d) * int64(dt.Size())
}

func benchDiffusion(b *testing.B, tg samplerTarget, dtypes []tensor.DType, problems []diffusionProblem) {
	for _, dt := range dtypes {
		b.Run(dt.String(), func(b *testing.B) {
			for _, method := range diffusionMethods {
				for _, steps := range diffusionSteps {
					for _, p := range problems {
						name := fmt.Sprintf("%s/steps=%d/d=%d/K=%d/samples=%s", method, steps, p.d, p.k, pow10Label(p.n))
						b.Run(name, func(b *testing.B) { benchDiffusionCase(b, tg, dt, method, steps, p) })
					}
				}
			}
		})
	}
}

func benchDiffusionCase(b *testing.B, tg samplerTarget, dt tensor.DType, method string, steps int, p diffusionProblem) {
	tg.skipUnlessFits(b, diffusionBytes(method, dt, p.n, p.d))
	m, err := newDiffusionMixture(p.k, p.d)
	if err != nil {
		b.Fatal(err)
	}
	be, release := tg.backend(b)
	defer release()
	den := solvers.TargetDenoiser(target.GMM{Mixture: m.g})
	cfg := solvers.DiffusionConfig{Method: method, Steps: steps}
	first, evals := timeSamplerRuns(b, be.Device(), func(seed uint64) (*solvers.Result, error) {
		cfg.Seed = seed
		return solvers.Diffusion(be, den, p.n, dt, cfg)
	})
	defer first.Close()
	if want := int64(p.n * diffusionEvals(method, steps)); evals != want {
		b.Fatalf("%d denoiser evaluations per call, want %d", evals, want)
	}
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(p.n)*float64(b.N)/s, "samples/s")
		b.ReportMetric(float64(evals)*float64(b.N)/s, "score-evals/s")
	}
	samples, err := hostFloat64s(first.Samples)
	if err != nil {
		b.Fatal(err)
	}
	tv, se := m.accuracy(samples, p.d)
	b.ReportMetric(tv, "mode-tv")
	b.ReportMetric(se, "scale-err")
	if first.NaN.Chains > 0 {
		b.Errorf("%v", first.NaN)
	}
}

// timeSamplerRuns times whole sampler runs with TimeOp, each call with a fresh seed (1, 2, …: a
// fresh stream per call, as successive runs of a user's would have). The untimed first call loads
// the kernels and uploads the target; its Result is returned (the caller closes it) for the
// accuracy metrics, with the score evaluations of one call.
func timeSamplerRuns(b *testing.B, dev tensor.Device, run func(seed uint64) (*solvers.Result, error)) (first *solvers.Result, evals int64) {
	var seed uint64
	TimeOp(b, dev, func() error {
		seed++
		res, err := run(seed)
		if err != nil {
			return err
		}
		evals = res.ScoreEvals
		if first == nil {
			first = res
			return nil
		}
		return res.Close()
	})
	return first, evals
}

// reportSamplerRun fails b unless one call evaluated the denoiser want times, then reports the
// rates of b's calls of n samples over steps steps (samples/s, chain-steps/s, score-evals/s) and,
// without failing, the chains of the first run that ended in NaN (nan-chains).
func reportSamplerRun(b *testing.B, first *solvers.Result, n, steps int, evals, want int64) {
	if evals != want {
		b.Fatalf("%d denoiser evaluations per call, want %d", evals, want)
	}
	if sec := b.Elapsed().Seconds(); sec > 0 {
		calls := float64(b.N)
		b.ReportMetric(float64(n)*calls/sec, "samples/s")
		b.ReportMetric(float64(n)*float64(steps)*calls/sec, "chain-steps/s")
		b.ReportMetric(float64(evals)*calls/sec, "score-evals/s")
	}
	if first.NaN.Chains > 0 {
		b.ReportMetric(float64(first.NaN.Chains), "nan-chains")
		b.Logf("%v", first.NaN)
	}
}

// hostFloat64s copies t to the host if needed and returns its values.
func hostFloat64s(t *tensor.Tensor) ([]float64, error) {
	h := t
	if !t.OnHost() {
		var err error
		if h, err = t.CopyTo(nil); err != nil {
			return nil, err
		}
		defer h.Close()
	}
	return h.Float64s()
}

// BenchmarkDiffusion is solvers.Diffusion (euler, heun, dpmpp-2m; 18, 50, 100 steps) on the CPU
// backend: 10^4 samples of the 2-D mixture with 8 components, 10^3 of the 64-D one with 16.
func BenchmarkDiffusion(b *testing.B) {
	tg := cpuSamplerTarget()
	benchDiffusion(b, tg, DTypes, cpuDiffusionProblems)
}

// diffusionCombineDim is the row length of the Combine benchmarks (a typical latent dimension;
// the noise path's Philox lanes are then all full).
const diffusionCombineDim = 64

// combineTotals are the element counts of the Combine sweeps: CPU 2^16..2^22, CUDA 2^16..2^26.
var (
	cpuCombineTotals  = []int{1 << 16, 1 << 18, 1 << 20, 1 << 22}
	cudaCombineTotals = []int{1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 26}
)

// combineBytes is the memory traffic of one Combine of k terms over elems elements of dt: k reads
// and one write.
func combineBytes(k, elems int, dt tensor.DType) int64 {
	return int64(k+1) * int64(elems) * int64(dt.Size())
}

// benchCombine runs Combine with 2..MaxTerms terms, without and with noise, over totals.
func benchCombine(b *testing.B, be ops.Backend, totals []int, fits func(int64) error) {
	dev := be.Device()
	for _, dt := range DTypes {
		b.Run(dt.String(), func(b *testing.B) {
			for k := 2; k <= ops.MaxTerms; k++ {
				for _, noise := range []float64{0, 1} {
					for _, total := range totals {
						name := fmt.Sprintf("terms=%d/noise=%g/n=%s", k, noise, CountLabel(total))
						b.Run(name, func(b *testing.B) {
							sh, err := ShapeFor(total, diffusionCombineDim)
							if err != nil {
								b.Fatal(err)
							}
							if fits != nil {
								if err := fits(int64(k+1) * sh.Bytes(dt)); err != nil {
									Skipf(b, "%v", err)
								}
							}
							terms := make([]ops.Term, k)
							for i := range terms {
								t, err := tensor.New(dev, dt, sh.Chains, sh.Dim)
								if err != nil {
									b.Fatal(err)
								}
								defer t.Close()
								if err := be.Normal(t, ops.Draw{Seed: uint64(i) + 1}); err != nil {
									b.Fatal(err)
								}
								terms[i] = ops.Term{T: t, C: 1 / float64(i+1)}
							}
							dst, err := tensor.New(dev, dt, sh.Chains, sh.Dim)
							if err != nil {
								b.Fatal(err)
							}
							defer dst.Close()
							site := uint64(0)
							RunBandwidth(b, dev, combineBytes(k, total, dt), func() error {
								site++
								return be.Combine(dst, terms, noise, ops.Draw{Seed: 9, Site: site})
							})
						})
					}
				}
			}
		})
	}
}

// BenchmarkCombine is the CPU reference's Combine: 2..6 terms, with and without noise, 2^16..2^22
// elements in rows of 64.
func BenchmarkCombine(b *testing.B) { benchCombine(b, ops.CPU(), cpuCombineTotals, nil) }

// The benchmark's mixture is the formula's (the numbers the peer computes), and its accuracy
// metrics vanish on exact samples and do not on wrong ones. Exact samples: N = 20000 draws from
// the 2-D, K = 8 mixture. With C the component a sample was drawn from, r_k(X) = P(C = k | X) and
// Σ_k r_k(X) ‖X − μ_k‖²/(d s_k²) = E[‖X − μ_C‖²/(d s_C²) | X], conditional expectations of an
// indicator of mean π_k and of a χ²_d/d variable, so their variances are at most π_k(1 − π_k) and
// 2/d. Hence Σ_k SE_k ≤ Σ_k sqrt(π_k(1 − π_k)/N) ≤ sqrt((K − 1)/N) = 0.019 and mode-tv ≤
// ½ · 4.5 · 0.019 = 0.042 unless some component is off by 4.5 SE (false-failure rate < 8 × 7e-6);
// scale-err has SE ≤ sqrt(1/N) = 0.0071 in 2-D, checked at 5 SE (6e-7).
func TestDiffusionAccuracyMetrics(t *testing.T) {
	m, err := newDiffusionMixture(8, 2)
	require.NoError(t, err)
	assert.InDelta(t, 1.0/15, m.weights[0], 1e-15) // weights 1, 2, 3, 1, 2, 3, 1, 2
	assert.InDelta(t, 4*math.Sin(2.4*3+1.3+0.5), m.means[3][1], 1e-15)
	assert.InDelta(t, 0.6, m.vars[7], 1e-15)
	const n = 20000
	r := rand.New(rand.NewPCG(1, 2))
	exact := make([]float64, 0, 2*n)
	for i := 0; i < n; i++ {
		u, c := r.Float64(), 0
		for acc := m.weights[0]; u > acc && c < len(m.weights)-1; acc += m.weights[c] {
			c++
		}
		for j := 0; j < 2; j++ {
			exact = append(exact, m.means[c][j]+math.Sqrt(m.vars[c])*r.NormFloat64())
		}
	}
	tv, se := m.accuracy(exact, 2)
	assert.Less(t, tv, 0.042)
	assert.InDelta(t, 0, se, 5*0.0071)

	// All samples at the means of component 0: wrong weights, no spread.
	collapsed := make([]float64, 0, 2*n)
	for i := 0; i < n; i++ {
		collapsed = append(collapsed, m.means[0]...)
	}
	tv, se = m.accuracy(collapsed, 2)
	assert.Greater(t, tv, 0.8)
	assert.Less(t, se, -0.9)
}

// The whole-run benchmark problem at a small size: every method evaluates the denoiser the number
// of times the benchmark assumes, and heun with 50 steps samples the 2-D mixture within the
// Monte-Carlo error of the metrics (N = 4000: mode-tv ≤ ½ · 4.5 · sqrt(7/4000) = 0.094, scale-err
// within 5 · sqrt(1/4000) = 0.079, as in TestDiffusionAccuracyMetrics).
func TestDiffusionBenchProblem(t *testing.T) {
	const n = 4000
	m, err := newDiffusionMixture(8, 2)
	require.NoError(t, err)
	den := solvers.TargetDenoiser(target.GMM{Mixture: m.g})
	for _, method := range diffusionMethods {
		res, err := solvers.Diffusion(ops.CPU(), den, n, tensor.F64, solvers.DiffusionConfig{Method: method, Steps: 50, Seed: 3})
		require.NoError(t, err, method)
		assert.Equal(t, int64(n*diffusionEvals(method, 50)), res.ScoreEvals, method)
		assert.Zero(t, res.NaN.Chains, method)
		samples, err := hostFloat64s(res.Samples)
		require.NoError(t, err)
		tv, se := m.accuracy(samples, 2)
		if method == solvers.MethodHeun {
			assert.Less(t, tv, 0.094, method)
			assert.InDelta(t, 0, se, 0.079, method)
		}
		t.Logf("%s, 50 steps, %d samples: mode-tv %.4f, scale-err %+.4f", method, n, tv, se)
		require.NoError(t, res.Close())
	}
}

// Combine moves k + 1 tensors.
func TestCombineBytes(t *testing.T) {
	assert.Equal(t, int64(3*1024*4), combineBytes(2, 1024, tensor.F32))
	assert.Equal(t, int64(7*10*8), combineBytes(6, 10, tensor.F64))
}
