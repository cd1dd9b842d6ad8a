package solvers

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// SGDWORConfig configures SGDWOR. Beta, StepSize and Steps must be given; everything else has a
// default.
type SGDWORConfig struct {
	// Beta is β ∈ (0, 1) of the learning-rate schedule u_t = (1 + t)^{−β}.
	Beta float64
	// StepSize is the time step h > 0 of the discretisation (t_k = k h); it should be much smaller
	// than the epoch τ.
	StepSize float64
	// Sigma is the noise scale σ ≥ 0 (0: the gradient flow with the schedule, no noise is drawn).
	Sigma float64
	// Steps is the number of steps (≥ 1): the run covers [0, Steps·h].
	Steps int
	// Epoch is the epoch length τ in time units: a multiple of h (within a relative 1e−9), at
	// least h. The noise is then the epoched Brownian motion, a Brownian bridge pinned to 0 at
	// every multiple of τ (sampling without replacement: the noise of an epoch sums to zero).
	// 0 drives the same flow by plain Brownian motion, for comparison.
	Epoch float64
	// Seed keys the random stream; FirstChain is the chain index of row 0 of x0 (see SGDWOR).
	Seed       uint64
	FirstChain uint64
	// Thin > 0 keeps the state every Thin steps in Trace, shape (Steps/Thin + 1, N, d): row 0 the
	// initial state, row k the state at time k·Thin·h. 0 keeps no trace.
	Thin int
	// Escape, when set, records every chain's first crossing of a threshold (SGDWORResult.Escape).
	Escape *EscapeSpec
	// NoiseBlock bounds the number of noise values generated in one backend call (default
	// DefaultNoiseBlock), as in FPGDConfig.
	NoiseBlock int
	// Progress, when set, receives the chain-steps done out of N·Steps (see Progress).
	Progress Progress
}

// EpochSteps is the epoch in steps, τ/h rounded to the nearest integer (0 without epochs).
func (cfg SGDWORConfig) EpochSteps() int {
	if cfg.Epoch == 0 || !(cfg.StepSize > 0) {
		return 0
	}
	return int(math.Round(cfg.Epoch / cfg.StepSize))
}

// SGDWORRate is the learning-rate schedule u_t = (1 + t)^{−β}.
func SGDWORRate(beta, t float64) float64 { return math.Pow(1+t, -beta) }

// SGDWORIntegratedRate is ∫_0^t u_s ds = ((1 + t)^{1−β} − 1)/(1 − β): on f = ½ a θ² without
// noise the flow is θ_t = θ_0 exp(−a ∫_0^t u).
func SGDWORIntegratedRate(beta, t float64) float64 {
	return math.Expm1((1-beta)*math.Log1p(t)) / (1 - beta)
}

// validate checks cfg and fills in the defaults.
func (cfg SGDWORConfig) validate() (SGDWORConfig, error) {
	if !(cfg.Beta > 0 && cfg.Beta < 1) {
		return cfg, fmt.Errorf("beta %g: must be in (0, 1)", cfg.Beta)
	}
	if !finitePositive(cfg.StepSize) {
		return cfg, fmt.Errorf("step size h = %g: must be a finite number > 0", cfg.StepSize)
	}
	if !(cfg.Sigma >= 0) || math.IsInf(cfg.Sigma, 0) {
		return cfg, fmt.Errorf("sigma %g: must be a finite number ≥ 0", cfg.Sigma)
	}
	if cfg.Steps < 1 {
		return cfg, fmt.Errorf("steps = %d: need at least one step", cfg.Steps)
	}
	if uint64(cfg.Steps) > MaxSteps {
		return cfg, fmt.Errorf("steps = %d: at most %d", cfg.Steps, uint64(MaxSteps))
	}
	if cfg.Epoch != 0 {
		tau, h := cfg.Epoch, cfg.StepSize
		if !finitePositive(tau) {
			return cfg, fmt.Errorf("epoch τ = %g: must be a finite number > 0 (0: plain Brownian noise)", tau)
		}
		if tau < h*(1-1e-9) {
			return cfg, fmt.Errorf("epoch τ = %g is shorter than the step h = %g", tau, h)
		}
		r := tau / h
		if math.Abs(r-math.Round(r)) > 1e-9*r {
			return cfg, fmt.Errorf("epoch τ = %g is not a multiple of the step h = %g (τ/h = %.12g)", tau, h, r)
		}
		if r > math.MaxInt32 {
			return cfg, fmt.Errorf("epoch τ = %g: τ/h = %.0f steps: at most 2^31 − 1", tau, r)
		}
	}
	spec := ops.BrownianSpec{Horizon: 1, Epoch: cfg.EpochSteps()}
	if m := spec.Normals(cfg.Steps); m > ops.MaxBrownianNormals {
		return cfg, fmt.Errorf("steps = %d with an epoch of %d steps: the noise paths need %d normals each, at most 2^32",
			cfg.Steps, spec.Epoch, m)
	}
	if cfg.Thin < 0 {
		return cfg, fmt.Errorf("thin = %d: must be ≥ 0 (0 keeps no trace)", cfg.Thin)
	}
	if cfg.Thin > cfg.Steps {
		return cfg, fmt.Errorf("thin = %d > steps = %d: the trace would hold only the initial state", cfg.Thin, cfg.Steps)
	}
	if cfg.NoiseBlock == 0 {
		cfg.NoiseBlock = DefaultNoiseBlock
	}
	if cfg.NoiseBlock < 0 {
		return cfg, fmt.Errorf("noise block %d: must be ≥ 0 (0: default)", cfg.NoiseBlock)
	}
	return cfg, nil
}

