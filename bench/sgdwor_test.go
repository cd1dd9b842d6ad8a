package bench

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// The continuous-time model of SGD without replacement end to end: solvers.SGDWOR
// (docs/math.md §4.4), N chains of
//
//	θ_{k+1} = θ_k − h u_{t_k} ∇f(θ_k) + σ u_{t_k} ΔB̃_k,   u_t = (1 + t)^{−β},
//
// with β = 0.5, h = 0.02, σ = 1, sgdworSteps = 250 steps (t from 0 to 5), in d = 5 dimensions,
// float64, from θ_0 = (1, …, 1), on two objectives:
//
//	quadratic   f = ½ Σ_j a_j θ_j², a = (1, 1.25, 1.5, 1.75, 2) (strongly convex, optimum 0)
//	doublewell  f = (θ_1² − 1)² + ½ Σ_{j>1} θ_j² (solvers.DoubleWell, barrier 1)
//
// and two noises: epoched (the epoched Brownian motion, a bridge pinned every τ = 1, 50 steps) and
// plain (Epoch 0, Brownian motion). One call is everything a user's run pays for: the noise
// generated on the backend in blocks of chains (ops.Backend.Brownian) and copied to the host, the
// float64 recursion on the host (parallel over chains: N × steps gradient evaluations), the final
// states rounded to the dtype and the NaN scan. Metrics:
//
//	chain-steps/s  N × steps × calls / seconds
//	mean-dist      quadratic only: mean_i ‖θ_i − θ*‖ of the final states of the first (untimed)
//	               call (√5 = 2.24 at the start; reported, not asserted)
//
// Benchmark names:
//
//	BenchmarkSGDWOR[CUDA]/<objective>/<noise>/steps=<S>/d=5/chains=<N>

// The run's parameters (shared by every problem).
const (
	sgdworBeta  = 0.5
	sgdworH     = 0.02
	sgdworSigma = 1.0
	sgdworEpoch = 1.0
	sgdworSteps = 250
	sgdworDim   = 5
)

// sgdworNoise is one noise of the sweep: its name and the epoch τ (0: plain Brownian motion).
type sgdworNoise struct {
	name  string
	epoch float64
}

var sgdworNoises = []sgdworNoise{{"epoched", sgdworEpoch}, {"plain", 0}}

// sgdworObjective is one objective of the sweep; quadratic marks the one whose distance to the
// optimum (the origin) is reported.
type sgdworObjective struct {
	name      string
	f         solvers.Objective
	quadratic bool
}

// sgdworObjectives are the quadratic and the double well of the sweep.
func sgdworObjectives() ([]sgdworObjective, error) {
	q, err := solvers.NewQuadratic([]float64{1, 1.25, 1.5, 1.75, 2}, nil)
	if err != nil {
		return nil, err
	}
	w, err := solvers.NewDoubleWell(sgdworDim, 1)
	if err != nil {
		return nil, err
	}
	return []sgdworObjective{{"quadratic", q, true}, {"doublewell", w, false}}, nil
}

// The chain counts: CPU 10^3 and 10^4, CUDA 10^5 and 10^6.
var (
	cpuSGDWORChains  = []int{1e3, 1e4}
	cudaSGDWORChains = []int{1e5, 1e6}
)

// sgdworConfig is the run's configuration with noise nz.
func sgdworConfig(nz sgdworNoise) solvers.SGDWORConfig {
	return solvers.SGDWORConfig{Beta: sgdworBeta, StepSize: sgdworH, Sigma: sgdworSigma, Steps: sgdworSteps, Epoch: nz.epoch}
}

// sgdworStart is the (n, d) float64 start θ_0 = (1, …, 1) on dev.
func sgdworStart(dev tensor.Device, n int) (*tensor.Tensor, error) {
	v := make([]float64, n*sgdworDim)
	for i := range v {
		v[i] = 1
	}
	h, err := tensor.FromFloat64s(tensor.F64, v, n, sgdworDim)
	if err != nil || h.Device() == dev {
		return h, err
	}
	defer h.Close()
	return h.CopyTo(dev)
}

// sgdworMeanDist is mean_i ‖θ_i‖ over the finite rows of t (N, d).
func sgdworMeanDist(t *tensor.Tensor) (float64, error) {
	v, err := hostFloat64s(t)
	if err != nil {
		return 0, err
	}
	d := t.Dim(1)
	sum, rows := 0.0, 0
	for i := 0; i+d <= len(v); i += d {
		s := 0.0
		for _, x := range v[i : i+d] {
			s += x * x
		}
		if math.IsNaN(s) || math.IsInf(s, 0) {
			continue
		}
		sum += math.Sqrt(s)
		rows++
	}
	return sum / float64(max(rows, 1)), nil
}

