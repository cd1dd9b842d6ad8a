package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/solvers"
	"github.com/scorekit/scorekit/tensor"
)

// The method families of `scorekit sample`.
var (
	// langevinMethods run on the target's density itself (a gmm).
	langevinMethods = []string{"ula", "mala", "uld"}
	// rtkMethods are the reverse transition kernels (a gmm).
	rtkMethods = []string{"rtk-mala", "rtk-uld"}
	// veMethods run solvers.Diffusion on the target's denoiser down a grid of VE noise levels.
	veMethods = []string{"ddim", "euler", "heun", "dpm2", "dpmpp-2m", "dpmpp-3m", "ipndm", "edm-sde"}
	// twoStageMethods evaluate the denoiser twice per step but on the last (see solvers.Diffusion).
	twoStageMethods = []string{"heun", "dpm2", "edm-sde"}
	// rfMethods run solvers.RectifiedFlow.
	rfMethods = []string{"rf", "rf-lowdim", "rf-stochastic"}
)

// sampleMethods are the methods `scorekit sample` runs in this version, in the order of the help.
var sampleMethods = []string{"ula", "mala", "uld", "rtk-mala", "rtk-uld", "ddpm", "ddim", "euler", "heun",
	"dpm2", "dpmpp-2m", "dpmpp-3m", "ipndm", "edm-sde", "rf", "rf-lowdim", "rf-stochastic",
	"metropolis-constrained"}

// plannedSampleMethods are methods of the command's contract not available in this version.
var plannedSampleMethods = []string{"gfdm", "gfdm-ode", "lim"}

// Defaults of `scorekit sample` (see sampleHelp). λ_min is the smallest eigenvalue of the
// mixture's component covariances (the smallest component variance of an isotropic mixture).
const (
	defaultULAStepFactor  = 0.05 // ula:  h = 0.05 λ_min
	defaultMALAStepFactor = 0.5  // mala: initial h = 0.5 λ_min d^{-1/3}, then adapted
	defaultULDStepFactor  = 0.25 // uld:  h = 0.25 √λ_min
	defaultULDFriction    = 2.0  // uld:  γ = 2/√λ_min
	defaultDDPMTMin       = 1e-3 // ddpm: geometric grid from t_1 = 10^-3 to T
)

// The schedules --schedule takes: ddpm's time grids and the VE methods' noise-level grids.
var (
	ddpmSchedules = []string{"geometric", "uniform"}
	veSchedules   = solvers.Schedules()
)

