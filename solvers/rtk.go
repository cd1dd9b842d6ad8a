package solvers

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// Defaults of RTKConfig and DDPMConfig.
const (
	// DefaultHorizon is the end time T of the forward OU process. The chain starts from
	// N(0, I) instead of p_T, and the reverse kernels carry that error to the samples without
	// growing it (data processing). For p0 = N(μ, Σ), p_T = N(aμ, I + a²(Σ − I)) with a = e^{−T},
	// and KL(p_T ‖ N(0, I)) = ½ a²‖μ‖² + O(a⁴) (the covariance terms cancel at order a²); for a
	// mixture, by convexity, at most ½ e^{−2T} Σ_k w_k ‖μ_k‖². At T = 5 (e^{−2T} = 4.5·10⁻⁵) a
	// target with means up to ‖μ‖ = 10 starts within KL 2.3·10⁻³, total variation ≤ 0.034
	// (Pinsker), while T = 3 would leave ‖μ‖ = 5 at TV ≤ 0.12.
	DefaultHorizon = 5.0
	// DefaultSegments is the number of equal RTK segments of [0, T], as in the Gaussian-mixture
	// experiments of Huang et al. (2024) (η = 1 at T = 5).
	DefaultSegments = 5
	// DefaultMALAInnerSteps and DefaultULDInnerSteps are the inner steps per segment. MALA
	// converges in fewer: with the posterior-mean start its samples stop improving beyond ≈ 20.
	DefaultMALAInnerSteps = 20
	DefaultULDInnerSteps  = 80
	// DefaultMALAStepScale and DefaultULDStepScale are the constants c of the inner step-size rule
	// (see RTKConfig.InnerStepScale). MALA: h = c·d^{−1/3}·σ_k² with c = 1 accepts ≈ 0.7–0.8 of
	// the moves on Gaussian-mixture sub-targets in d = 2…10. ULD: h = c·σ_k with c = 0.25.
	DefaultMALAStepScale = 1.0
	DefaultULDStepScale  = 0.25
	// DefaultRTKFriction is the ULD friction in the segment's time unit σ_k (γ_k = 2/σ_k): critical
	// damping of the sub-target's narrowest direction.
	DefaultRTKFriction = 2.0
)

// Where RTK starts each segment's inner chain (RTKConfig.InnerInit).
const (
	// InitMean (the default) starts it at the posterior mean, by Tweedie's formula for
	// X_{t_{k+1}} = e^{−η} X_{t_k} + sqrt(1 − e^{−2η}) ξ:
	//
	//	E[X_{t_k} | X_{t_{k+1}} = x'] = e^{η} (x' + (1 − e^{−2η}) ∇log p_{t_{k+1}}(x'))
	//
	// at one extra score evaluation per segment (at t_{k+1}, with no log p). Where p̃ is
	// multimodal (separated modes, η not small) the inner chain mostly stays in the basin it
	// starts in; the posterior mean starts it where the modes are weighted by their posterior
	// probabilities, and in high dimension it also starts it at the right distance from the
	// modes. Measured on the mixtures of the tests (5 segments, 5000–10000 chains): mode-weight
	// error 0.01–0.02 with InitMean against 0.03 (d = 2) and 0.5 (d = 10: almost every chain
	// ends in the widest component) with InitScaled.
	InitMean = "mean"
	// InitScaled starts it at e^{η} x', the maximiser of the kernel factor (docs/math.md §3): free,
	// but see InitMean.
	InitScaled = "scaled"
	// InitDDPM starts it at one exponential-integrator (DDPM) step from x':
	// e^{η} x' + 2(e^{η} − 1) ∇log p_{t_{k+1}}(x') + sqrt(e^{2η} − 1) ξ (Site(j·InnerSteps,
	// PurposeSegmentInit)), at one extra score evaluation per segment.
	InitDDPM = "ddpm"
)

