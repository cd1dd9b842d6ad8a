package bench

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Fused Langevin chains: one ops.Backend.GMMChains call runs chainsSteps steps of MALA or ULD for
// every chain (on the GPU in one launch, each chain's state in registers; on the CPU the
// reference, which is the step-by-step sequence of the ops). The problem is the one of
// langevin_test.go and of the peers scripts peers/chains_jax.py and peers/chains_torch.py: a K = 4
// isotropic mixture (benchMixture: weights in [0.5, 1.5), means N(0, 3²), variances in [0.5, 2)),
// chains started from N(0, 3²) rows, step size h = 0.3 without adaptation; ULD with friction
// γ = 1.5 and unit inverse mass. What is timed is the call alone: the state stays on the device
// between calls (each call continues the chains, its sites following the previous call's), MALA's
// log p and score are evaluated once before timing.
//
// Metrics: "chain-steps/s" = chains × chainsSteps per call / seconds per call; MALA also reports
// "accept", the mean acceptance rate over every call; the CUDA suites report "GB/s", the bytes the
// step-by-step path moves through device memory per step (chainsStepBytes) × chainsSteps per
// call / seconds per call — for the fused kernel an equivalent bandwidth, how fast an unfused
// implementation would have to stream the state to match it (and "%peak" of the device's DRAM
// bandwidth).
//
// Benchmark names:
//
//	BenchmarkChainsMALA/<dtype>/chains=<N>/d=<dim>                 CPU
//	BenchmarkChains{MALA,ULD}CUDA/<dtype>/chains=<N>/d=<dim>       fused, GPU
//	BenchmarkChains{MALA,ULD}StepByStepCUDA/<dtype>/chains=<N>/d=<dim>
//	                                                                ops.StepByStepChains on the GPU
const (
	chainsSteps    = 100
	chainsFriction = 1.5
)

// chainsCase is one (method, chains, d) problem.
type chainsCase struct {
	method ops.ChainMethod
	chains int
	d      int
}

func (c chainsCase) name() string { return fmt.Sprintf("chains=%s/d=%d", pow10Label(c.chains), c.d) }

// The CPU sweep: chains ∈ {10^3, 10^4} × d ∈ {2, 16}.
var cpuChainsCases = []chainsCase{
	{ops.ChainMALA, 1e3, 2}, {ops.ChainMALA, 1e3, 16}, {ops.ChainMALA, 1e4, 2}, {ops.ChainMALA, 1e4, 16},
}

// chainsStepBytes is the device-memory traffic of one step of the step-by-step path for n chains
// in dimension d, counting each op's reads and writes of (n, d) and (n) tensors once:
//
//	MALA  Step (read x, s(x); write y) 3nd; GMMScore (read y; write s(y), log p(y)) 2nd + n;
//	      MALAAccept (read x, s(x), y, s(y), log p(x), log p(y)) 4nd + 2n — 9nd + 3n, the copies
//	      of accepted proposals not counted
//	ULD   GMMScore (read x; write s) 2nd; ULDStep (read x, v, s; write x, v) 5nd — 7nd
//
// in elements of dt (the mixture's table, read from cache, is not counted).
func chainsStepBytes(method ops.ChainMethod, dt tensor.DType, n, d int) int64 {
	nd, nn := int64(n)*int64(d), int64(n)
	elems := 7 * nd
	if method == ops.ChainMALA {
		elems = 9*nd + 3*nn
	}
	return elems * int64(dt.Size())
}

// chainsRunBytes is the device memory one problem holds: the state (x; MALA log p, score and f64
// acceptance counts; ULD v) and, for the step-by-step path, its scratch (MALA the proposal's x,
// log p and score; ULD the score).
func chainsRunBytes(method ops.ChainMethod, dt tensor.DType, n, d int, stepByStep bool) int64 {
	size, nd, nn := int64(dt.Size()), int64(n)*int64(d), int64(n)
	if method == ops.ChainMALA {
		b := size*(2*nd+nn) + 8*nn
		if stepByStep {
			b += size * (2*nd + nn)
		}
		return b
	}
	b := size * 2 * nd
	if stepByStep {
		b += size * nd
	}
	return b
}

// chainsTarget is where a chains benchmark runs.
type chainsTarget struct {
	backend    func(b *testing.B) (ops.Backend, func())
	fits       func(bytes int64) error // nil: always
	stepByStep bool                    // time ops.StepByStepChains instead of GMMChains
	bandwidth  bool                    // report GB/s-equivalent
}

// chainsRun is the state of one problem on a backend.
type chainsRun struct {
	req   ops.GMMChains
	calls int
}

func newChainsRun(be ops.Backend, dt tensor.DType, c chainsCase) (*chainsRun, error) {
	g, err := benchMixture(ops.Isotropic, langevinK, c.d)
	if err != nil {
		return nil, err
	}
	x, err := benchRows(be.Device(), dt, c.chains, c.d, 3)
	if err != nil {
		return nil, err
	}
	r := &chainsRun{req: ops.GMMChains{Method: c.method, Mixture: g, Steps: chainsSteps, H: langevinStepSize,
		ULD: ops.ULDParams{Gamma: chainsFriction, InvMass: 1}, Seed: 2024, X: x,
		Sites: ops.ChainSites{Stride: 16, Step: 0, Accept: 1, ULD: 2}}}
	alloc := func(dt tensor.DType, shape ...int) *tensor.Tensor {
		if err != nil {
			return nil
		}
		var t *tensor.Tensor
		t, err = tensor.New(be.Device(), dt, shape...)
		return t
	}
	switch c.method {
	case ops.ChainMALA:
		r.req.LogP, r.req.Score, r.req.Accepted = alloc(dt, c.chains), alloc(dt, c.chains, c.d), alloc(tensor.F64, c.chains)
		if err == nil {
			err = r.req.Accepted.Fill(0)
		}
		if err == nil {
			err = be.GMMScore(ops.ScoreOutputs{LogP: r.req.LogP, Score: r.req.Score}, x, g, ops.NoNoise)
		}
	case ops.ChainULD:
		r.req.V = alloc(dt, c.chains, c.d)
		if err == nil {
			err = r.req.V.Fill(0)
		}
	}
	if err != nil {
		r.close()
		return nil, fmt.Errorf("set up %v chains %dx%d: %w", c.method, c.chains, c.d, err)
	}
	return r, nil
}