const sampleHelp = `Usage: scorekit sample --target T.json --method M --n N --steps K --seed S --out X.npy
                       [--device auto|cpu|cuda] [--dtype f32|f64] [--trajectory TR.npy]
                       [--plot P.png] [--stats S.json] [--quiet] [method flags]

Runs N chains of a sampler on the target and writes the samples, (N, d), to X.npy (NumPy, C
order). Every output is written atomically: a failed run leaves no file and never overwrites an
existing one. Same --seed: same samples, on the CPU and the GPU (within the ops' tolerance).

Methods and what --steps K means. K is the score-evaluation budget per chain, so methods can be
compared at equal cost: each method takes as many steps n as fit in K (a denoiser evaluation
counts as a score evaluation). The exact count is in --stats as score_evals, n as method_steps.

Langevin family (a "gmm" target; the chains run on its density from x ~ N(0, I)):
  ula       unadjusted Langevin, K steps, K score evaluations. Step size (--step-size) default
            0.05·λ_min.
  mala      Metropolis-adjusted Langevin, K steps, K + 1 fused log p + score evaluations. Default:
            each chain's step size adapts by dual averaging on its own decisions towards
            acceptance 0.574 over the first K/2 steps from h0 = 0.5·λ_min·d^(−1/3), then stays
            fixed (so a chain's samples depend only on --seed and its index: the first N chains
            of a larger run are the same); --step-size h fixes h instead. --stats step_size is the
            geometric mean of the chains' step sizes.
  uld       underdamped Langevin, K steps, K score evaluations; v ~ N(0, I) (inverse mass 1).
            Step size default 0.25·√λ_min, --friction γ default 2/√λ_min (critical damping of
            the narrowest component).
Reverse transition kernels (a "gmm" target):
  rtk-mala  reverse transition kernels (Huang et al. 2024) over --segments S equal segments of
            [0, --horizon T] (defaults 5 and 5), each segment's conditional law sampled by an
            inner MALA chain started at the posterior mean. Per segment: 1 score evaluation for
            the start + 1 for MALA's first state + I inner steps, so I = ⌊K/S⌋ − 2 (K ≥ 3S).
            Inner step size h_k = c·d^(−1/3)·σ_k², --step-scale c default 1 (σ_k: the segment
            sub-target's smallest length scale).
  rtk-uld   as rtk-mala with an inner ULD chain: 1 + I evaluations per segment, I = ⌊K/S⌋ − 1
            (K ≥ 2S); h_k = c·σ_k with --step-scale c default 0.25, friction 2/σ_k
            (--friction sets the 2).
Diffusion (a "gmm" or an "empirical" target: every one has an exact denoiser at σ > 0):
  ddpm      the exponential integrator of the reverse Ornstein–Uhlenbeck SDE from time
            T = --horizon (default 5), K steps, K score evaluations, on the --schedule grid:
            geometric (default; t_1 = --t-min 10^-3 … t_K = T, then 0) or uniform. (The
            ancestral sampler of the noise-level grids below is ddim --eta 1.)
  The methods below run the target's denoiser D(x; σ) down a grid of n + 1 noise levels,
  σ_0 = --sigma-max (default 80) > … > σ_{n−1} = --sigma-min (default 0.002) > σ_n = 0;
  --schedule edm (default: Karras et al.'s polynomial grid, exponent
  --rho default 7), logsnr (uniform in log σ) or time (uniform in σ):
  ddim      DDIM on the variance-preserving form of the grid, --eta η ∈ [0, 1] (default 0:
            deterministic, Euler's method in σ; 1: ancestral DDPM sampling). n = K steps, K
            evaluations.
  euler     Euler's method on the probability-flow ODE. n = K, K evaluations.
  heun      EDM's second-order sampler (Heun; no corrector on the last step).
            n = ⌊(K+1)/2⌋ steps, 2n − 1 evaluations.
  dpm2      DPM-Solver-2 (Euler to the midpoint in log σ, then the full step; Euler on the
            last step). n = ⌊(K+1)/2⌋, 2n − 1 evaluations.
  dpmpp-2m  DPM-Solver++(2M), second-order multistep. n = K, K evaluations.
  dpmpp-3m  DPM-Solver++(3M), third-order multistep (--classic: the weights of the common
            implementations, second order). n = K, K evaluations.
  ipndm     iPNDM, fourth-order Adams–Bashforth in σ with variable-step weights (--classic: the
            published constant weights). n = K, K evaluations.
  edm-sde   EDM's stochastic sampler: on levels in [--s-tmin, --s-tmax] (defaults 0.05, 50) each
            step first raises σ by the factor 1 + min(S_churn/n, √2 − 1) with fresh noise
            (--churn S_churn default 40, scaled by --s-noise default 1), then takes a heun
            step. n = ⌊(K+1)/2⌋, 2n − 1 evaluations.
Flows (rectified flow x_t = (1 − t) ξ + t x, ξ ~ N(0, I), the target's denoiser under that noise):
  rf        Euler's method on the uniform time grid t_i = i/n. n = K + 1 steps, K evaluations
            (the first step, at t = 0, uses the target's mean in closed form).
  rf-lowdim Euler's method on the low-dimension-adaptive grid (geometric near t = 0 and t = 1:
            t_1 = δ = --t-min, default 0.001, t_{n−1} = 1 − δ). n = K + 1, K evaluations (K ≥ 2).
  rf-stochastic  the stochastic rectified-flow sampler (the stochastic-localisation step) on the
            rf-lowdim grid. n = K + 1, K evaluations (K ≥ 2).
Constrained (any target, and a domain M: --constraint C.json):
  metropolis-constrained  the reverse VE SDE by Euler–Maruyama over noise times τ = T, T − h, …,
            h (T = --horizon, h = T/K), the score at σ = √τ: a proposal y + h ∇log p_τ(y) + √h ξ
            that leaves M is rejected and the chain stays. n = K steps, K evaluations. The
            chains start from --init X0.npy ((N, d), every row in M), default the uniform law
            on M (box and ball; a polytope needs --init), the law of the forward walk once it
            has forgotten the data: hence the default T = 0.6·D² for a box or ball of diameter
            D (5 for a polytope). The last step adds noise of scale √h: take K in the hundreds.
            --stats reports rejection_rate, the fraction of rejected proposals.
λ_min is the smallest eigenvalue of the mixture's component covariances.
Not in this version: gfdm, gfdm-ode, lim.

The start of the methods that run from noise (rtk-*, ddpm, the noise-level methods): by default
(--init exact) the exact law of the target noised to the start — the mixture noised to σ_0, or to
time T of the OU process, is itself a mixture; a data set noised is a data point plus Gaussian
noise. --init prior starts from the textbook Gaussian instead (σ_0 ξ; N(0, I) at T), which ignores
the target's mean and covariance: on modes far from the origin its samples are biased at any
number of steps (for comparisons with other implementations). The flows start at t = 0, where the
law is N(0, I) exactly, either way.

Flags:
  --target T.json    the target (required; see scorekit score --help for the format)
  --method M         one of the methods above (required)
  --n N              number of chains, 1 ≤ N ≤ 2^32 (required)
  --steps K          score-evaluation budget per chain, K ≥ 1 (required)
  --seed S           Philox key, an unsigned 64-bit integer (default 0)
  --out X.npy        samples, (N, d) (required)
  --dtype T          f32 or f64 (default f32)
` + deviceFlagHelp + `  --trajectory TR.npy  states along the run, (n + 1, N, d), row 0 the initial state and the last
                 row the samples, one row per step of the method: n = K for ula, mala, uld,
                 ddpm and metropolis-constrained; n = K + 1 for rf*; n as above for the
                 noise-level methods (row i at σ_i); n = S for rtk-* (x at the grid times
                 t_S = T, …, t_0 = 0: one row per segment)
  --plot P.png       PNG: the samples (first two coordinates) over the target's log-density
                 contours (gmm) or its data points (empirical), d ≥ 2, with the outline of
                 --constraint; with --trajectory a second panel draws the trajectories of 30
                 chains as lines
  --stats S.json     JSON: method, device, dtype, n, d, steps (K), method_steps (n),
                 score_evals (per chain), score_evals_total, wall_seconds, acceptance_rate
                 (mala, rtk-mala), rejection_rate (metropolis-constrained), step_size, seed,
                 nan_chains, nan_first_chain (when nan_chains > 0)
  --quiet            say nothing on stderr unless something fails or chains turn non-finite
Method flags (each refused by the methods it does not apply to):
  --step-size h      ula, mala, uld: the step size (defaults above)
  --friction γ       uld: the friction; rtk-uld: friction in units of 1/σ_k (default 2)
  --segments S       rtk-*: number of equal segments (default 5)
  --step-scale c     rtk-*: inner step-size constant (default 1 for rtk-mala, 0.25 for rtk-uld)
  --horizon T        rtk-*, ddpm, metropolis-constrained: the end time of the forward process
                 (default 5; for metropolis-constrained the noise variance σ² = T, default
                 0.6·D² for a box or ball of diameter D)
  --schedule G       ddpm: geometric or uniform (default geometric); the noise-level methods:
                 edm, logsnr or time (default edm)
  --t-min t          ddpm: first grid time of the geometric schedule (default 0.001);
                 rf-lowdim, rf-stochastic: δ ∈ (0, 1/2) of the grid (default 0.001)
  --sigma-min s      the noise-level methods: the smallest positive level (default 0.002)
  --sigma-max s      the noise-level methods: the largest level, σ_0 (default 80)
  --rho ρ            the noise-level methods with --schedule edm: its exponent (default 7)
  --eta η            ddim: the stochasticity, in [0, 1] (default 0)
  --churn S          edm-sde: S_churn > 0 (default 40)
  --s-tmin s, --s-tmax s  edm-sde: the levels that churn (defaults 0.05, 50; --s-tmax may be inf)
  --s-noise s        edm-sde: the factor of the fresh noise (default 1; 1.003 in EDM for learned
                 networks)
  --classic          dpmpp-3m, ipndm: the coefficients of the common implementations
  --constraint C.json  metropolis-constrained: the domain (required; format below)
  --init S           rtk-*, ddpm, the noise-level methods, rf*: exact (default) or prior, the
                 start (above); metropolis-constrained: X0.npy, the initial states, (N, d), all
                 inside the domain

` + constraintHelp + `
A run whose chains turn NaN or ±Inf still writes its outputs, reports the count and the first
such chain on stderr and in --stats.
`

