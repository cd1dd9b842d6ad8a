package ops

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scorekit/scorekit/tensor"
)

// chainsSites is the draw layout of the samplers (solvers.Site): 16 sites per step.
var chainsSites = ChainSites{Stride: 16, Step: 0, Accept: 1, ULD: 2}

// chainsMixture is a K-component mixture in dimension d with well-separated means.
func chainsMixture(t *testing.T, k, d int, kind CovKind) *GMM {
	t.Helper()
	spec := GMMSpec{}
	for c := 0; c < k; c++ {
		spec.Weights = append(spec.Weights, 1+float64(c%3))
		mu := make([]float64, d)
		for j := range mu {
			mu[j] = 2 * math.Cos(float64(3*c+j))
		}
		spec.Means = append(spec.Means, mu)
		switch kind {
		case Isotropic:
			spec.Vars = append(spec.Vars, 0.4+0.2*float64(c%3))
		case Diagonal:
			row := make([]float64, d)
			for j := range row {
				row[j] = 0.3 + 0.1*float64((c+j)%4)
			}
			spec.Diag = append(spec.Diag, row)
		case Full:
			cov := make([][]float64, d)
			for i := range cov {
				cov[i] = make([]float64, d)
				cov[i][i] = 0.5
			}
			spec.Covs = append(spec.Covs, cov)
		}
	}
	g, err := NewGMM(spec)
	require.NoError(t, err)
	return g
}

// chainsState is the host state of a batch of chains, as float64 values.
type chainsState struct {
	x, v, logp, score, acc []float64
}

// chainsProblem builds a GMMChains request of method on host tensors of dt for n chains of g,
// from deterministic starting points; MALA's log p and score are evaluated (with the factor).
type chainsProblem struct {
	method   ChainMethod
	dt       tensor.DType
	g        *GMM
	n        int
	lo       int // global index of row 0: inputs are functions of the global row
	noise    Noise
	factor   bool
	perChain bool
	h        float64
}

func (p chainsProblem) start() chainsState {
	d := p.g.Dim()
	s := chainsState{x: make([]float64, p.n*d), v: make([]float64, p.n*d), acc: make([]float64, p.n)}
	for i := range s.x {
		k := float64(p.lo*d + i)
		s.x[i] = 2.5 * math.Sin(0.37*k+0.2)
		s.v[i] = math.Cos(0.91 * k)
	}
	for i := range s.acc {
		s.acc[i] = float64((p.lo + i) % 3)
	}
	return s
}

// centers is the factor's center rows.
func (p chainsProblem) centers() []float64 {
	d := p.g.Dim()
	c := make([]float64, p.n*d)
	for i := range c {
		c[i] = 1.5 * math.Sin(1.3*float64(p.lo*d+i)+0.5)
	}
	return c
}

// stepSizes returns per-chain step sizes around h.
func (p chainsProblem) stepSizes() []float64 {
	hs := make([]float64, p.n)
	for i := range hs {
		hs[i] = p.h * (0.5 + 0.25*float64((p.lo+i)%4))
	}
	return hs
}

func hostTensor(t *testing.T, dt tensor.DType, v []float64, shape ...int) *tensor.Tensor {
	t.Helper()
	x, err := tensor.FromFloat64s(dt, append([]float64(nil), v...), shape...)
	require.NoError(t, err)
	return x
}

