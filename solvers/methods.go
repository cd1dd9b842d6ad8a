package solvers

import (
	"fmt"
	"math"
	"strings"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// The method registry: every sampler of the package under one name, with its defaults, the way a
// budget of score evaluations per chain maps to its steps, and its documentation — the one place
// that the command (`scorekit sample`, `scorekit demo`), the library's users and the docs read, so
// that a method is added, and its defaults changed, in one place.
//
//	m, err := solvers.LookupMethod("heun")
//	run, err := m.Run(b, tgt, n, tensor.F32, solvers.MethodOptions{Budget: 35, Seed: 1})
//	defer run.Close()

// The families of methods.
const (
	FamilyLangevin    = "langevin"    // on the target's density itself
	FamilyRTK         = "rtk"         // reverse transition kernels
	FamilyDiffusion   = "diffusion"   // from noise along a noise-level or time grid
	FamilyFlow        = "flow"        // rectified flow
	FamilyConstrained = "constrained" // Metropolis sampling inside a domain
	FamilyFractional  = "fractional"  // generative fractional diffusion
)

// Defaults of gfdm and gfdm-ode: H = 0.5 (the MA-fBM approximation of Brownian motion, the
// baseline) and K = 3 OU processes; γ_max is DefaultGFDMGammaMax.
const (
	DefaultGFDMHurst = 0.5
	DefaultGFDMK     = 3
)

// Defaults of the registry's methods that depend on the target. λ_min is the smallest eigenvalue
// of the mixture's component covariances.
const (
	DefaultULAStepFactor  = 0.05 // ula:  h = 0.05·λ_min
	DefaultMALAStepFactor = 0.5  // mala: initial h = 0.5·λ_min·d^{−1/3}, then adapted per chain
	DefaultULDStepFactor  = 0.25 // uld:  h = 0.25·√λ_min
	DefaultULDFriction    = 2.0  // uld:  γ = 2/√λ_min, critical damping of the narrowest component
	DefaultDDPMTMin       = 1e-3 // ddpm: the geometric grid's first time t_1
)

// DDPM's schedules (MethodOptions.Schedule of "ddpm").
const (
	DDPMScheduleGeometric = "geometric" // t_1 = TMin … t_K = T, geometric, then 0 (default)
	DDPMScheduleUniform   = "uniform"   // K equal steps of [0, T]
)

// MethodOptions are the knobs of a registry run. Budget is required; every other zero value
// means the method's default, and a knob that a method does not take (see Method.Options) must
// be zero.
type MethodOptions struct {
	// Budget K ≥ 1 is the number of score evaluations per chain: each method takes as many steps
	// as fit (Method.Steps), so methods compare at equal cost.
	Budget int
	// Seed keys the random stream; FirstChain is the chain index of row 0 (see Site).
	Seed, FirstChain uint64
	// Init is the start of the methods that run from noise: InitExact (default) or InitPrior.
	Init string
	// Trajectory keeps the states along the run in Result.Trace, (n + 1, N, d): row 0 the start,
	// the last row the samples.
	Trajectory bool
	// AugmentedTrajectory (gfdm, gfdm-ode) keeps the augmented state along the run in
	// Result.AugmentedTrace (GFDMSampleConfig.AugmentedTrajectory).
	AugmentedTrajectory bool
	// Langevin: the step size (ula, mala, uld) and friction (uld; rtk-uld in units of 1/σ_k).
	StepSize, Friction float64
	// RTK: the number of equal segments of [0, Horizon] and the inner step-size constant.
	Segments  int
	StepScale float64
	// Horizon: T of rtk-*, ddpm; the noise variance σ² = T of metropolis-constrained.
	Horizon float64
	// Schedule: ddpm's time grid (DDPMScheduleGeometric, DDPMScheduleUniform) or the noise-level
	// methods' (Schedules()).
	Schedule string
	// TMin: ddpm's first grid time; δ of rf-lowdim and rf-stochastic.
	TMin float64
	// The noise-level methods: the grid's levels and EDM's exponent; ddim's η.
	SigmaMin, SigmaMax, Rho, Eta float64
	// edm-sde's churn parameters.
	Churn, STMin, STMax, SNoise float64
	// Classic: the common coefficients of dpmpp-3m and ipndm.
	Classic bool
	// lim: the stability index α ∈ (1, 2] (default DefaultLIMAlpha) and the clamp of its
	// α-stable noise (LIMConfig.Clamp; 0: none). lim also takes eta (LIMConfig.Eta).
	Alpha, Clamp float64
	// Domain and X0 of metropolis-constrained: the domain (required) and the initial states
	// (N·d values, rows inside the domain; nil: the uniform law on a box or ball).
	Domain *ops.Domain
	X0     []float64
	// GFDM (gfdm, gfdm-ode): the Hurst index H ∈ (0, 1), the number K of OU processes and the
	// largest speed γ_max > 1 of the MA-fBM driver (defaults DefaultGFDMHurst, DefaultGFDMK,
	// DefaultGFDMGammaMax).
	Hurst    float64
	K        int
	GammaMax float64
	// Progress, when set, receives the run's progress in the method's steps (see Progress; RTK
	// reports inner steps).
	Progress Progress
}

// MethodRun is the result of Method.Run: the sampler's Result, the number of steps the method took
// and, for metropolis-constrained, the fraction of rejected proposals.
type MethodRun struct {
	*Result
	Steps         int
	RejectionRate *float64
}

// Method is one sampler of the registry.
type Method struct {
	// Name is what LookupMethod and the command take.
	Name string
	// Family is one of the Family constants.
	Family string
	// Help is the method's paragraph in `scorekit sample --help`: its update, what the budget
	// buys and its defaults (lines of at most 90 characters, indented by the caller).
	Help string
	// Options are the MethodOptions knobs the method takes, by their flag names ("step-size",
	// "segments", …); Budget, Seed, FirstChain and Trajectory are taken by every method.
	Options []string
	// Density: the method needs the target's log-density or score at t = 0 (a Gaussian mixture);
	// the others need only its denoiser at positive noise levels.
	Density bool

	steps func(o MethodOptions) (int, error)
	run   runFunc
}

// runFunc runs method m with its validated options and step count.
type runFunc func(m Method, b ops.Backend, t target.Target, n int, dt tensor.DType, o MethodOptions, steps int) (*MethodRun, error)

// Takes reports whether the method takes the option (a flag name of Method.Options).
func (m Method) Takes(option string) bool {
	for _, o := range m.Options {
		if o == option {
			return true
		}
	}
	return false
}

// Steps returns the number of steps n the method takes on the budget o.Budget (the rows of its
// trajectory are n + 1), or an error when the budget is too small for it.
func (m Method) Steps(o MethodOptions) (int, error) {
	if o.Budget < 1 {
		return 0, fmt.Errorf("%s: budget %d: need at least one score evaluation per chain", m.Name, o.Budget)
	}
	if uint64(o.Budget) >= MaxSteps {
		return 0, fmt.Errorf("%s: budget %d: at most %d", m.Name, o.Budget, uint64(MaxSteps)-1)
	}
	return m.steps(o)
}

// Run samples n chains of t in dtype on b with options o.
func (m Method) Run(b ops.Backend, t target.Target, n int, dt tensor.DType, o MethodOptions) (*MethodRun, error) {
	if t == nil {
		return nil, fmt.Errorf("%s: nil target", m.Name)
	}
	if m.Density {
		if _, ok := t.(target.GMM); !ok {
			return nil, fmt.Errorf("%s needs a target with a density at t = 0 (a gmm); the %s target runs with the diffusion, flow and constrained methods",
				m.Name, t.Kind())
		}
	}
	if err := m.checkOptions(o); err != nil {
		return nil, err
	}
	steps, err := m.Steps(o)
	if err != nil {
		return nil, err
	}
	return m.run(m, b, t, n, dt, o, steps)
}

// checkOptions refuses knobs the method does not take.
func (m Method) checkOptions(o MethodOptions) error {
	set := map[string]bool{
		"init": o.Init != "", "step-size": o.StepSize != 0, "friction": o.Friction != 0,
		"segments": o.Segments != 0, "step-scale": o.StepScale != 0, "horizon": o.Horizon != 0,
		"schedule": o.Schedule != "", "t-min": o.TMin != 0, "sigma-min": o.SigmaMin != 0,
		"sigma-max": o.SigmaMax != 0, "rho": o.Rho != 0, "eta": o.Eta != 0, "churn": o.Churn != 0,
		"s-tmin": o.STMin != 0, "s-tmax": o.STMax != 0, "s-noise": o.SNoise != 0, "classic": o.Classic,
		"constraint": o.Domain != nil, "x0": o.X0 != nil,
		"hurst": o.Hurst != 0, "k": o.K != 0, "gamma-max": o.GammaMax != 0, "alpha": o.Alpha != 0, "clamp": o.Clamp != 0,
		"augmented-trajectory": o.AugmentedTrajectory,
	}
	for _, name := range optionOrder {
		if set[name] && !m.Takes(name) {
			return fmt.Errorf("%s does not take the option %q (it takes %s)", m.Name, name, strings.Join(m.Options, ", "))
		}
	}
	return nil
}

// optionOrder lists the options in the order of the command's flags.
var optionOrder = []string{"init", "step-size", "friction", "segments", "step-scale", "horizon", "schedule", "t-min",
	"sigma-min", "sigma-max", "rho", "eta", "churn", "s-tmin", "s-tmax", "s-noise", "classic", "constraint", "x0", "hurst", "k", "gamma-max",
	"alpha", "clamp", "augmented-trajectory"}

// Methods returns the registry, in the order of the documentation.
func Methods() []Method { return methods }

// MethodNames returns the names of the registry's methods, in order.
func MethodNames() []string {
	names := make([]string, len(methods))
	for i, m := range methods {
		names[i] = m.Name
	}
	return names
}

// PlannedMethods are methods of the command's contract that this version does not run.
func PlannedMethods() []string { return nil }

// LookupMethod returns the method called name, or an error listing the available ones.
func LookupMethod(name string) (Method, error) {
	for _, m := range methods {
		if m.Name == name {
			return m, nil
		}
	}
	for _, p := range PlannedMethods() {
		if p == name {
			return Method{}, fmt.Errorf("method %s is not available in this version (available: %s)", name, strings.Join(MethodNames(), ", "))
		}
	}
	return Method{}, fmt.Errorf("unknown method %q (available: %s)", name, strings.Join(MethodNames(), ", "))
}

// LambdaMin is the smallest eigenvalue of the mixture's component covariances: the length scale²
// of its narrowest direction, which the Langevin defaults are set from.
func LambdaMin(g *ops.GMM) float64 {
	m := math.Inf(1)
	for _, l := range g.Params().Lambda {
		m = math.Min(m, l)
	}
	return m
}

// rtkOverhead is the score evaluations an RTK segment spends besides its inner steps: the
// posterior-mean start and, for MALA, the fused evaluation of its first state.
func rtkOverhead(inner string) int {
	if inner == MethodULD {
		return 1
	}
	return 2
}

// rtkInnerSteps maps the budget K and S segments to inner steps per segment.
func rtkInnerSteps(name, inner string, budget, segments int) (int, error) {
	over := rtkOverhead(inner)
	steps := budget/segments - over
	if steps < 1 {
		return 0, fmt.Errorf("budget %d is too small for %s with %d segments: need at least %d (%d per segment)",
			budget, name, segments, (over+1)*segments, over+1)
	}
	return steps, nil
}

func budgetSteps(o MethodOptions) (int, error) { return o.Budget, nil }

// twoStageSteps: heun, dpm2 and edm-sde take ⌊(K+1)/2⌋ steps of two evaluations but the last.
func twoStageSteps(o MethodOptions) (int, error) { return (o.Budget + 1) / 2, nil }

func segmentsOf(o MethodOptions) int {
	if o.Segments == 0 {
		return DefaultSegments
	}
	return o.Segments
}

var noiseLevelOptions = []string{"init", "schedule", "sigma-min", "sigma-max", "rho"}

var methods = buildMethods()

func buildMethods() []Method {
	ms := []Method{
		{Name: MethodULA, Family: FamilyLangevin, Density: true, Options: []string{"step-size"},
			Help: `unadjusted Langevin, K steps, K score evaluations, from x ~ N(0, I). Step size default
0.05·λ_min.`, steps: budgetSteps, run: runLangevinMethod},
		{Name: MethodMALA, Family: FamilyLangevin, Density: true, Options: []string{"step-size"},
			Help: `Metropolis-adjusted Langevin, K steps, K + 1 fused log p + score evaluations, from
x ~ N(0, I). Default: each chain's step size adapts by dual averaging on its own decisions
towards acceptance 0.574 over the first K/2 steps from h0 = 0.5·λ_min·d^(−1/3), then stays
fixed (a chain's samples depend only on the seed and its index: the first N chains of a
larger run are the same); a given step size is used as it is.`,
			steps: budgetSteps, run: runLangevinMethod},
		{Name: MethodULD, Family: FamilyLangevin, Density: true, Options: []string{"step-size", "friction"},
			Help: `underdamped Langevin, K steps, K score evaluations, from x ~ N(0, I), v ~ N(0, I)
(inverse mass 1). Step size default 0.25·√λ_min, friction γ default 2/√λ_min (critical
damping of the narrowest component).`, steps: budgetSteps, run: runLangevinMethod},
	}
	for _, inner := range []string{MethodMALA, MethodULD} {
		name := "rtk-" + inner
		help := `reverse transition kernels (Huang et al. 2024) over S equal segments of [0, T]
(defaults 5 and 5), each segment's conditional law sampled by an inner MALA chain started at
the posterior mean. Per segment: 1 score evaluation for the start + 1 for MALA's first state
+ I inner steps, so I = ⌊K/S⌋ − 2 (K ≥ 3S). Inner step size h_k = c·d^(−1/3)·σ_k², c
default 1 (σ_k: the segment sub-target's smallest length scale).`
		opts := []string{"init", "segments", "step-scale", "horizon"}
		if inner == MethodULD {
			help = `as rtk-mala with an inner ULD chain: 1 + I evaluations per segment, I = ⌊K/S⌋ − 1
(K ≥ 2S); h_k = c·σ_k with c default 0.25, friction 2/σ_k (the friction option sets the 2).`
			opts = append(opts, "friction")
		}
		inner := inner
		ms = append(ms, Method{Name: name, Family: FamilyRTK, Density: true, Options: opts, Help: help,
			steps: func(o MethodOptions) (int, error) {
				if _, err := rtkInnerSteps(name, inner, o.Budget, segmentsOf(o)); err != nil {
					return 0, err
				}
				return segmentsOf(o), nil
			},
			run: func(_ Method, b ops.Backend, t target.Target, n int, dt tensor.DType, o MethodOptions, steps int) (*MethodRun, error) {
				innerSteps, _ := rtkInnerSteps(name, inner, o.Budget, segmentsOf(o))
				cfg := RTKConfig{Inner: inner, Segments: o.Segments, Horizon: o.Horizon, InnerSteps: innerSteps,
					InnerStepScale: o.StepScale, Friction: o.Friction, KeepPath: o.Trajectory, Seed: o.Seed,
					FirstChain: o.FirstChain, Init: o.Init, Progress: o.Progress}
				res, err := RTK(b, t, n, dt, cfg)
				if err != nil {
					return nil, err
				}
				if res.Trace != nil { // rows in time order: row 0 the start, the last the samples
					if err := reverseTrace(res); err != nil {
						res.Close()
						return nil, err
					}
				}
				return &MethodRun{Result: res, Steps: steps}, nil
			}})
	}
	ms = append(ms, Method{Name: "ddpm", Family: FamilyDiffusion, Options: []string{"init", "horizon", "schedule", "t-min"},
		Help: `the exponential integrator of the reverse Ornstein–Uhlenbeck SDE from time T (default 5),
K steps, K score evaluations, on a geometric grid (default; t_1 = 10^-3 … t_K = T, then 0)
or a uniform one. (The ancestral sampler of the noise-level grids is ddim with η = 1.)`,
		steps: budgetSteps, run: runDDPMMethod})
	for _, m := range []string{MethodDDIM, MethodEuler, MethodHeun, MethodDPM2, MethodDPMPP2M, MethodDPMPP3M, MethodIPNDM, MethodEDMSDE} {
		method := Method{Name: m, Family: FamilyDiffusion, Options: append([]string(nil), noiseLevelOptions...),
			steps: budgetSteps, run: runNoiseLevelMethod}
		switch m {
		case MethodDDIM:
			method.Options = append(method.Options, "eta")
			method.Help = `DDIM on the variance-preserving form of the grid, η ∈ [0, 1] (default 0:
deterministic, Euler's method in σ; 1: ancestral DDPM sampling). n = K steps, K evaluations.`
		case MethodEuler:
			method.Help = `Euler's method on the probability-flow ODE. n = K, K evaluations.`
		case MethodHeun:
			method.Help = `EDM's second-order sampler (Heun; no corrector on the last step).
n = ⌊(K+1)/2⌋ steps, 2n − 1 evaluations.`
			method.steps = twoStageSteps
		case MethodDPM2:
			method.Help = `DPM-Solver-2 (Euler to the midpoint in log σ, then the full step; Euler on the
last step). n = ⌊(K+1)/2⌋, 2n − 1 evaluations.`
			method.steps = twoStageSteps
		case MethodDPMPP2M:
			method.Help = `DPM-Solver++(2M), second-order multistep. n = K, K evaluations.`
		case MethodDPMPP3M:
			method.Options = append(method.Options, "classic")
			method.Help = `DPM-Solver++(3M), third-order multistep with the exact weight of the second
difference (classic: the common implementations' half weight, second order). n = K, K
evaluations.`
		case MethodIPNDM:
			method.Options = append(method.Options, "classic")
			method.Help = `iPNDM: Adams–Bashforth of order up to 4 in σ with variable-step weights, as
k-diffusion's lms sampler (classic: the constant weights of a uniform grid). n = K, K
evaluations.`
		case MethodEDMSDE:
			method.Options = append(method.Options, "churn", "s-tmin", "s-tmax", "s-noise")
			method.Help = `EDM's stochastic sampler: on levels in [s_tmin, s_tmax] (defaults 0.05, 50) each
step first raises σ by the factor 1 + min(S_churn/n, √2 − 1) with fresh noise (S_churn
default 40, scaled by s_noise default 1), then takes a heun step. n = ⌊(K+1)/2⌋, 2n − 1
evaluations.`
			method.steps = twoStageSteps
		}
		ms = append(ms, method)
	}
	ms = append(ms, Method{Name: MethodLIM, Family: FamilyDiffusion,
		Options: append(append([]string(nil), noiseLevelOptions...), "eta", "alpha", "clamp"),
		Help: `the Lévy–Itō model (Yoon et al. 2023): data noised by isotropic α-stable
noise, x_t = a_t x + s_t S with a^α + s^α = 1 (alpha ∈ (1, 2], default 1.8; alpha 2 is
ddim exactly), on the same grid of levels ρ = s/a, with the exact denoiser (the mixing
variable of the noise integrated by a 64-node quadrature). The DDIM-type step with
η ∈ [0, 1] (default 0, deterministic); η > 0 injects fresh α-stable noise, clipped to
[−clamp, clamp] when clamp > 0 (default 0: no clip; the reference implementation clips
at 20; the count is reported). n = K steps, K evaluations.`,
		steps: budgetSteps, run: runLIMMethod})
	for _, m := range []string{MethodRF, MethodRFLowDim, MethodRFStochastic} {
		method := Method{Name: m, Family: FamilyFlow, Options: []string{"init"},
			steps: func(o MethodOptions) (int, error) {
				if m != MethodRF && o.Budget < 2 {
					return 0, fmt.Errorf("budget %d is too small for %s: its grid has at least 3 steps, 2 score evaluations (a budget ≥ 2)", o.Budget, m)
				}
				return o.Budget + 1, nil
			},
			run: runRFMethod}
		switch m {
		case MethodRF:
			method.Help = `Euler's method on the uniform time grid t_i = i/n. n = K + 1 steps, K evaluations
(the first step, at t = 0, uses the target's mean in closed form).`
		case MethodRFLowDim:
			method.Options = append(method.Options, "t-min")
			method.Help = `Euler's method on the low-dimension-adaptive grid (geometric near t = 0 and t = 1:
t_1 = δ, default 0.001, t_{n−1} = 1 − δ). n = K + 1, K evaluations (K ≥ 2).`
		case MethodRFStochastic:
			method.Options = append(method.Options, "t-min")
			method.Help = `the stochastic rectified-flow sampler (the stochastic-localisation step) on the
rf-lowdim grid. n = K + 1, K evaluations (K ≥ 2).`
		}
		ms = append(ms, method)
	}
	ms = append(ms, Method{Name: "metropolis-constrained", Family: FamilyConstrained,
		Options: []string{"horizon", "constraint", "x0"},
		Help: `the reverse VE SDE by Euler–Maruyama over noise times τ = T, T − h, …, h (h = T/K),
the score at σ = √τ: a proposal y + h ∇log p_τ(y) + √h ξ that leaves the domain M is
rejected and the chain stays. n = K steps, K evaluations. The chains start from the given
states (every row in M), by default the uniform law on M (box and ball; a polytope needs
them), the law of the forward walk once it has forgotten the data: hence the default
T = 0.6·D² for a box or ball of diameter D (5 for a polytope). The last step adds noise of
scale √h: take K in the hundreds.`,
		steps: budgetSteps, run: runConstrainedMethod})
	for _, m := range []string{MethodGFDM, MethodGFDMODE} {
		method := Method{Name: m, Family: FamilyFractional, Options: []string{"hurst", "k", "gamma-max", "t-min", "augmented-trajectory"},
			steps: budgetSteps, run: runGFDMMethod}
		if m == MethodGFDM {
			method.Help = `generative fractional diffusion (FVE, σ ∈ [0.01, 50]) driven by MA-fBM with Hurst
index H (default 0.5, the Brownian baseline as approximated by the driver), K OU processes
(default 3) with speeds from 1/γ_max to γ_max (default 20): the exponential integrator of
the reverse SDE of the augmented state with its exact score (the linear part and the noise
exact, the denoiser held over each step), from its exact law at t = 1, on a geometric grid
to t_min (default: where the augmented covariance stops being well conditioned), then the
posterior mean. n = K steps, K evaluations. (Euler–Maruyama on the same SDE, available in
the library, is unstable on these stiff steps below K ≈ 100.)`
		} else {
			method.Help = `as gfdm with Heun's method on the probability-flow ODE (no corrector on the last
step). n = ⌊(K+1)/2⌋ steps, 2n − 1 evaluations.`
			method.steps = twoStageSteps
		}
		ms = append(ms, method)
	}
	return ms
}

// runGFDMMethod runs GFDMSample (FVE base) with the registry's defaults.
func runGFDMMethod(m Method, b ops.Backend, t target.Target, n int, dt tensor.DType, o MethodOptions, steps int) (*MethodRun, error) {
	cfg := GFDMConfig{Base: GFDMBaseFVE, Hurst: o.Hurst, K: o.K, GammaMax: o.GammaMax}
	if cfg.Hurst == 0 {
		cfg.Hurst = DefaultGFDMHurst
	}
	if cfg.K == 0 {
		cfg.K = DefaultGFDMK
	}
	p, err := NewGFDMProcess(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Name, err)
	}
	solver := GFDMSolverSDE
	if m.Name == MethodGFDMODE {
		solver = GFDMSolverODE
	}
	res, err := GFDMSample(b, TargetDenoiser(t), n, dt, GFDMSampleConfig{Process: p, Solver: solver, Steps: steps,
		Exponential: solver == GFDMSolverSDE, TMin: o.TMin, Seed: o.Seed, FirstChain: o.FirstChain,
		Trajectory: o.Trajectory, AugmentedTrajectory: o.AugmentedTrajectory, Progress: o.Progress})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Name, err)
	}
	return &MethodRun{Result: res, Steps: steps}, nil
}

