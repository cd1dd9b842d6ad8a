package solvers

import (
	"fmt"
	"math"
	"slices"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// A multi-marginal Schrödinger bridge (docs/bridge.md): the process that connects marginals
// p_0, …, p_M observed at times t_0 < … < t_M, closest in relative entropy to Brownian motion
// with diffusion ε (dX = √ε dW). With a Markov reference the multi-marginal problem factorises
// over consecutive intervals; on [t_k, t_{k+1}] the process is
//
//	dX_τ = v_k(τ, X_τ) dτ + √ε dW_τ,   v_k(τ, x) = (E[X_{t_{k+1}} | X_τ = x] − x)/(t_{k+1} − τ)
//
// (a mixture of Brownian bridges pinned at its coupling of p_k and p_{k+1}), and in reverse time
// the same with the roles of the ends swapped. The endpoint predictor E[X_end | X_τ = x] is a
// learned denoiser (ops.MLP) evaluated at the VE noise level σ = √(ε r), r = |end − τ| the time
// left (the standard deviation of the reference's endpoint given X_τ), so every backend runs it
// through ops.Backend.MLPScore. The drift is then ε·score: the forward drift of a Schrödinger
// bridge is ε ∇ log φ.

// Bridge is a fitted multi-marginal Schrödinger bridge: the observed times, ε, and per interval
// k the forward endpoint predictor Forward(k) (predicts X_{t_{k+1}}) and the backward one
// Backward(k) (predicts X_{t_k}). It is immutable.
type Bridge struct {
	times []float64
	eps   float64
	flow  bool // fitted on noise-free interpolants: Simulate takes no noise
	fwd   []*ops.MLP
	bwd   []*ops.MLP
}

// CheckBridgeTimes validates observed times (at least two, finite, strictly increasing) and the
// diffusion ε (finite, > 0).
func CheckBridgeTimes(times []float64, eps float64) error {
	if len(times) < 2 {
		return fmt.Errorf("bridge: %d observed times: need at least two marginals", len(times))
	}
	for i, t := range times {
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return fmt.Errorf("bridge: time %d = %g: must be finite", i, t)
		}
		if i > 0 && !(t > times[i-1]) {
			return fmt.Errorf("bridge: times must be strictly increasing: t_%d = %g follows t_%d = %g", i, t, i-1, times[i-1])
		}
	}
	if !finitePositive(eps) {
		return fmt.Errorf("bridge: diffusion ε = %g: must be a finite number > 0", eps)
	}
	return nil
}

// NewBridge validates and builds a bridge: M+1 times, M forward and M backward networks of one
// dimension. Either list may be nil (a bridge fitted in one direction simulates only that way);
// a non-nil list has one network per interval.
func NewBridge(times []float64, eps float64, fwd, bwd []*ops.MLP) (*Bridge, error) {
	if err := CheckBridgeTimes(times, eps); err != nil {
		return nil, err
	}
	m := len(times) - 1
	if fwd == nil && bwd == nil {
		return nil, fmt.Errorf("bridge: no networks: need the forward or the backward ones")
	}
	d := 0
	for _, set := range []struct {
		name string
		nets []*ops.MLP
	}{{"forward", fwd}, {"backward", bwd}} {
		if set.nets == nil {
			continue
		}
		if len(set.nets) != m {
			return nil, fmt.Errorf("bridge: %d %s networks for %d intervals", len(set.nets), set.name, m)
		}
		for k, n := range set.nets {
			if n == nil {
				return nil, fmt.Errorf("bridge: %s network %d is nil", set.name, k)
			}
			if d == 0 {
				d = n.Dim()
			}
			if n.Dim() != d {
				return nil, fmt.Errorf("bridge: %s network %d has dimension %d, another has %d", set.name, k, n.Dim(), d)
			}
		}
	}
	return &Bridge{times: slices.Clone(times), eps: eps, fwd: slices.Clone(fwd), bwd: slices.Clone(bwd)}, nil
}

// NewFlowBridge builds the flow-matching counterpart of a bridge: networks fitted on noise-free
// interpolants (train.BridgeConfig.Flow), which Simulate integrates without noise — the ODE
// x' = (1 − h/r) x + (h/r) D. eps then only sets the networks' noise levels √(ε r).
func NewFlowBridge(times []float64, eps float64, fwd, bwd []*ops.MLP) (*Bridge, error) {
	b, err := NewBridge(times, eps, fwd, bwd)
	if err != nil {
		return nil, err
	}
	b.flow = true
	return b, nil
}

// Flow reports whether the bridge is a flow-matching one (NewFlowBridge): deterministic paths.
func (b *Bridge) Flow() bool { return b.flow }