// request returns the request for steps steps from state s (copied into fresh tensors), sites
// starting at step first and chains at firstChain.
func (p chainsProblem) request(t *testing.T, s chainsState, steps int, first, firstChain uint64) GMMChains {
	t.Helper()
	d := p.g.Dim()
	c := GMMChains{Method: p.method, Mixture: p.g, Noise: p.noise, Steps: steps, H: p.h,
		ULD: ULDParams{Gamma: 1.5, InvMass: 0.8}, Seed: 77, FirstChain: firstChain, Sites: chainsSites}
	c.Sites.First = first
	c.X = hostTensor(t, p.dt, s.x, p.n, d)
	if p.factor {
		c.Factor = &GaussianFactor{Center: hostTensor(t, p.dt, p.centers(), p.n, d), A: 0.9, V: 0.35}
	}
	if p.perChain {
		c.HS = hostTensor(t, p.dt, p.stepSizes(), p.n)
	}
	switch p.method {
	case ChainMALA:
		c.LogP = hostTensor(t, p.dt, make([]float64, p.n), p.n)
		c.Score = hostTensor(t, p.dt, make([]float64, p.n*d), p.n, d)
		c.Accepted = hostTensor(t, tensor.F64, s.acc, p.n)
		if s.logp != nil {
			require.NoError(t, c.LogP.CopyFrom(hostTensor(t, p.dt, s.logp, p.n)))
			require.NoError(t, c.Score.CopyFrom(hostTensor(t, p.dt, s.score, p.n, d)))
		} else {
			out := ScoreOutputs{LogP: c.LogP, Score: c.Score}
			require.NoError(t, CPU().GMMScore(out, c.X, p.g, p.noiseOrClean()))
			if c.Factor != nil {
				require.NoError(t, CPU().AddGaussianFactor(out, c.X, c.Factor.Center, c.Factor.A, c.Factor.V))
			}
		}
	case ChainULD:
		c.V = hostTensor(t, p.dt, s.v, p.n, d)
	}
	return c
}

func (p chainsProblem) noiseOrClean() Noise {
	if p.noise.Kind == 0 {
		return NoNoise
	}
	return p.noise
}

// state reads the request's tensors back.
func (p chainsProblem) state(t *testing.T, c GMMChains) chainsState {
	t.Helper()
	s := chainsState{x: vals(t, c.X)}
	if c.V != nil {
		s.v = vals(t, c.V)
	}
	if c.LogP != nil {
		s.logp, s.score, s.acc = vals(t, c.LogP), vals(t, c.Score), vals(t, c.Accepted)
	}
	return s
}

// sameBits reports whether a and b are equal element for element (NaN equal to NaN).
func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}

func (s chainsState) equal(o chainsState) bool {
	return sameBits(s.x, o.x) && sameBits(s.v, o.v) && sameBits(s.logp, o.logp) && sameBits(s.score, o.score) &&
		sameBits(s.acc, o.acc)
}

func (s chainsState) rows(lo, hi, d int) chainsState {
	cut := func(v []float64, w int) []float64 {
		if v == nil {
			return nil
		}
		return v[lo*w : hi*w]
	}
	return chainsState{x: cut(s.x, d), v: cut(s.v, d), logp: cut(s.logp, 1), score: cut(s.score, d), acc: cut(s.acc, 1)}
}