// RTKConfig configures RTK. Inner is required; every other field has a default.
type RTKConfig struct {
	// Inner is the sampler of each segment's sub-target: "mala" (RTK-MALA) or "uld" (RTK-ULD).
	Inner string
	// Grid is the segment grid 0 ≤ t_0 < t_1 < … < t_S, strictly increasing. Default: Segments
	// equal segments of [0, Horizon]. A grid starting at t_0 = 0 needs a target with a density at
	// t = 0 (a Gaussian mixture). An empirical data set has none: start its grid at a small
	// t_0 > 0 (e.g. 10⁻³); the samples are then those of p_{t_0}, the data shrunk by e^{−t_0} and
	// blurred by N(0, 1 − e^{−2 t_0}).
	Grid []float64
	// Horizon is T (default DefaultHorizon) and Segments the number of equal segments (default
	// DefaultSegments); both are used only when Grid is nil. More segments (smaller η) make every
	// sub-target closer to log-concave: on well-separated modes 10 segments remove most of the
	// mode-weight error that 5 leave (see InitMean).
	Horizon  float64
	Segments int
	// InnerSteps is the number of inner steps per segment (default DefaultMALAInnerSteps or
	// DefaultULDInnerSteps).
	InnerSteps int
	// InnerStepScale is the constant c of the inner step-size rule (default DefaultMALAStepScale or
	// DefaultULDStepScale). With η = t_{k+1} − t_k, the sub-target of segment k has precision at
	// most
	//
	//	1/σ_k² = 1/(e^{2η} − 1) + 1/c_min(t_k)
	//
	// where 1/(e^{2η} − 1) = e^{−2η}/(1 − e^{−2η}) is the factor's and c_min(t) the smallest
	// variance of a component of p_t: a_t² λ_min + s_t for a Gaussian mixture (λ_min the smallest
	// eigenvalue of its covariances, a_t = e^{−t}, s_t = 1 − e^{−2t}), s_t·min_q m_q for an empirical
	// data set. So σ_k is the sub-target's smallest length scale — for a one-component target
	// exactly the standard deviation of its narrowest direction. The rule is
	//
	//	MALA  h_k = c·d^{−1/3}·σ_k²               (the d^{−1/3} of MALA's optimal scaling)
	//	ULD   h_k = c·σ_k,  γ_k = Friction/σ_k,  u = 1
	//
	// ULD's choice is scale free: in the time unit σ_k the narrowest direction oscillates at
	// frequency 1, Friction = 2 damps it critically, and c is the step in that unit. The
	// frozen-gradient ULD step is biased at O(h): on a Gaussian its stationary variance exceeds
	// the target's by ≈ h L u/(2γ) relative (L the curvature), i.e. ≈ c/(2·Friction) ≈ 6 % in the
	// narrowest direction with the defaults, less in wider ones.
	InnerStepScale float64
	// InnerStepSizes, when not nil, overrides the rule: InnerStepSizes[k] is h of segment
	// [t_k, t_{k+1}] (one per segment, each > 0). ULD keeps γ_k = Friction/σ_k.
	InnerStepSizes []float64
	// InnerInit is where each segment's inner chain starts: InitMean (default), InitScaled or
	// InitDDPM.
	InnerInit string
	// Friction is the ULD friction in the segment's time unit (default DefaultRTKFriction).
	Friction float64
	// KeepPath keeps x_k at every grid time in Result.Trace, shape (S+1, N, d): row k is x_k at
	// time t_k (row S is the N(0, I) start, row 0 the samples), TraceSteps[k] = k.
	KeepPath bool
	// Seed keys the random stream and FirstChain is the chain index of row 0 (see Site).
	Seed       uint64
	FirstChain uint64
	// Init is the start x_S at t_S = T: InitExact (default) the exact law of the target noised to
	// T (see SampleNoised); InitPrior N(0, I), the paper's start, which biases the samples by
	// about |μ| e^{−T}.
	Init string
	// StepByStep runs the inner samplers one op per step even where the fused path applies (see
	// LangevinConfig.StepByStep): by default each segment's inner chain on a Gaussian mixture with
	// isotropic or diagonal covariances is one ops.Backend.GMMChains call.
	StepByStep bool
	// Progress, when set, receives the inner steps done out of Segments·InnerSteps (see Progress).
	Progress Progress
}

