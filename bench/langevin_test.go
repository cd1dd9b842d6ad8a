package bench

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// Langevin samplers end to end: solvers.Langevin with Method "mala" or "ula" (docs/math.md §2) on an
// isotropic Gaussian mixture, S steps per call, so that the number includes everything a user's
// run pays for — the copy of the initial state, the scratch tensors, one score evaluation per
// step (MALA: fused log p and score, plus one at the start), the proposal, the accept/reject and
// the NaN check at the end. The metric is "chain-steps/s" = chains × S / seconds per call, the
// unit of the peers scripts (peers/mala_jax.py, peers/mala_torch.py), which time the same MALA on
// the same kind of mixture; MALA also reports "accept", the mean acceptance rate of the last timed
// call, so that a row with a degenerate step size shows.
//
// Benchmark names:
//
//	BenchmarkMALA[CUDA]/<dtype>/chains=<N>/d=<dim>
//	BenchmarkULA[CUDA]/<dtype>/chains=<N>/d=<dim>
//
// with powers of ten written 1e3, 1e4, … (chains=1e5 is 100000 chains).

// The problem every Langevin benchmark and both peers run: K = 4 isotropic components drawn by
// benchMixture (weights in [0.5, 1.5), means with N(0, 3²) coordinates, variances in [0.5, 2)),
// chains started from N(0, 3²) rows, S = 20 steps of size h = 0.3 without adaptation (MALA accepts
// 85–95 % of its proposals on it for d = 2..128).
const (
	langevinK        = 4
	langevinSteps    = 20
	langevinStepSize = 0.3
)

// langevinCase is one (chains, d) problem.
type langevinCase struct{ chains, d int }

func langevinGrid(chains, ds []int) []langevinCase {
	var cs []langevinCase
	for _, n := range chains {
		for _, d := range ds {
			cs = append(cs, langevinCase{n, d})
		}
	}
	return cs
}

// The sweeps. CPU: chains ∈ {10^3, 10^4} × d ∈ {2, 16}, and d = 128 at 10^3 chains (10^4 chains
// at d = 128 take seconds per call on a laptop). CUDA: chains ∈ {10^3..10^6} × d ∈ {2, 16, 128};
// the design's target (a fused MALA ≥ 10× JAX) applies at 10^5 chains, d = 2..16.
var (
	cpuLangevinCases  = append(langevinGrid([]int{1e3, 1e4}, []int{2, 16}), langevinCase{1e3, 128})
	cudaLangevinCases = langevinGrid([]int{1e3, 1e4, 1e5, 1e6}, []int{2, 16, 128})
)

// langevinTarget is a backend and the limit a problem must fit in.
type langevinTarget struct {
	// backend returns the backend one problem runs on and a function that releases it afterwards.
	backend func(b *testing.B) (ops.Backend, func())
	// fits returns why bytes of tensors cannot be allocated on the device now, or nil (nil: always).
	fits func(bytes int64) error
}

// langevinBytes is the device memory one run of method holds at its peak: the caller's initial
// state and the run's copy of it, the score, and for MALA the log p, the proposal (state, log p,
// score) and the f64 acceptance counts.
func langevinBytes(method string, dt tensor.DType, n, d int) int64 {
	size, rows := int64(dt.Size()), int64(n)*int64(d)
	if method == solvers.MethodMALA {
		return size*(5*rows+2*int64(n)) + 8*int64(n)
	}
	return size * 3 * rows
}

// benchLangevin runs method over dtypes × cases as sub-benchmarks <dtype>/chains=…/d=….
func benchLangevin(b *testing.B, tg langevinTarget, method string, dtypes []tensor.DType, cases []langevinCase) {
	for _, dt := range dtypes {
		b.Run(dt.String(), func(b *testing.B) {
			for _, c := range cases {
				name := fmt.Sprintf("chains=%s/d=%d", pow10Label(c.chains), c.d)
				b.Run(name, func(b *testing.B) { benchLangevinCase(b, tg, method, dt, c) })
			}
		})
	}
}

