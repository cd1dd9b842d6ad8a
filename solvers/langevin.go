package solvers

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// Defaults of LangevinConfig.
const (
	// DefaultTargetAccept is the MALA acceptance that dual averaging aims at: 0.574, the optimal
	// acceptance of MALA in high dimension (Roberts & Rosenthal 1998).
	DefaultTargetAccept = 0.574
	// DefaultInitialStepSize is the first step size of an adapted run when none is given. Dual
	// averaging starts its search at 10·h0 and moves log h by ≈ 1.8(δ − α) per iteration at first,
	// so it reaches any scale within a few tens of warm-up steps.
	DefaultInitialStepSize = 0.1
)

// LangevinConfig configures Langevin. The zero value is not runnable: Method, Steps and a step
// size (StepSize, or Adapt) must be given; everything else has a default.
type LangevinConfig struct {
	// Method is "ula", "mala" or "uld" (docs/math.md §2, with π ∝ e^{−f}, ∇log π = −∇f):
	//
	//	ula   x' = x + h ∇log π(x) + √(2h) ξ
	//	mala  the ULA move as a proposal y, accepted with probability
	//	      min(1, π(y) q(x|y) / (π(x) q(y|x))), log q(y|x) = −‖y − x − h∇log π(x)‖²/(4h)
	//	uld   dx = v dt, dv = −γ v dt + u ∇log π(x) dt + √(2γu) dB, one frozen-gradient step of
	//	      length h per step (ops.ULDStep; exact for the linear part)
	Method string
	// Steps is the number of steps (≥ 1). Cost: Steps score evaluations per chain, plus one
	// (fused log p and score) at the start for MALA.
	Steps int
	// StepSize is h > 0. With Adapt it is the initial step size (default DefaultInitialStepSize).
	StepSize float64
	// Adapt (MALA only) tunes h during the first WarmUp steps by dual averaging on log h towards
	// TargetAccept (Hoffman & Gelman 2014: γ = 0.05, t0 = 10, κ = 0.75, μ = log(10 h0)), then
	// freezes it at the averaged iterate h̄. By default every chain adapts its own step size on its
	// own accept/reject decisions, so a chain's run depends on nothing but (seed, chain): splitting
	// the chains over calls (FirstChain) reproduces the unsplit run exactly. The trade-off: a chain
	// learns from its own 0/1 decisions only, so the step sizes spread and sit a little low. Measured
	// on a 3-D Gaussian (1000 chains, h0 = 0.1): log h̄ has a standard deviation of 0.25 across
	// chains after 50 warm-up steps (0.13 after 200), the geometric mean is 12 % below the shared
	// estimate's and the acceptance 0.63 instead of 0.574 — a small cost, since MALA's efficiency is
	// flat near its optimum. Result.StepSizes has every chain's h̄.
	Adapt bool
	// SharedStepSize (with Adapt) adapts one step size for all the chains of the call instead, on
	// the fraction of them that accepted at each step (chains whose log p is not finite left out):
	// a less noisy estimate for many chains, but one that depends on the batch — the same chains
	// split over several calls get different step sizes and different samples.
	SharedStepSize bool
	// TargetAccept δ ∈ (0, 1) (default DefaultTargetAccept).
	TargetAccept float64
	// WarmUp is the number of initial steps during which h adapts (default Steps/2 with Adapt, 0
	// without). Acceptance rates in the result count only the steps after it.
	WarmUp int
	// Friction γ > 0 of ULD (required for "uld": γ ≈ 2√(u/σ²) damps critically a direction of
	// standard deviation σ).
	Friction float64
	// InvMass u > 0 of ULD (default 1). The initial velocity is v ~ N(0, u I), its stationary law.
	InvMass float64
	// Thin > 0 keeps the state every Thin steps in Result.Trace, shape (Steps/Thin + 1, N, d):
	// row 0 is the initial state, row k the state after k·Thin steps. 0 keeps no trace.
	Thin int
	// Seed keys the random stream (see Site for the layout).
	Seed uint64
	// FirstChain is the chain index of row 0: a batch with FirstChain = k reproduces rows
	// k, k+1, … of a larger run with the same seed.
	FirstChain uint64
	// Noise is the noise level at which the target is sampled. The zero value means ops.NoNoise:
	// the target itself. Any other level samples the noised target (e.g. ops.AtTime(t)).
	Noise ops.Noise
	// StepByStep runs one op per step even where the fused multi-step path applies. By default a
	// Gaussian-mixture target with isotropic or diagonal covariances (d ≤ ops.FusedMaxDim, one
	// shared noise level) runs every stretch of steps without adaptation or trace point in one
	// ops.Backend.GMMChains call — on the GPU one launch — drawing the same numbers; StepByStep is
	// for checking that equality and for benchmarks.
	StepByStep bool
	// Progress, when set, receives the steps done out of Steps (see Progress).
	Progress Progress
}