// sgdworDeviceBytes bounds the device memory of one run: the start and the final states (float64)
// and one block of noise (at most solvers.DefaultNoiseBlock float64 values).
func sgdworDeviceBytes(n int) int64 {
	nd := int64(n) * sgdworDim
	return 2*8*nd + 8*min(nd*sgdworSteps, int64(solvers.DefaultNoiseBlock))
}

func benchSGDWOR(b *testing.B, tg samplerTarget, chains []int) {
	objs, err := sgdworObjectives()
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range objs {
		for _, nz := range sgdworNoises {
			for _, n := range chains {
				name := fmt.Sprintf("%s/%s/steps=%d/d=%d/chains=%s", o.name, nz.name, sgdworSteps, sgdworDim, pow10Label(n))
				b.Run(name, func(b *testing.B) { benchSGDWORCase(b, tg, o, nz, n) })
			}
		}
	}
}

func benchSGDWORCase(b *testing.B, tg samplerTarget, o sgdworObjective, nz sgdworNoise, n int) {
	tg.skipUnlessFits(b, sgdworDeviceBytes(n))
	be, release := tg.backend(b)
	defer release()
	x0, err := sgdworStart(be.Device(), n)
	if err != nil {
		b.Fatal(err)
	}
	defer x0.Close()
	cfg := sgdworConfig(nz)
	var first *solvers.SGDWORResult
	var evals int64
	// TimeOp's untimed first call loads the kernels; its final states are kept for the distance.
	TimeOp(b, be.Device(), func() error {
		cfg.Seed++ // a fresh stream per call
		res, err := solvers.SGDWOR(be, o.f, x0, cfg)
		if err != nil {
			return err
		}
		evals = res.GradEvals
		if first == nil {
			first = res
			return nil
		}
		return res.Close()
	})
	defer first.Close()
	if want := int64(n) * sgdworSteps; evals != want {
		b.Fatalf("%d gradient evaluations per call, want %d", evals, want)
	}
	if sec := b.Elapsed().Seconds(); sec > 0 {
		b.ReportMetric(float64(n)*sgdworSteps*float64(b.N)/sec, "chain-steps/s")
	}
	if o.quadratic {
		dist, err := sgdworMeanDist(first.Final)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(dist, "mean-dist")
	}
	if first.NaN.Chains > 0 {
		b.ReportMetric(float64(first.NaN.Chains), "nan-chains")
		b.Logf("%v", first.NaN)
	}
}

// BenchmarkSGDWOR is solvers.SGDWOR (β = 0.5, h = 0.02, σ = 1, 250 steps, d = 5; epoched and
// plain noise) on the CPU backend: 10^3 and 10^4 chains on the quadratic and the double well.
func BenchmarkSGDWOR(b *testing.B) {
	tg := cpuSamplerTarget()
	benchSGDWOR(b, tg, cpuSGDWORChains)
}

// Every benchmark configuration runs (1000 chains) with N × steps gradient evaluations and no NaN,
// and on the quadratic the mean distance to the optimum falls from √5 = 2.24 at the start. Without
// noise each coordinate contracts by exp(−a ∫_0^5 u) ≤ exp(−2(√6 − 1)) = 0.055; with plain noise
// the variance left at t = 5 is about σ² u_5/(2a) ≤ 0.2 per coordinate (u_5 = 0.41), a mean
// distance near 1, and the epoched noise, whose increments cancel over each epoch, leaves less
// (measured: 0.86 plain, 0.15 epoched). The checks: the mean distance is below 1.5, and the
// epoched noise's below the plain one's.
func TestSGDWORBenchProblem(t *testing.T) {
	const n = 1000
	objs, err := sgdworObjectives()
	require.NoError(t, err)
	x0, err := sgdworStart(tensor.CPU(), n)
	require.NoError(t, err)
	defer x0.Close()
	start, err := sgdworMeanDist(x0)
	require.NoError(t, err)
	assert.InDelta(t, math.Sqrt(sgdworDim), start, 1e-12)
	dists := map[string]float64{}
	for _, o := range objs {
		for _, nz := range sgdworNoises {
			name := o.name + "/" + nz.name
			cfg := sgdworConfig(nz)
			cfg.Seed = 3
			res, err := solvers.SGDWOR(ops.CPU(), o.f, x0, cfg)
			require.NoError(t, err, name)
			assert.Equal(t, int64(n)*sgdworSteps, res.GradEvals, name)
			assert.Zero(t, res.NaN.Chains, name)
			if o.quadratic {
				dist, err := sgdworMeanDist(res.Final)
				require.NoError(t, err)
				t.Logf("%s: mean distance %.4f (start %.4f)", name, dist, start)
				assert.Less(t, dist, 1.5, name)
				dists[nz.name] = dist
			}
			require.NoError(t, res.Close())
		}
	}
	assert.Less(t, dists["epoched"], dists["plain"])
}