// Every argument GMMChains validates is refused with an error naming it, before anything changes;
// full covariances, per-row levels and d > FusedMaxDim are ErrNotFusable, nothing else is.
func TestGMMChainsRejectsBadInput(t *testing.T) {
	g := chainsMixture(t, 3, 2, Isotropic)
	p := chainsProblem{method: ChainMALA, dt: tensor.F64, g: g, n: 4, noise: AtSigma(0.5), h: 0.1}
	uld := chainsProblem{method: ChainULD, dt: tensor.F64, g: g, n: 4, h: 0.1}
	wide := chainsMixture(t, 1, FusedMaxDim+1, Isotropic)
	levels := hostTensor(t, tensor.F64, []float64{0.1, 0.2, 0.3, 0.4}, 4)
	f32 := hostTensor(t, tensor.F32, make([]float64, 4), 4)
	wrong := hostTensor(t, tensor.F64, make([]float64, 6), 3, 2)
	cases := []struct {
		name       string
		base       chainsProblem
		edit       func(c *GMMChains)
		want       string
		notFusable bool
	}{
		{"no method", p, func(c *GMMChains) { c.Method = 0 }, "unknown method", false},
		{"nil mixture", p, func(c *GMMChains) { c.Mixture = nil }, "nil mixture", false},
		{"full covariances", p, func(c *GMMChains) { c.Mixture = chainsMixture(t, 2, 2, Full) }, "full covariances", true},
		{"too wide", p, func(c *GMMChains) {
			c.Mixture = wide
			c.X = hostTensor(t, tensor.F64, make([]float64, 4*(FusedMaxDim+1)), 4, FusedMaxDim+1)
		}, "dimension 257 > 256", true},
		{"per-row levels", p, func(c *GMMChains) { c.Noise = Noise{Kind: VE, Levels: levels} }, "per-row noise levels", true},
		{"nil x", p, func(c *GMMChains) { c.X = nil }, "X must be an open (N, d) tensor", false},
		{"x of the wrong width", p, func(c *GMMChains) {
			c.X = hostTensor(t, tensor.F64, make([]float64, 12), 4, 3)
		}, "X has shape", false},
		{"no steps", p, func(c *GMMChains) { c.Steps = 0 }, "steps = 0", false},
		{"zero step size", p, func(c *GMMChains) { c.H = 0 }, "step size h = 0", false},
		{"NaN step size", p, func(c *GMMChains) { c.H = math.NaN() }, "step size h = NaN", false},
		{"per-chain steps of the wrong dtype", p, func(c *GMMChains) { c.HS = f32 }, "per-chain step sizes", false},
		{"per-chain steps for ULD", uld, func(c *GMMChains) { c.HS = levels }, "per-chain step sizes are for ULA and MALA", false},
		{"MALA without log p", p, func(c *GMMChains) { c.LogP = nil }, "log p is nil", false},
		{"MALA score of the wrong shape", p, func(c *GMMChains) { c.Score = wrong }, "score has shape", false},
		{"f32 acceptance counts", p, func(c *GMMChains) { c.Accepted = f32 }, "acceptance counts", false},
		{"ULD without velocity", uld, func(c *GMMChains) { c.V = nil }, "V is nil", false},
		{"zero friction", uld, func(c *GMMChains) { c.ULD.Gamma = 0 }, "friction", false},
		{"negative inverse mass", uld, func(c *GMMChains) { c.ULD.InvMass = -1 }, "inverse mass", false},
		{"factor center of the wrong shape", p, func(c *GMMChains) {
			c.Factor = &GaussianFactor{Center: wrong, A: 1, V: 1}
		}, "factor center", false},
		{"factor variance 0", p, func(c *GMMChains) {
			c.Factor = &GaussianFactor{Center: c.X, A: 1, V: 0}
		}, "factor scale", false},
		{"trace without thin", p, func(c *GMMChains) {
			c.Trace = hostTensor(t, tensor.F64, make([]float64, 3*4*2), 3, 4, 2)
		}, "thin = 0", false},
		{"thin beyond the steps", p, func(c *GMMChains) {
			c.Trace, c.Thin = hostTensor(t, tensor.F64, make([]float64, 8), 1, 4, 2), 4
		}, "thin = 4", false},
		{"trace of the wrong shape", p, func(c *GMMChains) {
			c.Trace, c.Thin = hostTensor(t, tensor.F64, make([]float64, 8), 1, 4, 2), 1
		}, "trace has shape", false},
		{"site stride too small", p, func(c *GMMChains) { c.Sites.Stride = 2 }, "site stride", false},
		{"sites overflow", p, func(c *GMMChains) { c.Sites.First = math.MaxUint64 / 16 }, "overflow 64 bits", false},
		{"sites overflow with a huge stride", p, func(c *GMMChains) { c.Sites.Stride = 1 << 63 }, "overflow 64 bits", false},
		{"bad noise level", p, func(c *GMMChains) { c.Noise = AtSigma(-1) }, "noise level", false},
		{"chains beyond 2^32", p, func(c *GMMChains) { c.FirstChain = MaxChains - 1 }, "out of range", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.base.request(t, tc.base.start(), 3, 0, 0)
			before := tc.base.state(t, c)
			tc.edit(&c)
			err := CPU().GMMChains(c)
			require.Error(t, err)
			assert.ErrorContains(t, err, tc.want)
			assert.Contains(t, err.Error(), "gmm chains", "the error names the op")
			assert.Equal(t, tc.notFusable, errors.Is(err, ErrNotFusable), "ErrNotFusable: %v", err)
			assert.Equal(t, tc.notFusable, errors.Is(CheckGMMChains(tensor.CPU(), c), ErrNotFusable))
			if c.X != nil && c.X.Rank() == 2 && c.X.Dim(1) == 2 {
				assert.True(t, sameBits(before.x, vals(t, c.X)), "a refused call changed the state")
			}
		})
	}
}