// runLangevinMethod runs ula, mala or uld from x ~ N(0, I) (Site(0, PurposeInit)) with the
// registry's defaults.
func runLangevinMethod(m Method, b ops.Backend, t target.Target, n int, dt tensor.DType, o MethodOptions, steps int) (*MethodRun, error) {
	g := t.(target.GMM).Mixture
	lmin, d := LambdaMin(g), g.Dim()
	cfg := LangevinConfig{Method: m.Name, Steps: steps, StepSize: o.StepSize, Seed: o.Seed, FirstChain: o.FirstChain,
		Progress: o.Progress}
	switch m.Name {
	case MethodULA:
		if cfg.StepSize == 0 {
			cfg.StepSize = DefaultULAStepFactor * lmin
		}
	case MethodMALA:
		if cfg.StepSize == 0 {
			cfg.Adapt = steps >= 2
			cfg.StepSize = DefaultMALAStepFactor * lmin * math.Cbrt(1/float64(d))
		}
	case MethodULD:
		if cfg.StepSize == 0 {
			cfg.StepSize = DefaultULDStepFactor * math.Sqrt(lmin)
		}
		cfg.Friction = o.Friction
		if cfg.Friction == 0 {
			cfg.Friction = DefaultULDFriction / math.Sqrt(lmin)
		}
	}
	if o.Trajectory {
		cfg.Thin = 1
	}
	x0, err := tensor.New(b.Device(), dt, n, d)
	if err != nil {
		return nil, fmt.Errorf("%s: allocate the initial state (%d, %d): %w", m.Name, n, d, err)
	}
	defer x0.Close()
	if err := b.Normal(x0, drawAt(o.Seed, 0, PurposeInit, o.FirstChain)); err != nil {
		return nil, fmt.Errorf("%s: initial state: %w", m.Name, err)
	}
	res, err := Langevin(b, t, x0, cfg)
	if err != nil {
		return nil, err
	}
	return &MethodRun{Result: res, Steps: steps}, nil
}