// SGDWORResult is what SGDWOR returns (DescentResult; the time of trace row k is
// TraceSteps[k]·h). Tensors live on the backend's device; Close frees them.
type SGDWORResult struct {
	DescentResult
}

// Close frees the result's tensors.
func (r *SGDWORResult) Close() error {
	if r == nil {
		return nil
	}
	return r.DescentResult.Close()
}

// SGDWOR runs N chains of the continuous-time model of SGD without replacement
// (docs/math.md §4.4) from the rows of x0 (N, d) on the objective f:
//
//	dθ_t = −u_t ∇f(θ_t) dt + σ u_t dB̃_t,   u_t = (1 + t)^{−β},
//
// with B̃ the epoched Brownian motion of epoch τ (a Brownian bridge pinned to 0 at every multiple
// of τ: the noise of one epoch sums to zero, as the gradient errors of one pass over the data do
// when the samples are drawn without replacement), one path per (chain, coordinate), independent
// across both. With Epoch = 0, B̃ is plain Brownian motion (the same flow with independent noise).
// It is discretised with the Euler step of the Young integral on t_k = k h:
//
//	θ_{k+1} = θ_k − h u_{t_k} ∇f(θ_k) + σ u_{t_k} ΔB̃_k,   k = 0 … Steps−1,
//
// ΔB̃_k = B̃(t_{k+1}) − B̃(t_k) the increments of ops.Backend.Brownian (Increments, Epoch τ/h
// steps), generated on unit steps and multiplied by √h: with epochs Cov(ΔB̃_k, ΔB̃_l) =
// h(δ_kl − h/τ) for k, l in one epoch and 0 across epochs, so Σ_{k in an epoch} ΔB̃_k = 0 to
// round-off; without, ΔB̃_k are independent N(0, h). When τ does not divide the run, the last epoch
// is the start of a full bridge (see ops.BrownianSpec).
//
// Randomness. The path of coordinate j of chain c (c = FirstChain + row) is chain c·d + j of the
// draw (Seed, Site(0, PurposeBrownian)), drawn in x0's dtype: a chain's noise depends only on
// (Seed, c, j, Steps, τ/h), so a run split into batches of chains (FirstChain) reproduces the
// single run exactly, and so does any NoiseBlock. The increments do not depend on h or σ given
// τ/h, and a shorter run with the same τ/h sees the first increments of a longer one.
//
// Cost and memory as FPGD's: the noise is generated on the backend in blocks of chains bounded by
// NoiseBlock elements and copied to the host; the recursion runs on the host in float64, in
// parallel over chains: N·Steps gradient evaluations. The final states are rounded to x0's dtype.
//
// Checks: bad input (β ∉ (0, 1), h ≤ 0, σ < 0, Steps < 1, τ < h or not a multiple of h, a
// non-finite start, a dimension mismatch) is an error naming it; a state that becomes NaN or ±Inf
// later is reported (SGDWORResult.NaN) and the chain keeps running as it is.
func SGDWOR(b ops.Backend, f Objective, x0 *tensor.Tensor, cfg SGDWORConfig) (*SGDWORResult, error) {
	res, err := sgdwor(b, f, x0, cfg)
	if err != nil {
		return nil, fmt.Errorf("sgdwor: %w", err)
	}
	return res, nil
}