func benchLangevinCase(b *testing.B, tg langevinTarget, method string, dt tensor.DType, c langevinCase) {
	if tg.fits != nil {
		bytes := langevinBytes(method, dt, c.chains, c.d)
		if err := tg.fits(bytes); err != nil {
			Skipf(b, "%s: %v", tensor.HumanBytes(bytes), err)
		}
	}
	g, err := benchMixture(ops.Isotropic, langevinK, c.d)
	if err != nil {
		b.Fatal(err)
	}
	be, release := tg.backend(b)
	defer release()
	dev := be.Device()
	x0, err := benchRows(dev, dt, c.chains, c.d, 3)
	if err != nil {
		b.Fatal(err)
	}
	defer x0.Close()
	cfg := solvers.LangevinConfig{Method: method, Steps: langevinSteps, StepSize: langevinStepSize}
	var accept float64
	// TimeOp runs one untimed call first (kernel loading, first-touch pages, the backend's upload
	// of the mixture) and synchronises the device before the timer stops.
	TimeOp(b, dev, func() error {
		cfg.Seed++ // a fresh stream per call, as successive runs of a user's would have
		res, err := solvers.Langevin(be, target.GMM{Mixture: g}, x0, cfg)
		if err != nil {
			return err
		}
		accept = res.AcceptMean()
		return res.Close()
	})
	reportChainSteps(b, c.chains, langevinSteps)
	if method == solvers.MethodMALA {
		b.ReportMetric(accept, "accept")
	}
}

// reportChainSteps reports "chain-steps/s" = chains × steps per call × b.N / elapsed.
func reportChainSteps(b *testing.B, chains, steps int) {
	reportChainStepRate(b, chains, steps, b.N, b.Elapsed().Seconds())
}

func reportChainStepRate(r metricReporter, chains, steps, n int, seconds float64) {
	if n <= 0 || !(seconds > 0) {
		return
	}
	r.ReportMetric(float64(chains)*float64(steps)*float64(n)/seconds, "chain-steps/s")
}

func cpuLangevinTarget() langevinTarget {
	be := ops.CPU()
	return langevinTarget{backend: func(*testing.B) (ops.Backend, func()) { return be, func() {} }}
}

// BenchmarkMALA is MALA (solvers.Langevin, 20 steps, h = 0.3) on the CPU backend on a K = 4
// isotropic mixture: chains ∈ {10^3, 10^4} × d ∈ {2, 16}, and d = 128 at 10^3 chains, f32 and f64.
func BenchmarkMALA(b *testing.B) {
	benchLangevin(b, cpuLangevinTarget(), solvers.MethodMALA, DTypes, cpuLangevinCases)
}

// BenchmarkULA is ULA on the problems of BenchmarkMALA.
func BenchmarkULA(b *testing.B) {
	benchLangevin(b, cpuLangevinTarget(), solvers.MethodULA, DTypes, cpuLangevinCases)
}

// The benchmark problem is what the names say: one MALA call on it evaluates the score once per
// chain per step plus once at the start, accepts a sensible fraction of its proposals (h = 0.3 on
// variances in [0.5, 2): about 0.93 at d = 16, neither almost all nor few) and leaves every chain
// finite.
func TestLangevinBenchProblem(t *testing.T) {
	const n, d = 200, 16
	g, err := benchMixture(ops.Isotropic, langevinK, d)
	require.NoError(t, err)
	be := ops.CPU()
	x0, err := benchRows(be.Device(), tensor.F64, n, d, 3)
	require.NoError(t, err)
	defer x0.Close()
	for _, method := range []string{solvers.MethodMALA, solvers.MethodULA} {
		cfg := solvers.LangevinConfig{Method: method, Steps: langevinSteps, StepSize: langevinStepSize, Seed: 1}
		res, err := solvers.Langevin(be, target.GMM{Mixture: g}, x0, cfg)
		require.NoError(t, err, method)
		evals := int64(n * langevinSteps)
		if method == solvers.MethodMALA {
			evals += n
			acc := res.AcceptMean()
			assert.True(t, acc > 0.5 && acc < 0.99, "mala acceptance %.3f", acc)
		}
		assert.Equal(t, evals, res.ScoreEvals, method)
		assert.Zero(t, res.NaN.Chains, method)
		require.NoError(t, res.Close())
	}
}

// reportChainStepRate counts chains × steps × calls per second.
func TestReportChainStepRate(t *testing.T) {
	r := &recordedMetrics{}
	reportChainStepRate(r, 1000, 20, 5, 0.5)
	require.Contains(t, r.m, "chain-steps/s")
	assert.InDelta(t, 2e5, r.m["chain-steps/s"], 1e-9)
	r = &recordedMetrics{}
	reportChainStepRate(r, 1000, 20, 0, 0.5)
	reportChainStepRate(r, 1000, 20, 5, 0)
	reportChainStepRate(r, 1000, 20, 5, math.NaN())
	assert.Empty(t, r.m)
}

type recordedMetrics struct{ m map[string]float64 }

func (r *recordedMetrics) ReportMetric(v float64, unit string) {
	if r.m == nil {
		r.m = map[string]float64{}
	}
	r.m[unit] = v
}