// runDDPMMethod runs DDPM on the schedule o.Schedule.
func runDDPMMethod(m Method, b ops.Backend, t target.Target, n int, dt tensor.DType, o MethodOptions, steps int) (*MethodRun, error) {
	cfg := DDPMConfig{Seed: o.Seed, FirstChain: o.FirstChain, Init: o.Init, Progress: o.Progress}
	horizon := o.Horizon
	if horizon == 0 {
		horizon = DefaultHorizon
	}
	switch o.Schedule {
	case DDPMScheduleUniform:
		if o.TMin != 0 {
			return nil, fmt.Errorf("ddpm: t-min belongs to the %s schedule", DDPMScheduleGeometric)
		}
		cfg.Steps, cfg.Horizon = steps, horizon
	case "", DDPMScheduleGeometric:
		tMin := o.TMin
		if tMin == 0 {
			tMin = DefaultDDPMTMin
		}
		if !(tMin < horizon) {
			return nil, fmt.Errorf("ddpm: t-min %g must be below the horizon %g", tMin, horizon)
		}
		grid, err := GeometricGrid(tMin, horizon, steps)
		if err != nil {
			return nil, fmt.Errorf("ddpm: t-min %g, horizon %g: %w", tMin, horizon, err)
		}
		cfg.Grid = grid
	default:
		return nil, fmt.Errorf("ddpm: schedule %q: want %s or %s", o.Schedule, DDPMScheduleGeometric, DDPMScheduleUniform)
	}
	if o.Trajectory {
		cfg.Thin = 1
	}
	res, err := DDPM(b, t, n, dt, cfg)
	if err != nil {
		return nil, err
	}
	return &MethodRun{Result: res, Steps: steps}, nil
}