func sgdwor(b ops.Backend, f Objective, x0 *tensor.Tensor, cfg SGDWORConfig) (*SGDWORResult, error) {
	n, d, err := checkDescentStart(b, f, x0)
	if err != nil {
		return nil, err
	}
	if cfg, err = cfg.validate(); err != nil {
		return nil, err
	}
	if err := checkDescentChains(n, d, cfg.FirstChain, cfg.Escape); err != nil {
		return nil, err
	}
	x, err := x0.Float64s()
	if err != nil {
		return nil, fmt.Errorf("read the initial state: %w", err)
	}
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("initial state: chain %d, coordinate %d is %g: must be finite", i/d, i%d, v)
		}
	}
	gain := make([]float64, cfg.Steps)
	for k := range gain {
		gain[k] = SGDWORRate(cfg.Beta, float64(k)*cfg.StepSize)
	}
	noise := &brownianSource{b: b, cfg: cfg, d: d, dt: x0.DType()}
	defer noise.close()
	out, err := descend(b, f, x0.DType(), x, n, d, descentSpec{steps: cfg.Steps, thin: cfg.Thin,
		h: cfg.StepSize, sigma: cfg.Sigma, scale: math.Sqrt(cfg.StepSize), gain: gain, escape: cfg.Escape,
		noiseBlock: cfg.NoiseBlock, progress: cfg.Progress}, noise)
	if err != nil {
		return nil, err
	}
	return &SGDWORResult{DescentResult: out.result()}, nil
}

// brownianSource generates the unit-step increments of the (epoched) Brownian paths of blocks of
// chains.
type brownianSource struct {
	b   ops.Backend
	cfg SGDWORConfig
	d   int
	dt  tensor.DType
	buf *tensor.Tensor // (block·d, Steps)
}

func (s *brownianSource) close() { closeAll(s.buf) }

// generate returns the increments of chains [c0, c1) on the host: row (i−c0)·d + j is the path of
// chain i, coordinate j, with unit variance per step (Horizon = Steps).
func (s *brownianSource) generate(c0, c1 int) ([]float64, error) {
	cfg, paths := s.cfg, (c1-c0)*s.d
	buf, err := noiseBuffer(&s.buf, s.b.Device(), s.dt, paths, cfg.Steps, "noise")
	if err != nil {
		return nil, err
	}
	draw := ops.Draw{Seed: cfg.Seed, Site: Site(0, PurposeBrownian), FirstChain: (cfg.FirstChain + uint64(c0)) * uint64(s.d)}
	spec := ops.BrownianSpec{Horizon: float64(cfg.Steps), Epoch: cfg.EpochSteps(), Increments: true}
	if err := s.b.Brownian(buf, spec, draw); err != nil {
		return nil, err
	}
	v, err := buf.Float64s()
	if err != nil {
		return nil, fmt.Errorf("copy the noise to the host: %w", err)
	}
	return v, nil
}

// noiseBuffer returns a (paths, steps) view of *buf on dev, (re)allocating *buf when it holds
// fewer rows; what names the buffer in errors.
func noiseBuffer(buf **tensor.Tensor, dev tensor.Device, dt tensor.DType, paths, steps int, what string) (*tensor.Tensor, error) {
	if *buf == nil || (*buf).Dim(0) < paths {
		closeAll(*buf)
		*buf = nil
		t, err := tensor.New(dev, dt, paths, steps)
		if err != nil {
			return nil, fmt.Errorf("allocate the %s (%d paths, %d steps) %v on %s: %w", what, paths, steps, dt, dev.Name(), err)
		}
		*buf = t
	}
	if (*buf).Dim(0) == paths {
		return *buf, nil
	}
	v, err := (*buf).View(0, paths, steps)
	if err != nil {
		return nil, fmt.Errorf("%s block: %w", what, err)
	}
	return v, nil
}

// SGDWORCheck validates cfg as SGDWOR does and returns it with the defaults filled in: for
// callers (the command) that check their input before a run.
func SGDWORCheck(cfg SGDWORConfig) (SGDWORConfig, error) { return cfg.validate() }