// manualRun advances the problem's chains by steps steps with the step ops themselves — the loop
// GMMChains is defined as — and returns the state after every step.
func manualRun(t *testing.T, p chainsProblem, c GMMChains, steps int) []chainsState {
	t.Helper()
	b := CPU()
	n, d := p.n, p.g.Dim()
	score := hostTensor(t, p.dt, make([]float64, n*d), n, d)
	y := hostTensor(t, p.dt, make([]float64, n*d), n, d)
	lpy := hostTensor(t, p.dt, make([]float64, n), n)
	eval := func(out ScoreOutputs, x *tensor.Tensor) {
		require.NoError(t, b.GMMScore(out, x, p.g, p.noiseOrClean()))
		if c.Factor != nil {
			require.NoError(t, b.AddGaussianFactor(out, x, c.Factor.Center, c.Factor.A, c.Factor.V))
		}
	}
	coeffs := ULA(c.H)
	if c.HS != nil {
		coeffs = ULAPerChain(c.HS)
	}
	draw := func(s int, purpose uint64) Draw {
		return Draw{Seed: c.Seed, Site: (c.Sites.First+uint64(s))*c.Sites.Stride + purpose, FirstChain: c.FirstChain}
	}
	var states []chainsState
	for s := 0; s < steps; s++ {
		switch p.method {
		case ChainULA:
			eval(ScoreOutputs{Score: score}, c.X)
			require.NoError(t, b.Step(c.X, c.X, score, coeffs, draw(s, c.Sites.Step)))
		case ChainMALA:
			require.NoError(t, b.Step(y, c.X, c.Score, coeffs, draw(s, c.Sites.Step)))
			eval(ScoreOutputs{LogP: lpy, Score: score}, y)
			require.NoError(t, b.MALAAccept(MALAState{X: c.X, LogP: c.LogP, Score: c.Score},
				MALAState{X: y, LogP: lpy, Score: score}, c.H, c.HS, draw(s, c.Sites.Accept), c.Accepted))
		case ChainULD:
			eval(ScoreOutputs{Score: score}, c.X)
			require.NoError(t, b.ULDStep(c.X, c.V, score, c.H, c.ULD, draw(s, c.Sites.ULD)))
		}
		states = append(states, p.state(t, c))
	}
	return states
}

// chainsVariants covers the methods, both dtypes, the factor, per-chain step sizes and the noise
// kinds.
func chainsVariants(t *testing.T) []chainsProblem {
	iso := chainsMixture(t, 3, 3, Isotropic)
	diag := chainsMixture(t, 4, 5, Diagonal)
	var ps []chainsProblem
	for i, m := range []ChainMethod{ChainULA, ChainMALA, ChainULD} {
		for j, dt := range []tensor.DType{tensor.F64, tensor.F32} {
			g := iso
			if (i+j)%2 == 1 {
				g = diag
			}
			noise := []Noise{{}, AtSigma(0.4), AtTime(0.2), {Kind: Affine, Scale: 0.8, Var: 0.3}}[(i+2*j)%4]
			ps = append(ps, chainsProblem{method: m, dt: dt, g: g, n: 7, noise: noise, factor: j == 1 || m == ChainMALA,
				perChain: m != ChainULD && j == 0, h: 0.08})
		}
	}
	return ps
}