// validate checks cfg against a batch of n chains and fills in the defaults.
func (cfg LangevinConfig) validate(n int) (LangevinConfig, error) {
	switch cfg.Method {
	case MethodULA, MethodMALA, MethodULD:
	case "":
		return cfg, fmt.Errorf("no method: set Method to %q, %q or %q", MethodULA, MethodMALA, MethodULD)
	default:
		return cfg, fmt.Errorf("unknown method %q (want %q, %q or %q)", cfg.Method, MethodULA, MethodMALA, MethodULD)
	}
	if cfg.Steps <= 0 {
		return cfg, fmt.Errorf("steps = %d: need at least one step", cfg.Steps)
	}
	if uint64(cfg.Steps) > MaxSteps {
		return cfg, fmt.Errorf("steps = %d: at most %d", cfg.Steps, uint64(MaxSteps))
	}
	adapt := cfg.Adapt
	if cfg.SharedStepSize && !cfg.Adapt {
		return cfg, fmt.Errorf("a shared step size is an adaptation mode: set Adapt too")
	}
	if adapt && cfg.Method != MethodMALA {
		return cfg, fmt.Errorf("%s: step-size adaptation needs acceptance rates: only mala adapts (give a StepSize)", cfg.Method)
	}
	h := cfg.StepSize
	switch {
	case adapt && h == 0:
		cfg.StepSize = DefaultInitialStepSize
	case !finitePositive(h):
		return cfg, fmt.Errorf("step size h = %g: must be a finite number > 0", h)
	}
	if cfg.TargetAccept == 0 {
		cfg.TargetAccept = DefaultTargetAccept
	}
	if !(cfg.TargetAccept > 0 && cfg.TargetAccept < 1) {
		return cfg, fmt.Errorf("target acceptance %g: must be in (0, 1)", cfg.TargetAccept)
	}
	if cfg.WarmUp < 0 || cfg.WarmUp > cfg.Steps {
		return cfg, fmt.Errorf("warm-up = %d steps: must be in [0, steps = %d]", cfg.WarmUp, cfg.Steps)
	}
	if adapt && cfg.WarmUp == 0 {
		cfg.WarmUp = cfg.Steps / 2
		if cfg.WarmUp == 0 {
			return cfg, fmt.Errorf("adaptation needs warm-up steps: steps = %d", cfg.Steps)
		}
	}
	if cfg.Method == MethodULD {
		if !finitePositive(cfg.Friction) {
			return cfg, fmt.Errorf("uld: friction γ = %g: must be a finite number > 0", cfg.Friction)
		}
		if cfg.InvMass == 0 {
			cfg.InvMass = 1
		}
		if !finitePositive(cfg.InvMass) {
			return cfg, fmt.Errorf("uld: inverse mass u = %g: must be a finite number > 0", cfg.InvMass)
		}
	}
	if cfg.Thin < 0 {
		return cfg, fmt.Errorf("thin = %d: must be ≥ 0 (0 keeps no trace)", cfg.Thin)
	}
	if cfg.Thin > cfg.Steps {
		return cfg, fmt.Errorf("thin = %d > steps = %d: the trace would hold only the initial state", cfg.Thin, cfg.Steps)
	}
	if cfg.Noise.Kind == 0 {
		cfg.Noise = ops.NoNoise
	}
	return cfg, checkChains("chains", n, cfg.FirstChain)
}