// Times are the observed times t_0 < … < t_M (a copy).
func (b *Bridge) Times() []float64 { return slices.Clone(b.times) }

// Eps is the diffusion ε of the reference Brownian motion.
func (b *Bridge) Eps() float64 { return b.eps }

// Intervals is M, the number of intervals.
func (b *Bridge) Intervals() int { return len(b.times) - 1 }

// Dim is the data dimension.
func (b *Bridge) Dim() int {
	if b.fwd != nil {
		return b.fwd[0].Dim()
	}
	return b.bwd[0].Dim()
}

// Forward is the forward network of interval k (nil when the bridge has none).
func (b *Bridge) Forward(k int) *ops.MLP {
	if b.fwd == nil {
		return nil
	}
	return b.fwd[k]
}

// Backward is the backward network of interval k (nil when the bridge has none).
func (b *Bridge) Backward(k int) *ops.MLP {
	if b.bwd == nil {
		return nil
	}
	return b.bwd[k]
}

// BridgeSimConfig configures Bridge.Simulate.
type BridgeSimConfig struct {
	// From and To are times in [t_0, t_M]: From < To simulates forward (the Fwd networks), From >
	// To backward (the Bwd networks); any time in between may be a start or an end (a held-out
	// time, say), not only an observed one.
	From, To float64
	// Steps is the number of steps over a whole interval [t_k, t_{k+1}] (≥ 1); a part of an
	// interval gets ⌈Steps × its fraction of the interval⌉ steps of equal size.
	Steps int
	// Seed and FirstChain select the noise (row i is chain FirstChain + i): step i of the run
	// draws its normals at Site(i, PurposeDiffusion).
	Seed       uint64
	FirstChain uint64
	// Trajectory keeps the state after every step in Result.Trace (the times in Result.BridgeTimes).
	Trajectory bool
	Progress   Progress
}

// BridgeStep is one step of Simulate: from time T0 to T1 on interval K, toward the interval's
// end End (t_{K+1} forward, t_K backward).
type BridgeStep struct {
	K       int
	T0, T1  float64
	End     float64
	Forward bool
}

// Grid returns the steps Simulate takes for cfg, in running order (validated first).
func (b *Bridge) Grid(cfg BridgeSimConfig) ([]BridgeStep, error) {
	t0, tm := b.times[0], b.times[len(b.times)-1]
	switch {
	case !(cfg.From >= t0 && cfg.From <= tm):
		return nil, fmt.Errorf("bridge: from = %g: must be a time in [%g, %g]", cfg.From, t0, tm)
	case !(cfg.To >= t0 && cfg.To <= tm):
		return nil, fmt.Errorf("bridge: to = %g: must be a time in [%g, %g]", cfg.To, t0, tm)
	case cfg.Steps < 1:
		return nil, fmt.Errorf("bridge: steps = %d: must be ≥ 1 per interval", cfg.Steps)
	}
	fwd := cfg.To > cfg.From
	if fwd && b.fwd == nil {
		return nil, fmt.Errorf("bridge: simulating forward (%g → %g) needs the forward networks; this bridge has only backward ones", cfg.From, cfg.To)
	}
	if cfg.To < cfg.From && b.bwd == nil {
		return nil, fmt.Errorf("bridge: simulating backward (%g → %g) needs the backward networks; this bridge has only forward ones", cfg.From, cfg.To)
	}
	lo, hi := min(cfg.From, cfg.To), max(cfg.From, cfg.To)
	var grid []BridgeStep
	for j := 0; j < b.Intervals(); j++ {
		k := j
		if !fwd {
			k = b.Intervals() - 1 - j
		}
		a, e := max(lo, b.times[k]), min(hi, b.times[k+1])
		if !(e > a) {
			continue
		}
		n := max(1, int(math.Ceil(float64(cfg.Steps)*(e-a)/(b.times[k+1]-b.times[k])-1e-9)))
		at := func(i int) float64 { // the i-th of n+1 equally spaced points of [a, e], ends exact
			if i == n {
				return e
			}
			return a + (e-a)*float64(i)/float64(n)
		}
		for i := 0; i < n; i++ {
			if fwd {
				grid = append(grid, BridgeStep{K: k, T0: at(i), T1: at(i + 1), End: b.times[k+1], Forward: true})
			} else {
				grid = append(grid, BridgeStep{K: k, T0: at(n - i), T1: at(n - i - 1), End: b.times[k]})
			}
		}
	}
	return grid, nil
}