func (p chainsProblem) String() string {
	return fmt.Sprintf("%v/%v/d=%d/factor=%v/per-chain=%v/noise=%v", p.method, p.dt, p.g.Dim(), p.factor, p.perChain, p.noise.Kind)
}

// The trace holds the states of the step-by-step loop after Thin, 2·Thin, … steps, and the final
// state is the loop's last one, bit for bit.
func TestGMMChainsTraceIsTheManualLoop(t *testing.T) {
	const steps, thin = 6, 2
	for _, p := range chainsVariants(t) {
		t.Run(p.String(), func(t *testing.T) {
			d := p.g.Dim()
			start := p.start()
			c := p.request(t, start, steps, 5, 11)
			c.Trace, c.Thin = hostTensor(t, p.dt, make([]float64, steps/thin*p.n*d), steps/thin, p.n, d), thin
			require.NoError(t, CPU().GMMChains(c))
			manual := manualRun(t, p, p.request(t, start, steps, 5, 11), steps)
			tr := vals(t, c.Trace)
			for r := 0; r < steps/thin; r++ {
				want := manual[(r+1)*thin-1].x
				assert.True(t, sameBits(tr[r*p.n*d:(r+1)*p.n*d], want), "trace row %d", r)
			}
			assert.True(t, p.state(t, c).equal(manual[steps-1]), "final state")
			assert.False(t, sameBits(manual[0].x, start.x), "the chains moved")
		})
	}
}

// A run of 6 steps equals a run of 2 steps followed by a run of 4 whose sites start at step 2.
func TestGMMChainsSplitRunEqualsOneRun(t *testing.T) {
	for _, p := range chainsVariants(t) {
		t.Run(p.String(), func(t *testing.T) {
			start := p.start()
			one := p.request(t, start, 6, 3, 0)
			require.NoError(t, CPU().GMMChains(one))
			first := p.request(t, start, 2, 3, 0)
			require.NoError(t, CPU().GMMChains(first))
			second := p.request(t, p.state(t, first), 4, 5, 0)
			require.NoError(t, CPU().GMMChains(second))
			assert.True(t, p.state(t, one).equal(p.state(t, second)))
			wrong := p.request(t, p.state(t, first), 4, 3, 0) // reuses the sites of steps 0..3
			require.NoError(t, CPU().GMMChains(wrong))
			assert.False(t, sameBits(p.state(t, one).x, p.state(t, wrong).x), "sites must matter")
		})
	}
}

// Rows [0, 3) and [3, 7) run as two calls with FirstChain offsets equal the rows of one call.
func TestGMMChainsFirstChainSplitsRows(t *testing.T) {
	const base = 1000
	for _, p := range chainsVariants(t) {
		t.Run(p.String(), func(t *testing.T) {
			d := p.g.Dim()
			start := p.start()
			whole := p.request(t, start, 4, 0, base)
			require.NoError(t, CPU().GMMChains(whole))
			all := p.state(t, whole)
			for _, cut := range [][2]int{{0, 3}, {3, 7}} {
				q := p
				q.lo, q.n = cut[0], cut[1]-cut[0]
				c := q.request(t, q.start(), 4, 0, base+uint64(cut[0]))
				require.NoError(t, CPU().GMMChains(c))
				assert.True(t, q.state(t, c).equal(all.rows(cut[0], cut[1], d)), "rows %v", cut)
			}
		})
	}
}