// Langevin runs N chains of ULA, MALA or ULD (cfg.Method) on the target t, noised by cfg.Noise,
// from the initial states x0 (N, d) on b's device, and returns the final states (a new tensor; x0
// is not changed). Row i is chain cfg.FirstChain + i; its random numbers are those of Site.
//
// MALA needs log π as well as its score. A target that cannot give it at cfg.Noise (an
// empirical data set evaluated without noise has no density) is refused with an error that
// suggests "uld", which needs only the score.
//
// The result's NaN report lists the chains whose state is NaN or ±Inf at the end or at any trace
// point. MALA never moves a chain to a NaN proposal, but ULA and ULD diverge when h is too large
// for the target's curvature (ULA: h > 2σ² on a Gaussian of variance σ²).
func Langevin(b ops.Backend, t target.Target, x0 *tensor.Tensor, cfg LangevinConfig) (*Result, error) {
	op := "langevin"
	if cfg.Method != "" {
		op = "langevin " + cfg.Method
	}
	if err := checkStart(op, b, t, x0); err != nil {
		return nil, err
	}
	n, d, dt, dev := x0.Dim(0), x0.Dim(1), x0.DType(), b.Device()
	cfg, err := cfg.validate(n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	x, err := x0.CopyTo(dev)
	if err != nil {
		return nil, fmt.Errorf("%s: copy the initial state: %w", op, err)
	}
	res := &Result{Samples: x}
	ok := false
	defer func() {
		if !ok {
			res.Close()
		}
	}()
	c, err := newChains(b, cfg.Method, x, cfg.Seed, cfg.FirstChain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer c.close()
	c.stepByStep = cfg.StepByStep
	c.ev = &evaluator{b: b, t: t, noise: cfg.Noise, ev: &res.Evals}
	c.prog = newProgress(cfg.Progress, int64(cfg.Steps), dev)
	if err := checkCapability(op, b, t, cfg.Method, c, cfg.Noise, "uld"); err != nil {
		return nil, err
	}

	nt := newNaNTracker(n)
	var tr *tracer
	if cfg.Thin > 0 {
		if tr, err = newTracer(dev, dt, cfg.Steps/cfg.Thin+1, n, d); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		res.Trace = tr.t
		if err := keepAndCheck(tr, nt, x, 0); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}

	uld := ops.ULDParams{Gamma: cfg.Friction, InvMass: cfg.InvMass}
	if cfg.Method == MethodULD {
		if err := c.initVelocity(0, cfg.InvMass); err != nil {
			return nil, fmt.Errorf("%s: initial velocity: %w", op, err)
		}
	}
	if err := c.start(); err != nil {
		return nil, fmt.Errorf("%s: initial state: %w", op, err)
	}
	ad, err := newAdapter(b, cfg, n, dt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer ad.close()

	// done counts the steps taken. Adaptation needs the host between steps; every other stretch up
	// to the next event (end of warm-up, trace point, end) is one c.run, fused where possible.
	var accAtWarmUp []float64
	for done := 0; done < cfg.Steps; {
		if ad.on && done < cfg.WarmUp {
			if err := c.step(done, ad.h, ad.hs, uld); err != nil {
				return nil, fmt.Errorf("%s: step %d: %w", op, done, err)
			}
			if err := ad.update(c); err != nil {
				return nil, fmt.Errorf("%s: step %d: adapt the step size: %w", op, done, err)
			}
			if err := c.prog.step(int64(done + 1)); err != nil {
				return nil, fmt.Errorf("%s: step %d: %w", op, done, err)
			}
			done++
		} else {
			end := cfg.Steps
			if done < cfg.WarmUp {
				end = cfg.WarmUp
			}
			if tr != nil {
				end = min(end, (done/cfg.Thin+1)*cfg.Thin)
			}
			if err := c.run(done, end, ad.h, ad.hs, uld); err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
			done = end
		}
		if done == cfg.WarmUp {
			if ad.on {
				if err := ad.freeze(); err != nil {
					return nil, fmt.Errorf("%s: freeze the step size: %w", op, err)
				}
			}
			if cfg.Method == MethodMALA {
				if accAtWarmUp, err = c.acc.Float64s(); err != nil {
					return nil, fmt.Errorf("%s: %w", op, err)
				}
			}
		}
		if tr != nil && done%cfg.Thin == 0 {
			if err := keepAndCheck(tr, nt, x, done); err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
		}
	}
	if err := nt.check(x, cfg.Steps); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	res.NaN = nt.rep
	if tr != nil {
		res.TraceSteps = tr.steps
	}
	res.StepSize = ad.h
	if ad.perChain != nil {
		res.StepSizes = make([]float64, n)
		logSum := 0.0
		for i, d := range ad.perChain {
			res.StepSizes[i] = d.final()
			logSum += math.Log(res.StepSizes[i])
		}
		res.StepSize = math.Exp(logSum / float64(n))
	}
	if cfg.Method == MethodMALA {
		acc, err := c.acc.Float64s()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		steps := cfg.Steps - cfg.WarmUp
		if steps == 0 || accAtWarmUp == nil {
			steps, accAtWarmUp = cfg.Steps, make([]float64, n)
		}
		res.Accept = make([]float64, n)
		for i := range acc {
			res.Accept[i] = (acc[i] - accAtWarmUp[i]) / float64(steps)
		}
	}
	ok = true
	return res, nil
}

// checkCapability checks that t can give what method needs at noise (MALA: log p and score;
// otherwise the score), and says which method to use instead when only log p is missing.
func checkCapability(op string, b ops.Backend, t target.Target, method string, c *chains, noise ops.Noise, instead string) error {
	scoreOnly := t.Check(b.Device(), ops.ScoreOutputs{Score: c.score}, c.x, noise)
	if method != MethodMALA {
		if scoreOnly != nil {
			return fmt.Errorf("%s: target %s cannot give a score at noise %v: %w", op, t, noise.Kind, scoreOnly)
		}
		return nil
	}
	if err := t.Check(b.Device(), ops.ScoreOutputs{LogP: c.logp, Score: c.score}, c.x, noise); err != nil {
		if scoreOnly == nil {
			return fmt.Errorf("%s: MALA needs log p, which target %s cannot give at noise %v (%v): use %q, which needs only the score",
				op, t, noise.Kind, err, instead)
		}
		return fmt.Errorf("%s: MALA needs log p, which target %s cannot give at noise %v (%v); %q needs only the score, "+
			"but this target has no score at this noise either: give a noise level (e.g. Noise: ops.AtSigma(σ))", op, t, noise.Kind, err, instead)
	}
	return nil
}

func keepAndCheck(tr *tracer, nt *nanTracker, x *tensor.Tensor, step int) error {
	if err := tr.keep(x, step); err != nil {
		return err
	}
	return nt.check(x, step)
}

// adapter holds the step size of a Langevin run: fixed, adapted shared, or adapted per chain.
type adapter struct {
	on       bool
	h        float64        // shared step size in use
	hs       *tensor.Tensor // per-chain step sizes in use (device), nil when shared
	hsHost   *tensor.Tensor // their host staging copy
	shared   *dualAveraging
	perChain []*dualAveraging
	prevAcc  []float64
}

func newAdapter(b ops.Backend, cfg LangevinConfig, n int, dt tensor.DType) (*adapter, error) {
	a := &adapter{h: cfg.StepSize, on: cfg.Adapt}
	if !a.on {
		return a, nil
	}
	a.prevAcc = make([]float64, n)
	if cfg.SharedStepSize {
		a.shared = newDualAveraging(cfg.StepSize, cfg.TargetAccept)
		return a, nil
	}
	a.perChain = make([]*dualAveraging, n)
	for i := range a.perChain {
		a.perChain[i] = newDualAveraging(cfg.StepSize, cfg.TargetAccept)
	}
	var err error
	if a.hs, err = tensor.New(b.Device(), dt, n); err != nil {
		return nil, fmt.Errorf("allocate per-chain step sizes: %w", err)
	}
	if a.hsHost, err = tensor.New(tensor.CPU(), dt, n); err != nil {
		a.close()
		return nil, fmt.Errorf("allocate per-chain step sizes: %w", err)
	}
	if err := a.hs.Fill(cfg.StepSize); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *adapter) close() { closeAll(a.hs, a.hsHost) }

// update feeds the accept/reject decisions of the step just taken to dual averaging.
func (a *adapter) update(c *chains) error {
	acc, err := c.acc.Float64s()
	if err != nil {
		return err
	}
	lp, err := c.logp.Float64s()
	if err != nil {
		return err
	}
	if a.perChain == nil {
		sum, k := 0.0, 0
		for i := range acc {
			if !math.IsNaN(lp[i]) && !math.IsInf(lp[i], 0) {
				sum += acc[i] - a.prevAcc[i]
				k++
			}
		}
		copy(a.prevAcc, acc)
		if k > 0 { // no finite chain: nothing to learn from, keep h
			a.h = a.shared.update(sum / float64(k))
		}
		return nil
	}
	for i, d := range a.perChain {
		if !math.IsNaN(lp[i]) && !math.IsInf(lp[i], 0) {
			d.update(acc[i] - a.prevAcc[i])
		}
	}
	copy(a.prevAcc, acc)
	return a.upload(func(d *dualAveraging) float64 { return d.current() })
}

// freeze fixes the step size(s) at the dual-averaging iterate h̄.
func (a *adapter) freeze() error {
	if a.perChain == nil {
		a.h = a.shared.final()
		return nil
	}
	return a.upload(func(d *dualAveraging) float64 { return d.final() })
}

func (a *adapter) upload(h func(*dualAveraging) float64) error {
	for i, d := range a.perChain {
		if err := setAt(a.hsHost, i, h(d)); err != nil {
			return err
		}
	}
	return a.hs.CopyFrom(a.hsHost)
}

// setAt sets element i of a host tensor.
func setAt(t *tensor.Tensor, i int, v float64) error {
	if t.DType() == tensor.F32 {
		f, err := t.F32()
		if err != nil {
			return err
		}
		f[i] = float32(v)
		return nil
	}
	f, err := t.F64()
	if err != nil {
		return err
	}
	f[i] = v
	return nil
}