// runNoiseLevelMethod runs a method of Diffusion on the target's denoiser.
func runNoiseLevelMethod(m Method, b ops.Backend, t target.Target, n int, dt tensor.DType, o MethodOptions, steps int) (*MethodRun, error) {
	if steps > MaxDiffusionSteps {
		return nil, fmt.Errorf("%s: budget %d: at most %d steps", m.Name, o.Budget, MaxDiffusionSteps)
	}
	cfg := DiffusionConfig{Method: m.Name, Steps: steps, Schedule: o.Schedule, SigmaMin: o.SigmaMin,
		SigmaMax: o.SigmaMax, Rho: o.Rho, Eta: o.Eta, Classic: o.Classic, Seed: o.Seed, FirstChain: o.FirstChain,
		Trajectory: o.Trajectory, Init: o.Init, SChurn: o.Churn, STMin: o.STMin, STMax: o.STMax, SNoise: o.SNoise,
		Progress: o.Progress}
	res, err := Diffusion(b, TargetDenoiser(t), n, dt, cfg)
	if err != nil {
		return nil, err
	}
	if res.Denoised != nil { // the registry's trajectory is the states
		res.Denoised.Close()
		res.Denoised = nil
	}
	return &MethodRun{Result: res, Steps: steps}, nil
}