// call runs the next chainsSteps steps.
func (r *chainsRun) call(be ops.Backend, stepByStep bool) error {
	r.req.Sites.First = uint64(r.calls) * chainsSteps
	r.calls++
	if stepByStep {
		return ops.StepByStepChains(be, r.req)
	}
	return be.GMMChains(r.req)
}

// acceptance is the mean acceptance rate of every call so far (MALA).
func (r *chainsRun) acceptance() (float64, error) {
	h, err := r.req.Accepted.CopyTo(tensor.CPU())
	if err != nil {
		return 0, err
	}
	defer h.Close()
	v, err := h.Float64s()
	if err != nil {
		return 0, err
	}
	s := 0.0
	for _, a := range v {
		s += a
	}
	return s / float64(len(v)*r.calls*chainsSteps), nil
}

func (r *chainsRun) close() {
	for _, t := range []*tensor.Tensor{r.req.X, r.req.V, r.req.LogP, r.req.Score, r.req.Accepted} {
		if t != nil {
			t.Close()
		}
	}
}

// benchChains runs method's cases over dtypes as sub-benchmarks <dtype>/chains=…/d=….
func benchChains(b *testing.B, tg chainsTarget, dtypes []tensor.DType, cases []chainsCase) {
	for _, dt := range dtypes {
		b.Run(dt.String(), func(b *testing.B) {
			for _, c := range cases {
				b.Run(c.name(), func(b *testing.B) { benchChainsCase(b, tg, dt, c) })
			}
		})
	}
}

func benchChainsCase(b *testing.B, tg chainsTarget, dt tensor.DType, c chainsCase) {
	if tg.fits != nil {
		bytes := chainsRunBytes(c.method, dt, c.chains, c.d, tg.stepByStep)
		if err := tg.fits(bytes); err != nil {
			Skipf(b, "%s: %v", tensor.HumanBytes(bytes), err)
		}
	}
	be, release := tg.backend(b)
	defer release()
	r, err := newChainsRun(be, dt, c)
	if err != nil {
		b.Fatal(err)
	}
	defer r.close()
	TimeOp(b, be.Device(), func() error { return r.call(be, tg.stepByStep) })
	reportChainSteps(b, c.chains, chainsSteps)
	if tg.bandwidth {
		ReportBandwidth(b, chainsSteps*chainsStepBytes(c.method, dt, c.chains, c.d), be.Device().Info())
	}
	if c.method == ops.ChainMALA {
		acc, err := r.acceptance()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(acc, "accept")
	}
}

// BenchmarkChainsMALA is GMMChains MALA (100 steps per call, h = 0.3) on the CPU backend
// (ops.CPU()): chains ∈ {10^3, 10^4} × d ∈ {2, 16}, f32 and f64.
func BenchmarkChainsMALA(b *testing.B) {
	be := ops.CPU()
	tg := chainsTarget{backend: func(*testing.B) (ops.Backend, func()) { return be, func() {} }}
	benchChains(b, tg, DTypes, cpuChainsCases)
}

// The benchmark problems run and do what the names say: MALA accepts a sensible fraction of its
// proposals (neither almost all nor few), every chain stays finite, and a call continues where the
// previous one stopped (two calls of 100 steps equal one run of 200).
func TestChainsBenchProblem(t *testing.T) {
	be := ops.CPU()
	for _, m := range []ops.ChainMethod{ops.ChainMALA, ops.ChainULD} {
		c := chainsCase{m, 200, 16}
		r, err := newChainsRun(be, tensor.F64, c)
		require.NoError(t, err)
		require.NoError(t, r.call(be, false))
		require.NoError(t, r.call(be, false))
		nan, _ := r.req.X.HasNaN()
		assert.False(t, nan, "%v: a chain turned NaN", m)
		if m == ops.ChainMALA {
			acc, err := r.acceptance()
			require.NoError(t, err)
			assert.True(t, acc > 0.5 && acc < 0.99, "mala acceptance %.3f", acc)
		}
		once, err := newChainsRun(be, tensor.F64, c)
		require.NoError(t, err)
		once.req.Steps = 2 * chainsSteps
		require.NoError(t, once.call(be, false))
		a, _ := r.req.X.Float64s()
		o, _ := once.req.X.Float64s()
		assert.Equal(t, o, a, "%v: two calls continue one run", m)
		r.close()
		once.close()
	}
	assert.Equal(t, int64(4*(9*1000*16+3*1000)), chainsStepBytes(ops.ChainMALA, tensor.F32, 1000, 16))
	assert.Equal(t, int64(8*7*1000*2), chainsStepBytes(ops.ChainULD, tensor.F64, 1000, 2))
}