// BridgeStepCoeffs are the coefficients of one bridge step from τ to τ' with r = |end − τ| left
// and h = |τ' − τ|: given the endpoint prediction D = E[X_end | X_τ = x], the exact transition
// of the Brownian bridge from (τ, x) to (end, D),
//
//	x' = (1 − h/r) x + (h/r) D + √(ε h (r − h)/r) ξ,
//
// which is Euler–Maruyama's (x + h(D − x)/r + √(ε h) ξ) to first order in h and lands on D with
// no noise when the step reaches the end (h = r).
func BridgeStepCoeffs(eps, r, h float64) (cx, cd, noise float64) {
	f := h / r
	return 1 - f, f, math.Sqrt(max(eps*h*(r-h)/r, 0))
}

// Simulate runs the bridge from cfg.From to cfg.To, starting at the rows of x0 (N, d) on the
// backend's device, with the bridge integrator of BridgeStepCoeffs; the result holds the final
// states (and, with Trajectory, every state). The networks run through b.MLPScore.
func (br *Bridge) Simulate(b ops.Backend, x0 *tensor.Tensor, cfg BridgeSimConfig) (*Result, error) {
	const op = "bridge simulate"
	if br == nil {
		return nil, fmt.Errorf("%s: nil bridge", op)
	}
	if b == nil {
		return nil, fmt.Errorf("%s: nil backend", op)
	}
	if x0 == nil || x0.Closed() {
		return nil, fmt.Errorf("%s: initial state is nil or closed", op)
	}
	if x0.Device() != b.Device() {
		return nil, fmt.Errorf("%s: initial state is on %s, the backend runs on %s", op, x0.Device().Name(), b.Device().Name())
	}
	if x0.Rank() != 2 || x0.Dim(1) != br.Dim() {
		return nil, fmt.Errorf("%s: initial state has shape %v: want (chains, %d)", op, x0.Shape(), br.Dim())
	}
	n, d := x0.Dim(0), br.Dim()
	if err := checkChains(op, n, cfg.FirstChain); err != nil {
		return nil, err
	}
	grid, err := br.Grid(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if uint64(len(grid)) > MaxSteps {
		return nil, fmt.Errorf("%s: %d steps: at most %d", op, len(grid), uint64(MaxSteps))
	}
	dev, dt := b.Device(), x0.DType()
	run, err := newSamplesRun(op, dev, dt, n, d)
	if err != nil {
		return nil, err
	}
	defer run.release()
	res, x := run.res, run.res.Samples
	if err := x.CopyFrom(x0); err != nil {
		return nil, fmt.Errorf("%s: copy the initial state: %w", op, err)
	}
	den, err := tensor.New(dev, dt, n, d)
	if err != nil {
		return nil, fmt.Errorf("%s: allocate the endpoint prediction (%d, %d): %w", op, n, d, err)
	}
	defer den.Close()
	nt := newNaNTracker(n)
	var tr *tracer
	if cfg.Trajectory {
		if tr, err = newTracer(dev, dt, len(grid)+1, n, d); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		res.Trace = tr.t
		res.BridgeTimes = append(res.BridgeTimes, cfg.From)
		if err := keepAndCheck(tr, nt, x, 0); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	prog := newProgress(cfg.Progress, int64(len(grid)), dev)
	for i, s := range grid {
		net := br.bwd
		if s.Forward {
			net = br.fwd
		}
		r, h := math.Abs(s.End-s.T0), math.Abs(s.T1-s.T0)
		if err := b.MLPScore(ops.ScoreOutputs{Denoiser: den}, x, net[s.K], ops.AtSigma(math.Sqrt(br.eps*r))); err != nil {
			return nil, fmt.Errorf("%s: step %d (τ = %g): endpoint prediction: %w", op, i, s.T0, err)
		}
		res.ScoreEvals += int64(n)
		res.ScoreCalls++
		cx, cd, noise := BridgeStepCoeffs(br.eps, r, h)
		if br.flow {
			noise = 0
		}
		terms := []ops.Term{{T: x, C: cx}, {T: den, C: cd}}
		if err := b.Combine(x, terms, noise, drawAt(cfg.Seed, i, PurposeDiffusion, cfg.FirstChain)); err != nil {
			return nil, fmt.Errorf("%s: step %d (τ = %g): %w", op, i, s.T0, err)
		}
		if tr != nil {
			res.BridgeTimes = append(res.BridgeTimes, s.T1)
			if err := keepAndCheck(tr, nt, x, i+1); err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
		}
		if err := prog.step(int64(i + 1)); err != nil {
			return nil, fmt.Errorf("%s: step %d (τ = %g): %w", op, i, s.T0, err)
		}
	}
	if err := run.checkFinal(op, nt, tr, len(grid)); err != nil {
		return nil, err
	}
	return run.keep()
}