// runLIMMethod runs LIM on the target's LIM denoiser (DefaultLIMNodes nodes).
func runLIMMethod(m Method, b ops.Backend, t target.Target, n int, dt tensor.DType, o MethodOptions, steps int) (*MethodRun, error) {
	if steps > MaxDiffusionSteps {
		return nil, fmt.Errorf("%s: budget %d: at most %d steps", m.Name, o.Budget, MaxDiffusionSteps)
	}
	alpha := o.Alpha
	if alpha == 0 {
		alpha = DefaultLIMAlpha
	}
	den, err := NewLIMDenoiser(t, alpha, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Name, err)
	}
	cfg := LIMConfig{Alpha: alpha, Steps: steps, Schedule: o.Schedule, SigmaMin: o.SigmaMin, SigmaMax: o.SigmaMax,
		Rho: o.Rho, Eta: o.Eta, Clamp: o.Clamp, Seed: o.Seed, FirstChain: o.FirstChain, Trajectory: o.Trajectory,
		Init: o.Init, Progress: o.Progress}
	res, err := LIM(b, den, n, dt, cfg)
	if err != nil {
		return nil, err
	}
	if res.Denoised != nil { // the registry's trajectory is the states
		res.Denoised.Close()
		res.Denoised = nil
	}
	return &MethodRun{Result: res, Steps: steps}, nil
}