// RTK samples the target t by reverse transition kernels (docs/math.md §3; Huang, Zou, Dong,
// Zhang, Ma, Zhang, "Reverse transition kernel: a flexible framework to accelerate diffusion
// inference", NeurIPS 2024). The forward process is the OU process dX = −X dt + √2 dB, X_0 ~ p0 =
// t, with marginals p_t = t noised at VP time t (ops.AtTime). Starting from x_S ~ p_{t_S} exactly
// (cfg.Init = InitExact, the default) or from N(0, I) (InitPrior, the paper's start), for each
// segment k = S−1, …, 0 with η = t_{k+1} − t_k and x' = x_{k+1}, it samples
//
//	x_k ~ p̃(x) ∝ p_{t_k}(x) · exp(−‖x' − e^{−η} x‖² / (2(1 − e^{−2η})))
//
// — the exact conditional law of X_{t_k} given X_{t_{k+1}} = x' — by InnerSteps steps of MALA
// (cfg.Inner = "mala") or ULD ("uld") on p̃, whose log-density and score are the target's at t_k
// (ops.NoNoise at t_k = 0) plus the Gaussian factor (ops.Backend.AddGaussianFactor with center
// x', a = e^{−η}, v = 1 − e^{−2η}):
//
//	log p̃(x) = log p_{t_k}(x) − ‖x' − e^{−η}x‖² / (2(1 − e^{−2η}))
//	∇log p̃(x) = ∇log p_{t_k}(x) + e^{−η}(x' − e^{−η}x) / (1 − e^{−2η})
//
// The inner chain starts where cfg.InnerInit says (default: the posterior mean, see InitMean);
// ULD starts with velocity v ~ N(0, I), the stationary law of the velocity at u = 1
// (Site(j·InnerSteps, PurposeVelocity) for the j-th segment processed).
//
// n chains are sampled in dtype on b's device; row i is chain cfg.FirstChain + i. Cost per chain
// and segment: InnerSteps score evaluations for RTK-ULD, InnerSteps + 1 fused log p + score
// evaluations for RTK-MALA (one at the inner chain's start), plus one score evaluation for the
// InitMean and InitDDPM starts. Result.Accept holds RTK-MALA's per-chain acceptance over all inner
// steps; Result.SegmentStepSizes the inner step size of every segment.
func RTK(b ops.Backend, t target.Target, n int, dtype tensor.DType, cfg RTKConfig) (*Result, error) {
	op := "rtk"
	if cfg.Inner != "" {
		op = "rtk-" + cfg.Inner
	}
	if b == nil {
		return nil, fmt.Errorf("%s: nil backend", op)
	}
	if t == nil {
		return nil, fmt.Errorf("%s: nil target", op)
	}
	cfg, err := cfg.validate(n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	grid := cfg.Grid
	S, d, dev := len(grid)-1, t.Dim(), b.Device()
	run, err := newSamplesRun(op, dev, dtype, n, d)
	if err != nil {
		return nil, err
	}
	defer run.release()
	res, x := run.res, run.res.Samples
	center, err := tensor.New(dev, dtype, n, d)
	if err != nil {
		return nil, fmt.Errorf("%s: allocate the segment centers: %w", op, err)
	}
	defer center.Close()
	c, err := newChains(b, cfg.Inner, x, cfg.Seed, cfg.FirstChain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer c.close()
	c.stepByStep = cfg.StepByStep
	c.ev = &evaluator{b: b, t: t, ev: &res.Evals}
	c.prog = newProgress(cfg.Progress, int64(S)*int64(cfg.InnerSteps), dev)
	for k := 0; k < S; k++ {
		if err := checkCapability(op, b, t, cfg.Inner, c, rtkNoise(grid[k]), "rtk-uld"); err != nil {
			if grid[k] == 0 {
				return nil, fmt.Errorf("%w (the grid starts at t_0 = 0, where the target is evaluated without noise: start it at a small t_0 > 0)", err)
			}
			return nil, err
		}
	}
	steps, scales := make([]float64, S), make([]float64, S)
	for k := range steps {
		if scales[k], err = segmentScale(t, grid[k], grid[k+1]-grid[k]); err != nil {
			return nil, fmt.Errorf("%s: segment %d [%g, %g]: %w", op, k, grid[k], grid[k+1], err)
		}
		steps[k] = cfg.rule(scales[k], d)
		if cfg.InnerStepSizes != nil {
			steps[k] = cfg.InnerStepSizes[k]
		}
	}
	res.SegmentStepSizes = steps

	a, s := ouScaleVar(grid[S])
	if err := noisedStart(b, TargetDenoiser(t), cfg.Init, x, a, s, 1, cfg.Seed, cfg.FirstChain); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	nt := newNaNTracker(n)
	var path *tensor.Tensor
	if cfg.KeepPath {
		if path, err = tensor.New(dev, dtype, S+1, n, d); err != nil {
			return nil, fmt.Errorf("%s: allocate the path (%d, %d, %d): %w", op, S+1, n, d, err)
		}
		res.Trace = path
	}
	// keep writes x_k into row k of the path (time order: rows are written from the top) and
	// checks it for NaN.
	keep := func(k, segmentsDone int) error {
		if path == nil {
			return nil
		}
		v, err := path.View(k*n*d, n, d)
		if err != nil {
			return err
		}
		if err := v.CopyFrom(x); err != nil {
			return err
		}
		return nt.check(x, segmentsDone)
	}
	if err := keep(S, 0); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	for j := 0; j < S; j++ {
		k := S - 1 - j
		eta := grid[k+1] - grid[k]
		base := j * cfg.InnerSteps
		if err := center.CopyFrom(x); err != nil {
			return nil, fmt.Errorf("%s: segment %d: %w", op, k, err)
		}
		if err := rtkStart(b, c, cfg.InnerInit, center, grid[k+1], eta, drawAt(cfg.Seed, base, PurposeSegmentInit, cfg.FirstChain)); err != nil {
			return nil, fmt.Errorf("%s: segment %d: start the inner chain: %w", op, k, err)
		}
		c.ev.noise, c.ev.center = rtkNoise(grid[k]), center
		c.ev.a, c.ev.v = math.Exp(-eta), -math.Expm1(-2*eta)
		var uld ops.ULDParams
		if cfg.Inner == MethodULD {
			uld = ops.ULDParams{Gamma: cfg.Friction / scales[k], InvMass: 1}
			if err := c.initVelocity(base, 1); err != nil {
				return nil, fmt.Errorf("%s: segment %d: initial velocity: %w", op, k, err)
			}
		}
		if err := c.start(); err != nil {
			return nil, fmt.Errorf("%s: segment %d: %w", op, k, err)
		}
		if err := c.run(base, base+cfg.InnerSteps, steps[k], nil, uld); err != nil {
			return nil, fmt.Errorf("%s: segment %d, inner %w", op, k, err)
		}
		if err := keep(k, j+1); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	if err := run.checkFinal(op, nt, nil, S); err != nil {
		return nil, err
	}
	res.StepSize = steps[0]
	if path != nil {
		res.TraceSteps = make([]int, S+1)
		for k := range res.TraceSteps {
			res.TraceSteps[k] = k
		}
	}
	if cfg.Inner == MethodMALA {
		acc, err := c.acc.Float64s()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		res.Accept = make([]float64, n)
		for i, a := range acc {
			res.Accept[i] = a / float64(S*cfg.InnerSteps)
		}
	}
	return run.keep()
}

// rtkStart sets the inner chain's state c.x from the segment's center x' (time t' = t_{k+1},
// segment length η) as init says; draw is used by InitDDPM only.
func rtkStart(b ops.Backend, c *chains, init string, center *tensor.Tensor, t1, eta float64, draw ops.Draw) error {
	if init == InitScaled {
		// x ← e^{η} x' (a noise-free fused step: its draw is not read)
		return b.Step(c.x, center, nil, ops.Coeffs{Alpha: math.Exp(eta)}, draw)
	}
	c.ev.noise, c.ev.center = ops.AtTime(t1), nil
	if err := c.ev.eval(ops.ScoreOutputs{Score: c.score}, center); err != nil {
		return err
	}
	// Tweedie: e^{η} x' + (e^{η} − e^{−η}) ∇log p_{t'}(x')
	co := ops.Coeffs{Alpha: math.Exp(eta), Beta: 2 * math.Sinh(eta)}
	if init == InitDDPM {
		e1 := math.Expm1(eta)
		co = ops.Coeffs{Alpha: 1 + e1, Beta: 2 * e1, Gamma: math.Sqrt(math.Expm1(2 * eta))}
	}
	return b.Step(c.x, center, c.score, co, draw)
}

// rtkNoise is the noise at which segment k's sub-target evaluates the target: VP time t, or the
// target itself at t = 0.
func rtkNoise(t float64) ops.Noise {
	if t == 0 {
		return ops.NoNoise
	}
	return ops.AtTime(t)
}

// validate checks cfg for n chains and fills in the defaults.
func (cfg RTKConfig) validate(n int) (RTKConfig, error) {
	switch cfg.Inner {
	case MethodMALA, MethodULD:
	case "":
		return cfg, fmt.Errorf("no inner sampler: set Inner to %q or %q", MethodMALA, MethodULD)
	default:
		return cfg, fmt.Errorf("unknown inner sampler %q (want %q or %q)", cfg.Inner, MethodMALA, MethodULD)
	}
	grid, err := timeGrid(cfg.Grid, cfg.Horizon, cfg.Segments, DefaultSegments, "segments")
	if err != nil {
		return cfg, err
	}
	cfg.Grid = grid
	if cfg.Init, err = checkInit(cfg.Init); err != nil {
		return cfg, err
	}
	S := len(grid) - 1
	if cfg.InnerSteps == 0 {
		cfg.InnerSteps = DefaultMALAInnerSteps
		if cfg.Inner == MethodULD {
			cfg.InnerSteps = DefaultULDInnerSteps
		}
	}
	if cfg.InnerSteps < 0 {
		return cfg, fmt.Errorf("inner steps = %d: need at least one", cfg.InnerSteps)
	}
	if uint64(S)*uint64(cfg.InnerSteps) > MaxSteps {
		return cfg, fmt.Errorf("%d segments × %d inner steps: too many steps", S, cfg.InnerSteps)
	}
	if cfg.InnerStepScale == 0 {
		cfg.InnerStepScale = DefaultMALAStepScale
		if cfg.Inner == MethodULD {
			cfg.InnerStepScale = DefaultULDStepScale
		}
	}
	if !finitePositive(cfg.InnerStepScale) {
		return cfg, fmt.Errorf("inner step scale c = %g: must be a finite number > 0", cfg.InnerStepScale)
	}
	if cfg.InnerStepSizes != nil {
		if len(cfg.InnerStepSizes) != S {
			return cfg, fmt.Errorf("inner step sizes: %d values for %d segments", len(cfg.InnerStepSizes), S)
		}
		for k, h := range cfg.InnerStepSizes {
			if !finitePositive(h) {
				return cfg, fmt.Errorf("inner step sizes[%d] = %g: must be a finite number > 0", k, h)
			}
		}
	}
	switch cfg.InnerInit {
	case "":
		cfg.InnerInit = InitMean
	case InitMean, InitScaled, InitDDPM:
	default:
		return cfg, fmt.Errorf("unknown inner start %q (want %q, %q or %q)", cfg.InnerInit, InitMean, InitScaled, InitDDPM)
	}
	if cfg.Friction == 0 {
		cfg.Friction = DefaultRTKFriction
	}
	if !finitePositive(cfg.Friction) {
		return cfg, fmt.Errorf("friction γ = %g: must be a finite number > 0", cfg.Friction)
	}
	return cfg, checkChains("chains", n, cfg.FirstChain)
}

// rule is the default inner step size for a segment of length scale σ in dimension d (see
// InnerStepScale).
func (cfg RTKConfig) rule(sigma float64, d int) float64 {
	if cfg.Inner == MethodULD {
		return cfg.InnerStepScale * sigma
	}
	return cfg.InnerStepScale * math.Cbrt(1/float64(d)) * sigma * sigma
}

// segmentScale is σ_k of the segment [t, t+η]: 1/σ_k² = 1/(e^{2η} − 1) + 1/c_min(t) (see
// RTKConfig.InnerStepScale).
func segmentScale(tg target.Target, t, eta float64) (float64, error) {
	a, s := math.Exp(-t), -math.Expm1(-2*t)
	var cmin float64
	switch tg := tg.(type) {
	case target.GMM:
		if tg.Mixture == nil {
			return 0, fmt.Errorf("gmm target without a mixture")
		}
		lmin := math.Inf(1)
		for _, l := range tg.Mixture.Params().Lambda {
			lmin = math.Min(lmin, l)
		}
		cmin = a*a*lmin + s
	case target.Empirical:
		if tg.DataSet == nil {
			return 0, fmt.Errorf("empirical target without data")
		}
		_, scales := tg.DataSet.Mixture()
		mmin := math.Inf(1)
		for _, m := range scales {
			mmin = math.Min(mmin, m)
		}
		cmin = s * mmin
	default:
		cmin = s // every component of p_t has variance ≥ s_t when p0's components have variance ≥ 0
	}
	if !finitePositive(cmin) {
		return 0, fmt.Errorf("target %s has no finite positive smallest variance at t = %g to scale the inner step by: give InnerStepSizes", tg, t)
	}
	prec := 1/math.Expm1(2*eta) + 1/cmin
	return 1 / math.Sqrt(prec), nil
}

// timeGrid returns grid validated (0 ≤ t_0 < t_1 < … , all finite, at least one interval) or,
// when grid is nil, n (default defN) equal intervals of [0, horizon] (default DefaultHorizon).
func timeGrid(grid []float64, horizon float64, n, defN int, what string) ([]float64, error) {
	if grid != nil {
		if horizon != 0 || n != 0 {
			return nil, fmt.Errorf("give either a grid or horizon and %s, not both", what)
		}
		if len(grid) < 2 {
			return nil, fmt.Errorf("grid %v: need at least two times (one interval)", grid)
		}
		for i, t := range grid {
			if math.IsNaN(t) || math.IsInf(t, 0) {
				return nil, fmt.Errorf("grid[%d] = %g: times must be finite", i, t)
			}
			if i == 0 && t < 0 {
				return nil, fmt.Errorf("grid[0] = %g: times start at t_0 ≥ 0", t)
			}
			if i > 0 && !(t > grid[i-1]) {
				return nil, fmt.Errorf("grid[%d] = %g ≤ grid[%d] = %g: times must increase strictly", i, t, i-1, grid[i-1])
			}
		}
		return append([]float64(nil), grid...), nil
	}
	if horizon == 0 {
		horizon = DefaultHorizon
	}
	if !finitePositive(horizon) {
		return nil, fmt.Errorf("horizon T = %g: must be a finite number > 0", horizon)
	}
	if n == 0 {
		n = defN
	}
	if n < 0 {
		return nil, fmt.Errorf("%s = %d: need at least one", what, n)
	}
	out := make([]float64, n+1)
	for i := range out {
		out[i] = horizon * float64(i) / float64(n)
	}
	return out, nil
}

// GeometricGrid returns the grid 0 = t_0 < t_1 < … < t_K = T whose times t_1 … t_K grow
// geometrically from tMin to T: t_i = tMin·(T/tMin)^{(i−1)/(K−1)} (K ≥ 2; K = 1 gives {0, T}).
// Steps shrink towards t = 0, where p_t changes fastest: an exponential integrator (DDPM) on a
// uniform grid blurs the samples by its last step's noise, sqrt(e^{2h} − 1) ≈ √(2h), while this
// grid's last step is tMin. Use it for DDPMConfig.Grid or RTKConfig.Grid.
func GeometricGrid(tMin, T float64, K int) ([]float64, error) {
	if !finitePositive(tMin) || !finitePositive(T) || !(tMin < T) {
		return nil, fmt.Errorf("geometric grid: need 0 < tMin < T, both finite (got %g, %g)", tMin, T)
	}
	if K < 1 {
		return nil, fmt.Errorf("geometric grid: steps K = %d: need at least one", K)
	}
	g := make([]float64, K+1)
	if K == 1 {
		g[1] = T
		return g, nil
	}
	for i := 1; i <= K; i++ {
		g[i] = tMin * math.Pow(T/tMin, float64(i-1)/float64(K-1))
	}
	g[K] = T
	return g, nil
}