// samplerSpec is one sampler run: the method and its parameters (zero means default).
type samplerSpec struct {
	method    string
	steps     int
	seed      uint64
	stepSize  float64
	friction  float64
	segments  int
	stepScale float64
	horizon   float64
	schedule  string
	tMin      float64
	// Noise-level methods (zero: the library's default).
	sigmaMin, sigmaMax, rho     float64
	eta                         float64
	churn, sTMin, sTMax, sNoise float64
	classic                     bool
	// metropolis-constrained: the domain and the initial states (nil: uniform on the domain),
	// n·d values of any precision, already checked to lie in the domain.
	domain *ops.Domain
	init   []float64
	// start is --init exact|prior of the methods that run from noise (rtk-*, ddpm, the noise-level
	// methods, rf*): solvers.InitExact or solvers.InitPrior.
	start string
	trace bool
}

// sampleRun is what runSampler returns: the result, the method's step count and, for
// metropolis-constrained, the fraction of rejected proposals.
type sampleRun struct {
	*solvers.Result
	methodSteps   int
	rejectionRate *float64
}

// lambdaMin is the smallest eigenvalue of the mixture's component covariances.
func lambdaMin(g *ops.GMM) float64 {
	m := math.Inf(1)
	for _, l := range g.Params().Lambda {
		m = math.Min(m, l)
	}
	return m
}

// rtkInnerSteps maps the budget K and S segments to inner steps per segment (see sampleHelp).
func rtkInnerSteps(method string, steps, segments int) (int, error) {
	overhead := 2 // posterior-mean start + MALA's first fused evaluation
	if method == "rtk-uld" {
		overhead = 1
	}
	inner := steps/segments - overhead
	if inner < 1 {
		return 0, usagef("--steps %d is too small for %s with %d segments: need at least %d (%d per segment)",
			steps, method, segments, (overhead+1)*segments, overhead+1)
	}
	return inner, nil
}

// methodSteps returns the number of steps n the method takes on the budget of K score
// evaluations per chain (see sampleHelp): the rows of its trajectory are n + 1.
func methodSteps(s samplerSpec) (int, error) {
	K := s.steps
	switch {
	case contains(rtkMethods, s.method):
		if _, err := rtkInnerSteps(s.method, K, s.segments); err != nil {
			return 0, err
		}
		return s.segments, nil
	case contains(twoStageMethods, s.method):
		return (K + 1) / 2, nil
	case contains(rfMethods, s.method):
		if s.method != "rf" && K < 2 {
			return 0, usagef("--steps %d is too small for %s: its grid has at least 3 steps, 2 score evaluations (--steps 2)", K, s.method)
		}
		return K + 1, nil
	}
	return K, nil
}

// checkSpec validates a spec against the target (usage errors) without running anything, and
// returns the method's step count.
func checkSpec(s samplerSpec, tgt target.Target) (int, error) {
	if s.steps < 1 {
		return 0, usagef("--steps must be ≥ 1 (got %d)", s.steps)
	}
	if _, isGMM := tgt.(target.GMM); !isGMM && (contains(langevinMethods, s.method) || contains(rtkMethods, s.method)) {
		return 0, usagef("--method %s needs a target with a density at t = 0 (a gmm); the %s target runs with the diffusion, flow and constrained methods",
			s.method, tgt.Kind())
	}
	n, err := methodSteps(s)
	if err != nil {
		return 0, err
	}
	if contains(veMethods, s.method) && n > solvers.MaxDiffusionSteps {
		return 0, usagef("--steps %d: %s takes at most %d steps", s.steps, s.method, solvers.MaxDiffusionSteps)
	}
	if s.method == "metropolis-constrained" {
		switch {
		case s.domain == nil:
			return 0, usagef("--method metropolis-constrained needs --constraint C.json (the domain)")
		case s.domain.Dim() != tgt.Dim():
			return 0, usagef("--constraint: the %v has dimension %d, the target %d", s.domain.Kind(), s.domain.Dim(), tgt.Dim())
		case s.init == nil && s.domain.Kind() == ops.Polytope:
			return 0, usagef("--constraint: a polytope has no direct uniform sampler: give the initial states with --init X0.npy (rows inside the polytope)")
		}
	}
	return n, nil
}