// runRFMethod runs RectifiedFlow (the start at t = 0 is N(0, I) exactly, whatever o.Init).
func runRFMethod(m Method, b ops.Backend, t target.Target, n int, dt tensor.DType, o MethodOptions, steps int) (*MethodRun, error) {
	if _, err := checkInit(o.Init); err != nil {
		return nil, fmt.Errorf("%s: %w", m.Name, err)
	}
	cfg, err := RFConfigFor(m.Name, steps)
	if err != nil {
		return nil, err
	}
	cfg.TMin, cfg.Seed, cfg.FirstChain, cfg.Trajectory = o.TMin, o.Seed, o.FirstChain, o.Trajectory
	cfg.Progress = o.Progress
	res, err := RectifiedFlow(b, t, n, dt, cfg)
	if err != nil {
		return nil, err
	}
	return &MethodRun{Result: res, Steps: steps}, nil
}

// runConstrainedMethod runs ConstrainedSample from o.X0 or the uniform law on the domain.
func runConstrainedMethod(m Method, b ops.Backend, t target.Target, n int, dt tensor.DType, o MethodOptions, steps int) (*MethodRun, error) {
	dom, d := o.Domain, t.Dim()
	switch {
	case dom == nil:
		return nil, fmt.Errorf("%s needs a domain (a box, ball or polytope)", m.Name)
	case dom.Dim() != d:
		return nil, fmt.Errorf("%s: the %v has dimension %d, the target %d", m.Name, dom.Kind(), dom.Dim(), d)
	case o.X0 == nil && dom.Kind() == ops.Polytope:
		return nil, fmt.Errorf("%s: a polytope has no direct uniform sampler: give the initial states (rows inside the polytope)", m.Name)
	case o.X0 != nil && len(o.X0) != n*d:
		return nil, fmt.Errorf("%s: %d initial values for %d chains of dimension %d", m.Name, len(o.X0), n, d)
	}
	vals := o.X0
	if vals == nil {
		var err error
		if vals, err = SampleUniformFrom(dom, n, o.Seed, o.FirstChain); err != nil {
			return nil, err
		}
		vals = RoundInside(dom, vals, d, dt)
	}
	x0, err := tensor.FromFloat64s(dt, vals, n, d)
	if err != nil {
		return nil, fmt.Errorf("%s: initial states: %w", m.Name, err)
	}
	defer x0.Close()
	if b.Device() != x0.Device() {
		dev, err := x0.CopyTo(b.Device())
		if err != nil {
			return nil, fmt.Errorf("%s: copy the initial states to %s: %w", m.Name, b.Device().Name(), err)
		}
		defer dev.Close()
		x0 = dev
	}
	horizon := o.Horizon
	if horizon == 0 {
		horizon = DefaultConstrainedHorizon(dom)
	}
	cfg := ConstrainedConfig{Domain: dom, Steps: steps, Horizon: horizon, Seed: o.Seed, FirstChain: o.FirstChain,
		Progress: o.Progress}
	if o.Trajectory {
		cfg.Thin = 1
	}
	res, err := ConstrainedSample(b, t, x0, cfg)
	if err != nil {
		return nil, err
	}
	rate := res.RejectionRate()
	return &MethodRun{Result: res.Result, Steps: steps, RejectionRate: &rate}, nil
}

