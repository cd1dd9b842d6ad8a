package solvers

import (
	"errors"
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// The Langevin-family methods.
const (
	MethodULA  = "ula"
	MethodMALA = "mala"
	MethodULD  = "uld"
)

// chains is a batch of N chains of one Langevin-family method with its scratch tensors: the
// machinery shared by Langevin and by the inner samplers of RTK. x is the caller's state tensor,
// updated in place; every other tensor is owned here and freed by close.
type chains struct {
	b           ops.Backend
	method      string
	seed, first uint64
	x           *tensor.Tensor // (N, d) current state
	score       *tensor.Tensor // (N, d) score at x (MALA: of the current state)
	logp        *tensor.Tensor // (N) MALA: log p at x
	prop        ops.MALAState  // MALA proposal
	acc         *tensor.Tensor // (N) f64 MALA acceptance counts
	v           *tensor.Tensor // (N, d) ULD velocity
	ev          *evaluator
	// stepByStep disables the fused multi-step path (ops.Backend.GMMChains).
	stepByStep bool
	// prog receives the step index after each step or fused chunk (nil: no reports).
	prog *progress
}

func newChains(b ops.Backend, method string, x *tensor.Tensor, seed, first uint64) (*chains, error) {
	c := &chains{b: b, method: method, seed: seed, first: first, x: x}
	dev, dt, n, d := b.Device(), x.DType(), x.Dim(0), x.Dim(1)
	alloc := func(dt tensor.DType, shape ...int) (*tensor.Tensor, error) {
		t, err := tensor.New(dev, dt, shape...)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("allocate %v %v: %w", dt, shape, err)
		}
		return t, nil
	}
	var err error
	if c.score, err = alloc(dt, n, d); err != nil {
		return nil, err
	}
	switch method {
	case MethodMALA:
		if c.logp, err = alloc(dt, n); err != nil {
			return nil, err
		}
		if c.prop.X, err = alloc(dt, n, d); err != nil {
			return nil, err
		}
		if c.prop.LogP, err = alloc(dt, n); err != nil {
			return nil, err
		}
		if c.prop.Score, err = alloc(dt, n, d); err != nil {
			return nil, err
		}
		if c.acc, err = alloc(tensor.F64, n); err != nil {
			return nil, err
		}
	case MethodULD:
		if c.v, err = alloc(dt, n, d); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *chains) close() {
	closeAll(c.score, c.logp, c.prop.X, c.prop.LogP, c.prop.Score, c.acc, c.v)
}

func (c *chains) cur() ops.MALAState { return ops.MALAState{X: c.x, LogP: c.logp, Score: c.score} }

// start prepares a run from the current x: MALA evaluates log p and the score of the current
// state (one fused evaluation); the other methods evaluate at the start of every step.
func (c *chains) start() error {
	if c.method != MethodMALA {
		return nil
	}
	return c.ev.eval(ops.ScoreOutputs{LogP: c.logp, Score: c.score}, c.x)
}

// initVelocity draws v ~ N(0, u I) at Site(s, PurposeVelocity) (v = √u ξ, one fused step).
func (c *chains) initVelocity(s int, u float64) error {
	if err := c.v.Fill(0); err != nil {
		return err
	}
	return c.b.Step(c.v, c.v, nil, ops.Coeffs{Alpha: 0, Gamma: math.Sqrt(u)}, drawAt(c.seed, s, PurposeVelocity, c.first))
}

// step advances every chain by one step of size h (or per-chain sizes hs, ULA and MALA only),
// drawing at step index s.
func (c *chains) step(s int, h float64, hs *tensor.Tensor, p ops.ULDParams) error {
	switch c.method {
	case MethodULA:
		if err := c.ev.eval(ops.ScoreOutputs{Score: c.score}, c.x); err != nil {
			return err
		}
		return c.b.Step(c.x, c.x, c.score, coeffs(h, hs), drawAt(c.seed, s, PurposeStep, c.first))
	case MethodMALA:
		if err := c.b.Step(c.prop.X, c.x, c.score, coeffs(h, hs), drawAt(c.seed, s, PurposeStep, c.first)); err != nil {
			return fmt.Errorf("propose: %w", err)
		}
		if err := c.ev.eval(ops.ScoreOutputs{LogP: c.prop.LogP, Score: c.prop.Score}, c.prop.X); err != nil {
			return err
		}
		if err := c.b.MALAAccept(c.cur(), c.prop, h, hs, drawAt(c.seed, s, PurposeAccept, c.first), c.acc); err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		return nil
	case MethodULD:
		if err := c.ev.eval(ops.ScoreOutputs{Score: c.score}, c.x); err != nil {
			return err
		}
		return c.b.ULDStep(c.x, c.v, c.score, h, p, drawAt(c.seed, s, PurposeULD, c.first))
	}
	return fmt.Errorf("unknown method %q", c.method)
}

func coeffs(h float64, hs *tensor.Tensor) ops.Coeffs {
	if hs != nil {
		return ops.ULAPerChain(hs)
	}
	return ops.ULA(h)
}

// run advances every chain through steps s0..s1−1 (step indices of Site). Where the target is a
// Gaussian mixture the fused kernels accept (ops.CheckGMMChains: isotropic or diagonal, d ≤
// ops.FusedMaxDim, one shared noise level) the whole range is one ops.Backend.GMMChains call, which
// draws exactly the numbers of the step-by-step path; otherwise, or with stepByStep, one step at a
// time.
func (c *chains) run(s0, s1 int, h float64, hs *tensor.Tensor, p ops.ULDParams) error {
	if s1 <= s0 {
		return nil
	}
	if req, ok := c.fusedRequest(s0, s1, h, hs, p); ok {
		err := ops.CheckGMMChains(c.b.Device(), req)
		switch {
		case err == nil:
			// With a progress reporter the stretch is split into chunks; each continues the
			// state, the MALA log p, score and acceptance counts, and the ULD velocity of the
			// last, and draws at the sites of its own steps, so the numbers are the same.
			for a := s0; a < s1; {
				e := min(s1, a+c.prog.chunk(s1-s0))
				if a > s0 {
					req, _ = c.fusedRequest(a, e, h, hs, p)
				} else {
					req.Steps = e - a
				}
				if err := c.b.GMMChains(req); err != nil {
					return fmt.Errorf("steps %d..%d: %w", a, e-1, err)
				}
				c.ev.count(int64(c.x.Dim(0)), int64(e-a), c.method == MethodMALA)
				if err := c.prog.step(int64(e)); err != nil {
					return fmt.Errorf("steps %d..%d: %w", a, e-1, err)
				}
				a = e
			}
			return nil
		case !errors.Is(err, ops.ErrNotFusable):
			return fmt.Errorf("steps %d..%d: %w", s0, s1-1, err)
		}
	}
	for s := s0; s < s1; s++ {
		if err := c.step(s, h, hs, p); err != nil {
			return fmt.Errorf("step %d: %w", s, err)
		}
		if err := c.prog.step(int64(s + 1)); err != nil {
			return fmt.Errorf("step %d: %w", s, err)
		}
	}
	return nil
}

// fusedRequest is the GMMChains request for steps s0..s1−1, when the target is a mixture.
func (c *chains) fusedRequest(s0, s1 int, h float64, hs *tensor.Tensor, p ops.ULDParams) (ops.GMMChains, bool) {
	g, isGMM := c.ev.t.(target.GMM)
	if c.stepByStep || !isGMM {
		return ops.GMMChains{}, false
	}
	req := ops.GMMChains{
		Mixture: g.Mixture, Noise: c.ev.noise, Steps: s1 - s0, H: h, HS: hs, ULD: p,
		Seed: c.seed, FirstChain: c.first,
		Sites: ops.ChainSites{First: uint64(s0), Stride: SitesPerStep,
			Step: uint64(PurposeStep), Accept: uint64(PurposeAccept), ULD: uint64(PurposeULD)},
		X: c.x,
	}
	if c.ev.center != nil {
		req.Factor = &ops.GaussianFactor{Center: c.ev.center, A: c.ev.a, V: c.ev.v}
	}
	switch c.method {
	case MethodULA:
		req.Method = ops.ChainULA
	case MethodMALA:
		req.Method, req.LogP, req.Score, req.Accepted = ops.ChainMALA, c.logp, c.score, c.acc
	case MethodULD:
		req.Method, req.V = ops.ChainULD, c.v
	default:
		return ops.GMMChains{}, false
	}
	return req, true
}