// A NaN chain stays NaN (ULA, ULD) or never moves (MALA), and the other chains are those of a run
// without it; a MALA chain whose proposal is NaN (step size −1) rejects every step.
func TestGMMChainsNaNChainIsIsolated(t *testing.T) {
	for _, p := range chainsVariants(t) {
		t.Run(p.String(), func(t *testing.T) {
			d := p.g.Dim()
			start := p.start()
			clean := p.request(t, start, 5, 0, 0)
			require.NoError(t, CPU().GMMChains(clean))
			poisoned := start
			poisoned.x = append([]float64(nil), start.x...)
			poisoned.x[2*d] = math.NaN()
			c := p.request(t, poisoned, 5, 0, 0)
			require.NoError(t, CPU().GMMChains(c))
			got, want := p.state(t, c), p.state(t, clean)
			for i := 0; i < p.n; i++ {
				if i == 2 {
					continue
				}
				assert.True(t, got.rows(i, i+1, d).equal(want.rows(i, i+1, d)), "chain %d", i)
			}
			row := got.rows(2, 3, d)
			assert.True(t, math.IsNaN(row.x[0]))
			if p.method == ChainMALA {
				assert.Equal(t, start.acc[2], row.acc[0], "a NaN chain accepts nothing")
				assert.True(t, sameBits(row.x, roundedTo(p.dt, poisoned.x[2*d:3*d])), "a NaN chain does not move")
			} else {
				for _, v := range row.x {
					assert.True(t, math.IsNaN(v), "a NaN chain stays NaN")
				}
			}
			if p.method == ChainMALA && p.perChain {
				c := p.request(t, start, 5, 0, 0)
				hs := vals(t, c.HS)
				hs[4] = -1
				c.HS = hostTensor(t, p.dt, hs, p.n)
				require.NoError(t, CPU().GMMChains(c))
				s := p.state(t, c).rows(4, 5, d)
				assert.Equal(t, start.acc[4], s.acc[0], "NaN proposals are rejected")
				assert.True(t, sameBits(s.x, roundedTo(p.dt, start.x[4*d:5*d])), "the chain never moves to NaN")
			}
		})
	}
}

func roundedTo(dt tensor.DType, v []float64) []float64 {
	out := append([]float64(nil), v...)
	if dt == tensor.F32 {
		for i, w := range out {
			out[i] = float64(float32(w))
		}
	}
	return out
}

// MALA leaves its target invariant: 4000 chains started from a Gaussian target (drawn exactly)
// are still distributed as the target after 25 steps. Per coordinate the sample mean is within
// 4.5 standard errors of μ (SE = sqrt(v/n)) and the sample variance within 4.5 SE of v
// (SE ≈ v·sqrt(2/n)); with 2 × 2 such z-tests the false-failure rate is below 3e-5.
func TestGMMChainsMALAKeepsTheTarget(t *testing.T) {
	const n, d, steps = 4000, 2, 25
	mu, v := []float64{1, -2}, 0.7
	g, err := NewGMM(GMMSpec{Weights: []float64{1}, Means: [][]float64{mu}, Vars: []float64{v}})
	require.NoError(t, err)
	xi, _ := tensor.New(nil, tensor.F64, n, d)
	require.NoError(t, CPU().Normal(xi, Draw{Seed: 99, Site: 1}))
	x0 := vals(t, xi)
	for i := range x0 {
		x0[i] = mu[i%d] + math.Sqrt(v)*x0[i]
	}
	p := chainsProblem{method: ChainMALA, dt: tensor.F64, g: g, n: n, h: 0.9}
	c := p.request(t, chainsState{x: x0, acc: make([]float64, n)}, steps, 0, 0)
	require.NoError(t, CPU().GMMChains(c))
	x, acc := vals(t, c.X), vals(t, c.Accepted)
	rate := 0.0
	for _, a := range acc {
		rate += a / (n * steps)
	}
	assert.True(t, rate > 0.3 && rate < 0.95, "acceptance %.3f exercises both outcomes", rate)
	for j := 0; j < d; j++ {
		m, m2 := 0.0, 0.0
		for i := 0; i < n; i++ {
			m += x[i*d+j] / n
		}
		for i := 0; i < n; i++ {
			m2 += (x[i*d+j] - m) * (x[i*d+j] - m) / (n - 1)
		}
		assert.InDelta(t, mu[j], m, 4.5*math.Sqrt(v/n), "mean of coordinate %d", j)
		assert.InDelta(t, v, m2, 4.5*v*math.Sqrt(2.0/n), "variance of coordinate %d", j)
	}
}