// runSampler runs spec on n chains of tgt in dtype dt on b.
func runSampler(b ops.Backend, tgt target.Target, n int, dt tensor.DType, s samplerSpec) (*sampleRun, error) {
	steps, err := checkSpec(s, tgt)
	if err != nil {
		return nil, err
	}
	wrap := func(res *solvers.Result, err error) (*sampleRun, error) {
		if err != nil {
			return nil, err
		}
		return &sampleRun{Result: res, methodSteps: steps}, nil
	}
	switch {
	case contains(langevinMethods, s.method):
		return wrap(runLangevin(b, tgt, n, dt, s))
	case contains(rtkMethods, s.method):
		inner, _ := rtkInnerSteps(s.method, s.steps, s.segments)
		cfg := solvers.RTKConfig{Inner: strings.TrimPrefix(s.method, "rtk-"), Segments: s.segments,
			Horizon: s.horizon, InnerSteps: inner, InnerStepScale: s.stepScale, Friction: s.friction,
			KeepPath: s.trace, Seed: s.seed, Init: s.start}
		res, err := solvers.RTK(b, tgt, n, dt, cfg)
		if err != nil || res.Trace == nil {
			return wrap(res, err)
		}
		// Row order of the command: row 0 the N(0, I) start, the last row the samples.
		if err := reverseRows(res); err != nil {
			res.Close()
			return nil, err
		}
		return wrap(res, nil)
	case s.method == "ddpm":
		cfg := solvers.DDPMConfig{Seed: s.seed, Init: s.start}
		horizon := s.horizon
		if horizon == 0 {
			horizon = solvers.DefaultHorizon
		}
		if s.schedule == "uniform" {
			cfg.Steps, cfg.Horizon = s.steps, horizon
		} else {
			tMin := s.tMin
			if tMin == 0 {
				tMin = defaultDDPMTMin
			}
			grid, err := solvers.GeometricGrid(tMin, horizon, s.steps)
			if err != nil {
				return nil, usagef("--t-min %g, --horizon %g: %v", tMin, horizon, err)
			}
			cfg.Grid = grid
		}
		if s.trace {
			cfg.Thin = 1
		}
		return wrap(solvers.DDPM(b, tgt, n, dt, cfg))
	case contains(veMethods, s.method):
		cfg := solvers.DiffusionConfig{Method: s.method, Steps: steps, Schedule: s.schedule,
			SigmaMin: s.sigmaMin, SigmaMax: s.sigmaMax, Rho: s.rho, Eta: s.eta, Classic: s.classic,
			Seed: s.seed, Trajectory: s.trace, Init: s.start}
		if s.method == "edm-sde" {
			cfg.SChurn, cfg.STMin, cfg.STMax, cfg.SNoise = s.churn, s.sTMin, s.sTMax, s.sNoise
		}
		res, err := solvers.Diffusion(b, solvers.TargetDenoiser(tgt), n, dt, cfg)
		if err == nil && res.Denoised != nil { // the denoising trajectory is not written
			res.Denoised.Close()
			res.Denoised = nil
		}
		return wrap(res, err)
	case contains(rfMethods, s.method):
		cfg, err := solvers.RFConfigFor(s.method, steps)
		if err != nil {
			return nil, err
		}
		cfg.TMin, cfg.Seed, cfg.Trajectory = s.tMin, s.seed, s.trace
		return wrap(solvers.RectifiedFlow(b, tgt, n, dt, cfg))
	case s.method == "metropolis-constrained":
		return runConstrained(b, tgt, n, dt, s)
	}
	return nil, usagef("unknown method %q", s.method)
}

// runLangevin runs ula, mala or uld from x ~ N(0, I) with the defaults of sampleHelp.
func runLangevin(b ops.Backend, tgt target.Target, n int, dt tensor.DType, s samplerSpec) (*solvers.Result, error) {
	g := tgt.(target.GMM).Mixture
	lmin, d := lambdaMin(g), g.Dim()
	cfg := solvers.LangevinConfig{Method: s.method, Steps: s.steps, StepSize: s.stepSize, Seed: s.seed}
	switch s.method {
	case "ula":
		if cfg.StepSize == 0 {
			cfg.StepSize = defaultULAStepFactor * lmin
		}
	case "mala":
		if cfg.StepSize == 0 {
			cfg.Adapt = s.steps >= 2
			cfg.StepSize = defaultMALAStepFactor * lmin * math.Cbrt(1/float64(d))
		}
	case "uld":
		if cfg.StepSize == 0 {
			cfg.StepSize = defaultULDStepFactor * math.Sqrt(lmin)
		}
		cfg.Friction = s.friction
		if cfg.Friction == 0 {
			cfg.Friction = defaultULDFriction / math.Sqrt(lmin)
		}
	}
	if s.trace {
		cfg.Thin = 1
	}
	x0, err := tensor.New(b.Device(), dt, n, d)
	if err != nil {
		return nil, fmt.Errorf("allocate the initial state (%d, %d): %w", n, d, err)
	}
	defer x0.Close()
	// x0 ~ N(0, I) at Site(0, PurposeInit), the start RTK and DDPM draw too.
	if err := b.Normal(x0, ops.Draw{Seed: s.seed, Site: solvers.Site(0, solvers.PurposeInit)}); err != nil {
		return nil, fmt.Errorf("initial state: %w", err)
	}
	return solvers.Langevin(b, tgt, x0, cfg)
}