// DefaultConstrainedHorizon is the default noise time T of metropolis-constrained: 0.6·D² for a
// box or ball of diameter D, long enough for the forward walk (reflected Brownian motion,
// generator ½Δ) to forget its start — its slowest mode decays as exp(−π² T/(2L²)) on a side of
// length L ≤ D, by e^{−3} at T = 0.6 L², and faster on a ball — so that the uniform law on the
// domain, the default start, is its law at time T. A polytope gets DefaultHorizon.
func DefaultConstrainedHorizon(dom *ops.Domain) float64 {
	p := dom.Params()
	switch p.Kind {
	case ops.Box:
		s := 0.0
		for j := range p.Lo {
			s += (p.Hi[j] - p.Lo[j]) * (p.Hi[j] - p.Lo[j])
		}
		return 0.6 * s
	case ops.Ball:
		return 0.6 * 4 * p.Radius * p.Radius
	}
	return DefaultHorizon
}

// RoundInside returns x (rows of d values inside the domain) as dt rounds it, every row that
// rounding moved outside pulled towards the domain's centre until it lies inside again.
func RoundInside(dom *ops.Domain, x []float64, d int, dt tensor.DType) []float64 {
	round := func(v float64) float64 {
		if dt == tensor.F32 {
			return float64(float32(v))
		}
		return v
	}
	p := dom.Params()
	center := p.Center
	if p.Kind == ops.Box {
		center = make([]float64, d)
		for j := range center {
			center[j] = (p.Lo[j] + p.Hi[j]) / 2
		}
	}
	out := make([]float64, len(x))
	for i := 0; i+d <= len(x); i += d {
		row := out[i : i+d]
		for j := range row {
			row[j] = round(x[i+j])
		}
		for shrink := 1e-7; !dom.Contains(row) && shrink < 1; shrink *= 2 {
			for j := range row {
				row[j] = round(center[j] + (x[i+j]-center[j])*(1-shrink))
			}
		}
	}
	return out
}

// reverseTrace reverses the rows of res.Trace (an RTK path, stored from t_0 up), on the host: the
// result's trace becomes a host tensor with row 0 the start and the last row the samples.
func reverseTrace(res *Result) error {
	tr := res.Trace
	h := tr
	if !tr.OnHost() {
		var err error
		if h, err = tr.CopyTo(tensor.CPU()); err != nil {
			return fmt.Errorf("copy the path to the host: %w", err)
		}
		defer h.Close()
	}
	rows, n, d := tr.Dim(0), tr.Dim(1), tr.Dim(2)
	out, err := tensor.New(nil, tr.DType(), rows, n, d)
	if err != nil {
		return fmt.Errorf("allocate the path: %w", err)
	}
	for r := 0; r < rows; r++ {
		src, err := h.View((rows-1-r)*n*d, n, d)
		if err == nil {
			var dst *tensor.Tensor
			if dst, err = out.View(r*n*d, n, d); err == nil {
				err = dst.CopyFrom(src)
			}
		}
		if err != nil {
			out.Close()
			return fmt.Errorf("reverse the path: %w", err)
		}
	}
	tr.Close()
	res.Trace = out
	return nil
}