// constrainedStart returns the n initial states of metropolis-constrained in dtype dt on the
// host: s.init, or the uniform law on the box or ball (solvers.SampleUniform with the run's
// seed), rows that rounding to dt moved out of the domain pulled back in.
func constrainedStart(s samplerSpec, n, d int, dt tensor.DType) (*tensor.Tensor, error) {
	vals := s.init
	if vals == nil {
		var err error
		if vals, err = solvers.SampleUniform(s.domain, n, s.seed); err != nil {
			return nil, err
		}
		vals = roundInside(s.domain, vals, d, dt)
	}
	return tensor.FromFloat64s(dt, vals, n, d)
}

// roundInside returns x (rows of d values in the domain) as dt rounds it, every row that rounding
// moved outside pulled towards the domain's centre until it lies inside again.
func roundInside(dom *ops.Domain, x []float64, d int, dt tensor.DType) []float64 {
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

// defaultConstrainedHorizon is the default noise time T of metropolis-constrained: 0.6·D² for a
// box or ball of diameter D, long enough for the forward walk (reflected Brownian motion, generator
// ½Δ) to forget its start — its slowest mode decays as exp(−π² T/(2L²)) on a side of length
// L ≤ D, by e^{−3} at T = 0.6 L², and faster on a ball — so that the uniform law on M, the default
// start, is its law at time T. A polytope (whose chains start from --init) gets
// solvers.DefaultHorizon.
func defaultConstrainedHorizon(dom *ops.Domain) float64 {
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
	return solvers.DefaultHorizon
}

// runConstrained runs metropolis-constrained (solvers.ConstrainedSample) with K steps.
func runConstrained(b ops.Backend, tgt target.Target, n int, dt tensor.DType, s samplerSpec) (*sampleRun, error) {
	d := tgt.Dim()
	x0, err := constrainedStart(s, n, d, dt)
	if err != nil {
		return nil, fmt.Errorf("initial states: %w", err)
	}
	defer x0.Close()
	if b.Device() != x0.Device() {
		dev, err := x0.CopyTo(b.Device())
		if err != nil {
			return nil, fmt.Errorf("copy the initial states to %s: %w", b.Device().Name(), err)
		}
		defer dev.Close()
		x0 = dev
	}
	horizon := s.horizon
	if horizon == 0 {
		horizon = defaultConstrainedHorizon(s.domain)
	}
	cfg := solvers.ConstrainedConfig{Domain: s.domain, Steps: s.steps, Horizon: horizon, Seed: s.seed}
	if s.trace {
		cfg.Thin = 1
	}
	res, err := solvers.ConstrainedSample(b, tgt, x0, cfg)
	if err != nil {
		return nil, err
	}
	rate := res.RejectionRate()
	return &sampleRun{Result: res.Result, methodSteps: s.steps, rejectionRate: &rate}, nil
}

// reverseRows reverses the rows of res.Trace (on the host; the result's trace becomes a host
// tensor).
func reverseRows(res *solvers.Result) error {
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

// sampleStats is the --stats JSON.
type sampleStats struct {
	Method          string   `json:"method"`
	Device          string   `json:"device"`
	DType           string   `json:"dtype"`
	N               int      `json:"n"`
	D               int      `json:"d"`
	Steps           int      `json:"steps"`
	MethodSteps     int      `json:"method_steps"`
	ScoreEvals      int64    `json:"score_evals"`
	ScoreEvalsTotal int64    `json:"score_evals_total"`
	WallSeconds     float64  `json:"wall_seconds"`
	AcceptanceRate  *float64 `json:"acceptance_rate,omitempty"`
	RejectionRate   *float64 `json:"rejection_rate,omitempty"`
	StepSize        float64  `json:"step_size,omitempty"`
	Seed            uint64   `json:"seed"`
	NaNChains       int      `json:"nan_chains"`
	NaNFirstChain   *int     `json:"nan_first_chain,omitempty"`
}

// sampleOptions are the parsed flags of `scorekit sample`.
type sampleOptions struct {
	spec                           samplerSpec
	target, out, traj, plot, stats string
	constraint, init               string
	n                              int
	dtype                          tensor.DType
	device                         string
	quiet                          bool
}

// parseSample parses and validates the flags of `scorekit sample`; it loads nothing.
func parseSample(args []string, stdout io.Writer) (sampleOptions, error) {
	fs := newFlagSet("scorekit sample")
	var (
		o                    sampleOptions
		n, steps             int64
		segments             int64
		dtype                string
		stepSize             float64
		friction             float64
		stepScale            float64
		horizon              float64
		tMin                 float64
		schedule             string
		method, targ         string
		sigmaMin, sigmaMax   float64
		rho, eta             float64
		churn, sTMin, sTMax  float64
		sNoise               float64
		classic              bool
		constraint, initFile string
	)
	fs.StringVar(&targ, "target", "", "")
	fs.StringVar(&method, "method", "", "")
	fs.Int64Var(&n, "n", 0, "")
	fs.Int64Var(&steps, "steps", 0, "")
	fs.Uint64Var(&o.spec.seed, "seed", 0, "")
	fs.StringVar(&dtype, "dtype", "f32", "")
	fs.StringVar(&o.device, "device", "auto", "")
	fs.StringVar(&o.out, "out", "", "")
	fs.StringVar(&o.traj, "trajectory", "", "")
	fs.StringVar(&o.plot, "plot", "", "")
	fs.StringVar(&o.stats, "stats", "", "")
	fs.BoolVar(&o.quiet, "quiet", false, "")
	fs.Float64Var(&stepSize, "step-size", 0, "")
	fs.Float64Var(&friction, "friction", 0, "")
	fs.Int64Var(&segments, "segments", int64(solvers.DefaultSegments), "")
	fs.Float64Var(&stepScale, "step-scale", 0, "")
	fs.Float64Var(&horizon, "horizon", solvers.DefaultHorizon, "")
	fs.StringVar(&schedule, "schedule", "", "")
	fs.Float64Var(&tMin, "t-min", defaultDDPMTMin, "")
	fs.Float64Var(&sigmaMin, "sigma-min", solvers.DefaultSigmaMin, "")
	fs.Float64Var(&sigmaMax, "sigma-max", solvers.DefaultSigmaMax, "")
	fs.Float64Var(&rho, "rho", solvers.DefaultRho, "")
	fs.Float64Var(&eta, "eta", 0, "")
	fs.Float64Var(&churn, "churn", solvers.DefaultSChurn, "")
	fs.Float64Var(&sTMin, "s-tmin", solvers.DefaultSTMin, "")
	fs.Float64Var(&sTMax, "s-tmax", solvers.DefaultSTMax, "")
	fs.Float64Var(&sNoise, "s-noise", solvers.DefaultSNoise, "")
	fs.BoolVar(&classic, "classic", false, "")
	fs.StringVar(&constraint, "constraint", "", "")
	fs.StringVar(&initFile, "init", "", "")
	if err := parse(fs, args, stdout, sampleHelp); err != nil {
		return o, err
	}
	if targ == "" {
		return o, usagef("--target is required (a target file, see scorekit score --help)")
	}
	o.target = targ
	switch {
	case method == "":
		return o, usagef("--method is required (available: %s)", strings.Join(sampleMethods, ", "))
	case contains(plannedSampleMethods, method):
		return o, usagef("--method %s is not available in this version (available: %s)", method,
			strings.Join(sampleMethods, ", "))
	case !contains(sampleMethods, method):
		return o, usagef("--method: unknown method %q (available: %s)", method, strings.Join(sampleMethods, ", "))
	}
	o.spec.method = method
	switch {
	case !isSet(fs, "n"):
		return o, usagef("--n is required (the number of chains)")
	case n < 1 || n > ops.MaxChains:
		return o, usagef("--n must be in [1, 2^32] (got %d)", n)
	case !isSet(fs, "steps"):
		return o, usagef("--steps is required (the score-evaluation budget per chain)")
	case steps < 1:
		return o, usagef("--steps must be ≥ 1 (got %d)", steps)
	case uint64(steps) >= solvers.MaxSteps:
		return o, usagef("--steps must be < %d (got %d)", uint64(solvers.MaxSteps), steps)
	}
	o.n, o.spec.steps = int(n), int(steps)
	var err error
	if o.dtype, err = parseDTypeFlag(dtype); err != nil {
		return o, err
	}
	if err := checkDeviceFlag(o.device); err != nil {
		return o, err
	}
	positive := func(name string, v float64) error {
		if isSet(fs, name) && !(v > 0 && !math.IsInf(v, 0)) {
			return usagef("--%s must be a finite number > 0 (got %g)", name, v)
		}
		return nil
	}
	only := func(name string, methods ...string) error {
		if isSet(fs, name) && !contains(methods, method) {
			return usagef("--%s applies to %s, not to --method %s", name, strings.Join(methods, ", "), method)
		}
		return nil
	}
	noiseLevel := veMethods
	for _, c := range []struct {
		name     string
		v        float64
		positive bool
		methods  []string
	}{
		{"step-size", stepSize, true, langevinMethods},
		{"friction", friction, true, []string{"uld", "rtk-uld"}},
		{"step-scale", stepScale, true, rtkMethods},
		{"horizon", horizon, true, []string{"rtk-mala", "rtk-uld", "ddpm", "metropolis-constrained"}},
		{"t-min", tMin, true, []string{"ddpm", "rf-lowdim", "rf-stochastic"}},
		{"segments", float64(segments), true, rtkMethods},
		{"sigma-min", sigmaMin, true, noiseLevel},
		{"sigma-max", sigmaMax, true, noiseLevel},
		{"rho", rho, true, noiseLevel},
		{"eta", eta, false, []string{"ddim"}},
		{"churn", churn, true, []string{"edm-sde"}},
		{"s-tmin", sTMin, false, []string{"edm-sde"}},
		{"s-tmax", sTMax, false, []string{"edm-sde"}},
		{"s-noise", sNoise, true, []string{"edm-sde"}},
		{"classic", 0, false, []string{"dpmpp-3m", "ipndm"}},
		{"constraint", 0, false, []string{"metropolis-constrained"}},
		{"schedule", 0, false, append([]string{"ddpm"}, noiseLevel...)},
	} {
		if err := only(c.name, c.methods...); err != nil {
			return o, err
		}
		if c.positive {
			if err := positive(c.name, c.v); err != nil {
				return o, err
			}
		}
	}
	if segments > 1<<20 {
		return o, usagef("--segments must be in [1, 2^20] (got %d)", segments)
	}
	switch {
	case method == "ddpm":
		if schedule == "" {
			schedule = "geometric"
		}
		if !contains(ddpmSchedules, schedule) {
			return o, usagef("--schedule must be geometric or uniform for ddpm (got %q)", schedule)
		}
		if schedule == "geometric" && !(tMin < horizon) {
			return o, usagef("--t-min %g must be below --horizon %g", tMin, horizon)
		}
	case contains(noiseLevel, method):
		if schedule == "" {
			schedule = solvers.ScheduleEDM
		}
		if !contains(veSchedules, schedule) {
			return o, usagef("--schedule must be %s for %s (got %q)", strings.Join(veSchedules, ", "), method, schedule)
		}
		if isSet(fs, "rho") && schedule != solvers.ScheduleEDM {
			return o, usagef("--rho applies to --schedule edm, not to --schedule %s", schedule)
		}
		if !(sigmaMin < sigmaMax) {
			return o, usagef("--sigma-min %g must be below --sigma-max %g", sigmaMin, sigmaMax)
		}
	}
	if isSet(fs, "t-min") && contains(rfMethods, method) && !(tMin < 0.5) {
		return o, usagef("--t-min must be in (0, 1/2) for %s (got %g)", method, tMin)
	}
	if isSet(fs, "eta") && !(eta >= 0 && eta <= 1) {
		return o, usagef("--eta must be in [0, 1] (got %g)", eta)
	}
	if method == "edm-sde" {
		if !(sTMin >= 0) || math.IsInf(sTMin, 0) {
			return o, usagef("--s-tmin must be a finite number ≥ 0 (got %g)", sTMin)
		}
		if !(sTMax > sTMin) {
			return o, usagef("--s-tmax %g must be above --s-tmin %g", sTMax, sTMin)
		}
	}
	if method == "metropolis-constrained" && constraint == "" {
		return o, usagef("--method metropolis-constrained needs --constraint C.json (the domain: a box, ball or polytope)")
	}
	fromNoise := contains(rtkMethods, method) || method == "ddpm" || contains(noiseLevel, method) || contains(rfMethods, method)
	switch {
	case !isSet(fs, "init"):
	case method == "metropolis-constrained":
		if initFile == solvers.InitExact || initFile == solvers.InitPrior {
			return o, usagef("--init %s: metropolis-constrained takes its initial states from a file (--init X0.npy), by default the uniform law on the domain", initFile)
		}
	case fromNoise:
		if initFile != solvers.InitExact && initFile != solvers.InitPrior {
			return o, usagef("--init must be exact or prior for %s (got %q)", method, initFile)
		}
		o.spec.start, initFile = initFile, ""
	default:
		return o, usagef("--init applies to rtk-mala, rtk-uld, ddpm, the noise-level methods, rf* (exact|prior) and metropolis-constrained (a file), not to --method %s", method)
	}
	sp := &o.spec
	sp.stepSize, sp.friction, sp.stepScale = stepSize, friction, stepScale
	sp.segments, sp.schedule = int(segments), schedule
	if contains([]string{"rtk-mala", "rtk-uld", "ddpm"}, method) || isSet(fs, "horizon") {
		sp.horizon = horizon // metropolis-constrained: 0 is defaultConstrainedHorizon
	}
	if method == "ddpm" || isSet(fs, "t-min") {
		sp.tMin = tMin
	}
	if contains(noiseLevel, method) {
		sp.sigmaMin, sp.sigmaMax = sigmaMin, sigmaMax
		if schedule == solvers.ScheduleEDM {
			sp.rho = rho
		}
	}
	sp.eta, sp.classic = eta, classic
	if method == "edm-sde" {
		sp.churn, sp.sTMin, sp.sTMax, sp.sNoise = churn, sTMin, sTMax, sNoise
		if sTMin == 0 { // 0 is the library's "default": the least positive level churns from σ > 0 on
			sp.sTMin = math.SmallestNonzeroFloat64
		}
	}
	sp.trace = o.traj != ""
	o.constraint, o.init = constraint, initFile
	if err := checkOutputs(o.out, []namedPath{{"--trajectory", o.traj}, {"--plot", o.plot}, {"--stats", o.stats}}); err != nil {
		return o, err
	}
	return o, nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// runSample is `scorekit sample`.
func runSample(args []string, stdout, stderr io.Writer) int {
	return exitStatus(stderr, "scorekit sample", sample(args, stdout, stderr))
}

// loadInit reads --init: an (n, d) array whose rows, rounded to dt, lie inside dom.
func loadInit(path string, n, d int, dt tensor.DType, dom *ops.Domain) ([]float64, error) {
	x, err := tensor.ReadNpy(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, usagef("--init %s: cannot read the initial states: %v", path, pe.Err)
		}
		return nil, usagef("--init %v", err)
	}
	defer x.Close()
	if x.Rank() != 2 || x.Dim(0) != n || x.Dim(1) != d {
		return nil, usagef("--init %s has shape %v, want (%d, %d) (--n, the target's dimension)", path, x.Shape(), n, d)
	}
	v, err := x.Float64s()
	if err != nil {
		return nil, usagef("--init %s: %v", path, err)
	}
	r, err := tensor.FromFloat64s(dt, v, n, d)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if v, err = r.Float64s(); err != nil {
		return nil, err
	}
	if err := checkInside("--init "+path, dom, v, d); err != nil {
		return nil, err
	}
	return v, nil
}

func sample(args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseSample(args, stdout)
	if err != nil {
		return err
	}
	tgt, err := target.Load(o.target)
	if err != nil {
		return usagef("--target %v", err)
	}
	d := tgt.Dim()
	if o.constraint != "" {
		if o.spec.domain, err = loadConstraint(o.constraint); err != nil {
			return err
		}
		if o.spec.domain.Dim() != d {
			return usagef("--constraint %s: the %v has dimension %d, the target %d", o.constraint,
				o.spec.domain.Kind(), o.spec.domain.Dim(), d)
		}
	}
	if o.init != "" {
		if o.spec.init, err = loadInit(o.init, o.n, d, o.dtype, o.spec.domain); err != nil {
			return err
		}
	}
	steps, err := checkSpec(o.spec, tgt)
	if err != nil {
		return err
	}
	var g *ops.GMM
	var ref []float64 // the data points of an empirical target, drawn under the samples
	switch tt := tgt.(type) {
	case target.GMM:
		g = tt.Mixture
	case target.Empirical:
		if o.plot != "" && d >= 2 {
			ref = empiricalPoints(tt.DataSet, maxRefPoints)
		}
	}
	if o.plot != "" && d < 2 {
		return usagef("--plot draws targets of dimension ≥ 2 (the target is %s)", tgt)
	}
	b, cleanup, err := openBackend(o.device, o.quiet, stderr)
	if err != nil {
		return err
	}
	defer closeBackend(cleanup, &err)
	rows := int64(1)
	if o.spec.trace {
		rows += int64(steps) + 1
		if contains(veMethods, o.spec.method) {
			rows += int64(steps) // the denoising trajectory, kept while the run lasts
		}
	}
	if err := checkFits(b.Device(), rows*int64(o.n)*int64(d)*int64(o.dtype.Size()),
		fmt.Sprintf("--n %d × d %d (× %d rows with --trajectory) of %v", o.n, d, rows, o.dtype)); err != nil {
		return err
	}

	start := time.Now()
	res, err := runSampler(b, tgt, o.n, o.dtype, o.spec)
	if err != nil {
		return fmt.Errorf("%s: %w", o.spec.method, err)
	}
	defer res.Close()
	if err := b.Device().Synchronize(); err != nil {
		return err
	}
	wall := time.Since(start)

	st := sampleStats{Method: o.spec.method, Device: b.Device().Name(), DType: o.dtype.String(), N: o.n, D: d,
		Steps: o.spec.steps, MethodSteps: res.methodSteps, ScoreEvals: res.ScoreEvals / int64(o.n),
		ScoreEvalsTotal: res.ScoreEvals, WallSeconds: wall.Seconds(), StepSize: res.StepSize, Seed: o.spec.seed,
		NaNChains: res.NaN.Chains, RejectionRate: res.rejectionRate}
	if res.Accept != nil {
		if a := res.AcceptMean(); !math.IsNaN(a) {
			st.AcceptanceRate = &a
		}
	}
	if res.NaN.Chains > 0 {
		first := res.NaN.First
		st.NaNFirstChain = &first
		fmt.Fprintf(stderr, "scorekit sample: warning: %d of %d chains turned NaN or ±Inf (first: chain %d); they are in the output as they are\n",
			res.NaN.Chains, o.n, first)
	}
	// Everything is rendered before anything is written.
	var statsJSON, png []byte
	if o.stats != "" {
		if statsJSON, err = renderStats(st); err != nil {
			return err
		}
	}
	if o.plot != "" {
		if png, err = samplePlot(o, res, g, ref, d, st.ScoreEvals); err != nil {
			return err
		}
	}
	written, err := writeOutputs([]npyOutput{{o.out, res.Samples}, {o.traj, res.Trace}},
		[]fileOutput{{o.stats, statsJSON}, {o.plot, png}})
	if err != nil {
		return err
	}
	if !o.quiet {
		extra := ""
		if st.AcceptanceRate != nil {
			extra = fmt.Sprintf(", acceptance %.3f", *st.AcceptanceRate)
		}
		if st.RejectionRate != nil {
			extra = fmt.Sprintf(", rejection rate %.3f", *st.RejectionRate)
		}
		fmt.Fprintf(stderr, "scorekit: %s: %d chains × d %d, %d steps, %d score evaluations per chain%s, %v; wrote %s\n",
			o.spec.method, o.n, d, res.methodSteps, st.ScoreEvals, extra, wall.Round(time.Millisecond), strings.Join(written, ", "))
	}
	return nil
}

// samplePlot renders --plot: the samples over the density contours (gmm) or the data points
// (empirical) and the constraint's outline; with a trajectory, a second panel of trajectories.
func samplePlot(o sampleOptions, res *sampleRun, g *ops.GMM, ref []float64, d int, evals int64) ([]byte, error) {
	x, err := res.Samples.Float64s()
	if err != nil {
		return nil, err
	}
	title := fmt.Sprintf("%s, %d score evals/chain", o.spec.method, evals)
	panels := []scatterPanel{{title: title, x: x, d: d, ref: ref, domain: o.spec.domain}}
	if res.Trace != nil {
		paths, err := tracePaths(res.Trace, maxPlotPaths)
		if err != nil {
			return nil, err
		}
		panels = append(panels, scatterPanel{
			title: fmt.Sprintf("%s: trajectories of %d of %d chains", o.spec.method, len(paths), o.n),
			d:     d, ref: ref, domain: o.spec.domain, paths: paths})
	}
	return renderScatter(panels, g, len(panels))
}
