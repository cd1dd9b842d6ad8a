package solvers

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The diffusion methods (docs/math.md §5.1, §5.2), run by Diffusion on a Denoiser.
const (
	MethodEuler   = "euler"
	MethodHeun    = "heun"
	MethodDPM2    = "dpm2"
	MethodDPMPP2M = "dpmpp-2m"
	MethodDPMPP3M = "dpmpp-3m"
	MethodIPNDM   = "ipndm"
	MethodEDMSDE  = "edm-sde"
	MethodDDIM    = "ddim"
	// MethodDDPM is ancestral sampling on the VP parametrisation through a Denoiser (the DDPM
	// function is a different sampler: the exponential integrator of the reverse OU SDE, driven by
	// a target's score).
	MethodDDPM = "ddpm"
)

// DiffusionMethods returns the methods of Diffusion, in the order the documentation lists them.
func DiffusionMethods() []string {
	return []string{MethodEuler, MethodHeun, MethodDPM2, MethodDPMPP2M, MethodDPMPP3M, MethodIPNDM,
		MethodEDMSDE, MethodDDIM, MethodDDPM}
}

// Defaults of the stochastic EDM sampler (Karras et al. 2022, Algorithm 2). S_churn, S_tmin and
// S_tmax are the paper's settings for ImageNet-64 (Table 5: 40, 0.05, 50). The paper's S_noise =
// 1.003 inflates the fresh noise slightly to offset a learned denoiser's tendency to remove too
// much of it; the exact denoisers of this package remove exactly the right amount, so the default
// here is S_noise = 1 (set 1.003 for a learned network).
const (
	DefaultSChurn = 40.0
	DefaultSTMin  = 0.05
	DefaultSTMax  = 50.0
	DefaultSNoise = 1.0
)

// MaxDiffusionSteps bounds DiffusionConfig.Steps (the grid is held on the host, one float64 per
// level).
const MaxDiffusionSteps = 1 << 24

// DiffusionConfig configures Diffusion. Method and a grid (Steps, or Sigmas) must be given;
// every other zero field means its default.
type DiffusionConfig struct {
	// Method is one of DiffusionMethods() (see Diffusion for each one's update and cost).
	Method string
	// Steps K ≥ 1 is the number of grid intervals σ_0 → σ_1 → … → σ_K of a schedule. With
	// Sigmas it may be left 0 (or must equal len(Sigmas) − 1).
	Steps int
	// Schedule is ScheduleEDM (default), ScheduleLogSNR or ScheduleTime: the grid of K+1 levels
	// from SigmaMax (default DefaultSigmaMax) down to SigmaMin (default DefaultSigmaMin), then 0.
	// Rho (default DefaultRho) is the exponent of ScheduleEDM and is refused by the others.
	Schedule           string
	SigmaMin, SigmaMax float64
	Rho                float64
	// Sigmas, when not nil, is the grid itself (see CheckSigmas: strictly decreasing, positive,
	// the last level may be 0), instead of Schedule, SigmaMin, SigmaMax and Rho.
	Sigmas []float64
	// SChurn, STMin, STMax and SNoise are the parameters of "edm-sde" (defaults DefaultSChurn,
	// DefaultSTMin, DefaultSTMax, DefaultSNoise; refused by the other methods). Step i raises the
	// level to σ̂_i = (1 + γ_i) σ_i with γ_i = min(SChurn/K, √2 − 1) when STMin ≤ σ_i ≤ STMax and
	// γ_i = 0 otherwise. SChurn = 0 would make "edm-sde" the same as "heun": use "heun".
	SChurn, STMin, STMax, SNoise float64
	// Eta η ∈ [0, 1] is the stochasticity of "ddim" (0, the default, is deterministic; 1 is the
	// ancestral "ddpm" sampler). Refused by the other methods.
	Eta float64
	// Classic selects, for "dpmpp-3m" and "ipndm", the coefficients of the common implementations
	// where they differ from this package's (see Diffusion); refused by the other methods.
	Classic bool
	// Seed keys the random stream; FirstChain is the chain index of row 0 (see Site: the initial
	// state is drawn at Site(0, PurposeInit), the fresh noise of step i at Site(i,
	// PurposeDiffusion)), so a run split into batches of chains reproduces the single run.
	Seed, FirstChain uint64
	// Trajectory keeps the sampling trajectory in Result.Trace, (K+1, N, d), row i the state x_i
	// at σ_i (row 0 the initial state), and the denoising trajectory in Result.Denoised, (K, N, d),
	// row i = D(x_i; σ_i).
	Trajectory bool
	// X0 is the initial state (N, d) at σ_0, on the backend's device in the run's dtype (it is
	// copied, not changed). Without it the state starts as Init says.
	X0 *tensor.Tensor
	// Init is the start when X0 is nil: InitExact (default) draws the exact law of the data noised
	// to σ_0, x0 + σ_0 ξ (the denoiser must be a NoisedSampler, as TargetDenoiser's are; see
	// SampleNoised); InitPrior the Gaussian σ_0 ξ, ξ at Site(0, PurposeInit), which ignores the
	// data's mean and covariance and biases the samples by about |μ| s/σ_0.
	Init string
	// Progress, when set, receives the steps done out of Steps (see Progress).
	Progress Progress
}

// validate checks cfg for a batch of n chains, fills in the defaults and returns the grid.
func (cfg DiffusionConfig) validate(n int) (DiffusionConfig, []float64, error) {
	known := false
	for _, m := range DiffusionMethods() {
		known = known || cfg.Method == m
	}
	switch {
	case cfg.Method == "":
		return cfg, nil, fmt.Errorf("no method: set Method to one of %s", quoteAll(DiffusionMethods()))
	case !known:
		return cfg, nil, fmt.Errorf("unknown method %q (want one of %s)", cfg.Method, quoteAll(DiffusionMethods()))
	}
	var grid []float64
	if cfg.Sigmas != nil {
		if cfg.Schedule != "" || cfg.SigmaMin != 0 || cfg.SigmaMax != 0 || cfg.Rho != 0 {
			return cfg, nil, fmt.Errorf("give either Sigmas or a schedule (Schedule, SigmaMin, SigmaMax, Rho), not both")
		}
		if err := CheckSigmas(cfg.Sigmas); err != nil {
			return cfg, nil, err
		}
		if len(cfg.Sigmas)-1 > MaxDiffusionSteps {
			return cfg, nil, fmt.Errorf("%d steps: at most %d", len(cfg.Sigmas)-1, MaxDiffusionSteps)
		}
		if cfg.Steps != 0 && cfg.Steps != len(cfg.Sigmas)-1 {
			return cfg, nil, fmt.Errorf("steps = %d, but the %d levels of Sigmas make %d steps", cfg.Steps, len(cfg.Sigmas), len(cfg.Sigmas)-1)
		}
		grid = append([]float64(nil), cfg.Sigmas...)
	} else {
		if cfg.Steps < 1 {
			return cfg, nil, fmt.Errorf("steps = %d: need at least one step", cfg.Steps)
		}
		if cfg.Steps > MaxDiffusionSteps {
			return cfg, nil, fmt.Errorf("steps = %d: at most %d", cfg.Steps, MaxDiffusionSteps)
		}
		if cfg.Schedule == "" {
			cfg.Schedule = ScheduleEDM
		}
		if cfg.SigmaMin == 0 {
			cfg.SigmaMin = DefaultSigmaMin
		}
		if cfg.SigmaMax == 0 {
			cfg.SigmaMax = DefaultSigmaMax
		}
		if cfg.Schedule == ScheduleEDM && cfg.Rho == 0 {
			cfg.Rho = DefaultRho
		}
		if cfg.Schedule != ScheduleEDM && cfg.Rho != 0 {
			return cfg, nil, fmt.Errorf("rho = %g: only the %q schedule takes rho", cfg.Rho, ScheduleEDM)
		}
		var err error
		if grid, err = Sigmas(cfg.Schedule, cfg.Steps, cfg.SigmaMin, cfg.SigmaMax, cfg.Rho); err != nil {
			return cfg, nil, err
		}
		// σ_min and σ_max so close (or ρ so large) that neighbouring levels round to the same
		// number would make empty steps and infinite multistep coefficients.
		if err := CheckSigmas(grid); err != nil {
			return cfg, nil, fmt.Errorf("%s schedule with %d steps on [%g, %g]: %w", cfg.Schedule, cfg.Steps, cfg.SigmaMin, cfg.SigmaMax, err)
		}
	}
	if cfg.Method == MethodEDMSDE {
		if cfg.SChurn == 0 {
			cfg.SChurn = DefaultSChurn
		}
		if cfg.STMin == 0 {
			cfg.STMin = DefaultSTMin
		}
		if cfg.STMax == 0 {
			cfg.STMax = DefaultSTMax
		}
		if cfg.SNoise == 0 {
			cfg.SNoise = DefaultSNoise
		}
		if !finitePositive(cfg.SChurn) {
			return cfg, nil, fmt.Errorf("edm-sde: s_churn = %g: must be a finite number > 0 (0 means the default %g; for no churn use %q)", cfg.SChurn, DefaultSChurn, MethodHeun)
		}
		if !(cfg.STMin >= 0) || math.IsInf(cfg.STMin, 0) {
			return cfg, nil, fmt.Errorf("edm-sde: s_tmin = %g: must be a finite number ≥ 0", cfg.STMin)
		}
		if !(cfg.STMax > cfg.STMin) {
			return cfg, nil, fmt.Errorf("edm-sde: s_tmax = %g: must be > s_tmin = %g (+Inf churns at every level)", cfg.STMax, cfg.STMin)
		}
		if !finitePositive(cfg.SNoise) {
			return cfg, nil, fmt.Errorf("edm-sde: s_noise = %g: must be a finite number > 0", cfg.SNoise)
		}
	} else if cfg.SChurn != 0 || cfg.STMin != 0 || cfg.STMax != 0 || cfg.SNoise != 0 {
		return cfg, nil, fmt.Errorf("%s: s_churn, s_tmin, s_tmax and s_noise are parameters of %q only", cfg.Method, MethodEDMSDE)
	}
	switch {
	case cfg.Method == MethodDDIM:
		if !(cfg.Eta >= 0 && cfg.Eta <= 1) {
			return cfg, nil, fmt.Errorf("ddim: eta = %g: must be in [0, 1]", cfg.Eta)
		}
	case cfg.Eta != 0:
		return cfg, nil, fmt.Errorf("%s: eta is a parameter of %q only (%q is eta = 1)", cfg.Method, MethodDDIM, MethodDDPM)
	}
	if cfg.Classic && cfg.Method != MethodDPMPP3M && cfg.Method != MethodIPNDM {
		return cfg, nil, fmt.Errorf("%s: classic coefficients exist for %q and %q only", cfg.Method, MethodDPMPP3M, MethodIPNDM)
	}
	var err error
	if cfg.Init, err = checkInit(cfg.Init); err != nil {
		return cfg, nil, err
	}
	return cfg, grid, checkChains("chains", n, cfg.FirstChain)
}

// Diffusion samples n chains in dtype on b's device by running cfg.Method down a grid of VE noise
// levels σ_0 > σ_1 > … > σ_K (cfg.Sigmas or the schedule's, ending at 0), every method on the
// same Denoiser D (docs/math.md §5.1, §5.2). The state starts at σ_0 (cfg.X0, default σ_0 ξ) and
// step i moves it from σ_i to σ_{i+1}; the samples are the state at σ_K.
//
// The state starts from the exact law of the data noised to σ_0, p_{σ_0} = p0 ∗ N(0, σ_0² I)
// (cfg.Init = InitExact, the default), or from N(0, σ_0² I) (InitPrior), the usual approximation,
// which ignores the data's mean μ and covariance and biases the samples by about μ s/σ_0 (s the
// data's scale) at any number of steps.
//
// The VE probability-flow ODE is dx/dσ = (x − D(x; σ))/σ: for data N(μ, s²) its solution is
// x(σ) = μ + (x(σ') − μ) sqrt((s² + σ²)/(s² + σ'²)), the closed form the tests measure orders
// against. Write r = σ_{i+1}/σ_i, h_σ = σ_{i+1} − σ_i, D_i = D(x_i; σ_i), d_i = (x_i − D_i)/σ_i,
// λ = −log σ and h = λ_{i+1} − λ_i = log(σ_i/σ_{i+1}). Every update below is an affine
// combination of the state and denoiser outputs with coefficients computed in float64 on the host,
// run as one ops.Backend.Combine call (one launch on a GPU); so are the second-stage points of
// heun, dpm2 and edm-sde, the churn of edm-sde, and iPNDM's derivative d_i (its history is of
// derivatives, which states and denoiser outputs could give only with more than ops.MaxTerms
// terms). Cost is counted in denoiser evaluations per chain (Result.ScoreEvals/N), here for a
// grid ending at 0:
//
//	euler     x_{i+1} = x_i + h_σ d_i = r x_i + (1 − r) D_i                       K
//	heun      EDM Algorithm 1: the Euler predictor x̃ = r x_i + (1 − r) D_i, then
//	          x_{i+1} = x_i + h_σ (d_i + d̃)/2, d̃ = (x̃ − D̃)/σ_{i+1}, D̃ = D(x̃; σ_{i+1}), i.e.
//	          x_{i+1} = r x_i − h_σ(2σ_{i+1} − σ_i)/(2σ_iσ_{i+1}) D_i − h_σ/(2σ_{i+1}) D̃;
//	          no corrector on the last step to σ = 0 (there x_{i+1} = D_i)            2K − 1
//	dpm2      DPM-Solver-2 as k-diffusion's sample_dpm_2: Euler to the geometric
//	          midpoint σ_m = sqrt(σ_iσ_{i+1}), x_m = (σ_m/σ_i) x_i + (1 − σ_m/σ_i) D_i, then
//	          x_{i+1} = x_i + h_σ (x_m − D(x_m; σ_m))/σ_m; Euler on the last step            2K − 1
//	dpmpp-2m  DPM-Solver++(2M) as k-diffusion's sample_dpmpp_2m: with q = h_{i−1}/h,
//	          x_{i+1} = r x_i + (1 − e^{−h}) ((1 + 1/(2q)) D_i − 1/(2q) D_{i−1});
//	          first order (D_{i−1} dropped) on the first step, x_{i+1} = D_i on the last     K
//	dpmpp-3m  DPM-Solver++(3M), the multistep exponential integrator of third order:
//	          x_{i+1} = r x_i + h φ1(−h) D_i + h φ2(−h) Δ1 + 2h φ3(−h) Δ2, where Δ1 ≈ h D_λ
//	          and Δ2 ≈ h² D_λλ/2 are the divided differences of k-diffusion's
//	          sample_dpmpp_3m_sde (η = 0) over D_i, D_{i−1}, D_{i−2} in λ and
//	          φ_k(z) = Σ_j z^j/(j+k)! (φ1(−h) h = 1 − e^{−h}); orders 1 and 2 on the first
//	          two steps, x_{i+1} = D_i on the last                                           K
//	ipndm     iPNDM (Zhang & Chen 2023; Zhou et al. 2024): Adams–Bashforth in σ on the
//	          derivatives, x_{i+1} = x_i + Σ_k w_k d_{i−k} over q = min(i + 1, 4) of them
//	          (the lower orders are the warm start), w_k = ∫_{σ_i}^{σ_{i+1}} ℓ_k(σ) dσ for
//	          the Lagrange basis ℓ_k on σ_i … σ_{i−q+1} (the variable-step weights; on a
//	          grid uniform in σ they are the classic h_σ·(55, −59, 37, −9)/24 etc.)        K
//	edm-sde   EDM Algorithm 2: raise the level to σ̂ = (1 + γ_i) σ_i with fresh noise,
//	          x̂ = x_i + S_noise sqrt(σ̂² − σ_i²) ξ (Site(i, PurposeDiffusion); no draw when
//	          γ_i = 0), then the heun step from (x̂, σ̂) to σ_{i+1}                         2K − 1
//	ddim      DDIM with η ∈ [0, 1] on the VP parametrisation (below)                       K
//	ddpm      ancestral sampling, DDIM with η = 1                                          K
//
// On a grid that stops at σ_K > 0, heun, dpm2 and edm-sde take 2K evaluations.
//
// Two methods have a choice of coefficients, and cfg.Classic selects the other one:
// (1) k-diffusion's and DPM-Solver's third-order multistep update weighs Δ2 by −φ3 = h φ3(−h),
// half of the Taylor weight 2h φ3(−h) (their Δ2 is h² D_λλ/2, not h² D_λλ): the update is then
// exact only for D linear in λ and the method is of second order (its measured slope drifts from
// ≈ 3 at a few steps to 2). This package uses the exact weight, but on the EDM grid the common
// weight is the more accurate at practical step counts — about 3× lower error at 16 and 32 steps
// on the order test, the exact weight winning from 64 steps on — while on the log-SNR grid the
// exact weight wins at every count (docs/diffusion-orders.md). (2) iPNDM's default here is the
// variable-step Adams–Bashforth method in σ (weights recomputed from the grid, as k-diffusion's
// lms sampler does; the reference implementation of iPNDM ships a variable-step variant, ipndm_v,
// beside the fixed-weight one); Classic is the fixed-weight form, the Adams–Bashforth weights of a
// uniform grid applied on any grid, which is of second order on the non-uniform EDM grid.
// Both multistep methods (and dpmpp-2m) start with lower-order steps, as published; their
// O(h_0²) start-up error has a constant proportional to the rate of change of D at σ_0 (O(1/σ_0))
// and shows only at very many steps on grids with a long first step (docs/diffusion-orders.md).
//
// VP methods. ddim and ddpm sample x_t = α_t x0 + s_t ε (α_t² + s_t² = 1) on the grid mapped by
// VPFromSigma: level σ_i is OU time t_i = ½ log(1 + σ_i²) with α_i = 1/sqrt(1 + σ_i²), s_i = σ_i α_i,
// and the VP denoiser is x̂0 = D(x_t/α_t; σ_i). The DDIM step (Song et al. 2021, eq. 12) from t
// (level σ_i) to s (σ_{i+1}) is
//
//	x_s = α_s x̂0 + sqrt(s_s² − c²) (x_t − α_t x̂0)/s_t + c ξ,
//	c = η (s_s/s_t) sqrt(1 − α_t²/α_s²)
//
// (η = 1: c² is the variance of q(x_s | x_t, x0), so the step draws from that posterior at
// x0 = x̂0: ancestral DDPM sampling with the posterior variance β̃). The state is kept in the VE
// coordinates y = x_t/α_t — Trace row i times α_i is the VP state — where the same step reads
//
//	y_{i+1} = x̂0 + (σ_{i+1}/σ_i) sqrt((1 − η²) σ_i² + η² σ_{i+1}²)/σ_i · (y_i − x̂0) + c̃ ξ,
//	c̃ = c/α_s = η (σ_{i+1}/σ_i) sqrt(σ_i² − σ_{i+1}²),
//
// with no scaling of the state before the denoiser (one Combine per step). With η = 0 this is the
// Euler step: DDIM is Euler's method in the VE coordinates, exactly. Fresh noise is drawn at
// Site(i, PurposeDiffusion); the last step to σ = 0 has c = 0 and ends at x̂0.
//
// Result: Samples (N, d), Sigmas (the grid), Evals, the NaN report (checked on every trajectory
// row with Trajectory, on the samples otherwise) and, with cfg.Trajectory, Trace (K+1, N, d),
// TraceSteps 0 … K and Denoised (K, N, d) with row i = D(x_i; σ_i) — for edm-sde the output used
// by step i, D(x̂_i; σ̂_i).
func Diffusion(b ops.Backend, den Denoiser, n int, dtype tensor.DType, cfg DiffusionConfig) (*Result, error) {
	op := "diffusion"
	if cfg.Method != "" {
		op = "diffusion " + cfg.Method
	}
	if b == nil {
		return nil, fmt.Errorf("%s: nil backend", op)
	}
	if den == nil {
		return nil, fmt.Errorf("%s: nil denoiser", op)
	}
	if dtype != tensor.F32 && dtype != tensor.F64 {
		return nil, fmt.Errorf("%s: dtype %v: want f32 or f64", op, dtype)
	}
	cfg, grid, err := cfg.validate(n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if x0 := cfg.X0; x0 != nil {
		if err := checkState(op, "initial state", b, den, x0, n, dtype); err != nil {
			return nil, err
		}
	}
	res, err := runDiffusion(b, den, n, dtype, cfg, grid, cfg.X0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return res, nil
}

// DiffusionEncode runs a deterministic method of cfg up the grid instead of down: from the data
// x (N, d), taken as the state at the smallest positive level of cfg's grid, to σ_0 (DDIM
// inversion for "ddim"; every deterministic method is allowed: euler, heun, dpm2, dpmpp-2m,
// dpmpp-3m, ipndm, ddim with η = 0). The updates are those of Diffusion on the reversed grid
// without its final 0 (Result.Sigmas is that increasing grid, so a grid ending at 0 of K steps
// encodes in K − 1). Decoding the result with Diffusion (X0 = the samples, the same grid without
// its 0) returns to x up to the discretisation error of the two passes, which vanishes as the
// steps grow. cfg.X0 must be nil; cfg.Trajectory works as in Diffusion.
func DiffusionEncode(b ops.Backend, den Denoiser, x *tensor.Tensor, cfg DiffusionConfig) (*Result, error) {
	op := "diffusion encode"
	if cfg.Method != "" {
		op = "diffusion encode " + cfg.Method
	}
	if b == nil {
		return nil, fmt.Errorf("%s: nil backend", op)
	}
	if den == nil {
		return nil, fmt.Errorf("%s: nil denoiser", op)
	}
	if x == nil || x.Closed() || x.Rank() != 2 {
		return nil, fmt.Errorf("%s: data is nil, closed or not (N, d)", op)
	}
	n, dtype := x.Dim(0), x.DType()
	if err := checkState(op, "data", b, den, x, n, dtype); err != nil {
		return nil, err
	}
	if cfg.X0 != nil {
		return nil, fmt.Errorf("%s: X0 must be nil: the data is the starting state", op)
	}
	switch cfg.Method {
	case MethodEDMSDE, MethodDDPM:
		return nil, fmt.Errorf("%s: %q is stochastic: encoding needs a deterministic method", op, cfg.Method)
	case MethodDDIM:
		if cfg.Eta != 0 {
			return nil, fmt.Errorf("%s: eta = %g: encoding needs the deterministic ddim (eta = 0)", op, cfg.Eta)
		}
	}
	cfg, grid, err := cfg.validate(n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if grid[len(grid)-1] == 0 {
		grid = grid[:len(grid)-1]
	}
	if len(grid) < 2 {
		return nil, fmt.Errorf("%s: the grid has %d positive level(s): encoding needs at least two", op, len(grid))
	}
	for i, j := 0, len(grid)-1; i < j; i, j = i+1, j-1 {
		grid[i], grid[j] = grid[j], grid[i]
	}
	res, err := runDiffusion(b, den, n, dtype, cfg, grid, x)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return res, nil
}

// checkState validates a starting state: (n, den.Dim()), dtype, on b's device.
func checkState(op, what string, b ops.Backend, den Denoiser, x *tensor.Tensor, n int, dtype tensor.DType) error {
	switch {
	case x.Closed():
		return fmt.Errorf("%s: %s: %w", op, what, tensor.ErrClosed)
	case x.Device() != b.Device():
		return fmt.Errorf("%s: %s is on %s, the backend runs on %s", op, what, x.Device().Name(), b.Device().Name())
	case x.DType() != dtype:
		return fmt.Errorf("%s: %s is %v, the run is %v", op, what, x.DType(), dtype)
	case x.Rank() != 2 || x.Dim(0) != n || x.Dim(1) != den.Dim():
		return fmt.Errorf("%s: %s has shape %v, want (%d, %d) (chains, dimension of %s)", op, what, x.Shape(), n, den.Dim(), den)
	}
	return nil
}

// diffusionRun is one run of a diffusion method: the grid, the state and the scratch tensors.
type diffusionRun struct {
	b    ops.Backend
	den  Denoiser
	cfg  DiffusionConfig
	sig  []float64
	n, d int
	res  *Result
	// x is the state when no trajectory is kept (updated in place); with a trajectory the state
	// x_i is row i of res.Trace.
	x *tensor.Tensor
	// ring holds the last denoiser outputs when no trajectory is kept (the multistep history);
	// with one, D_i is row i of res.Denoised.
	ring []*tensor.Tensor
	// derivs holds iPNDM's last four derivatives d_i.
	derivs []*tensor.Tensor
	// stage and stageD are the second stage of heun, dpm2 and edm-sde: its point and D there.
	stage, stageD *tensor.Tensor
	owned         []*tensor.Tensor
}

// runDiffusion runs cfg.Method over grid (validated; decreasing for sampling, increasing for
// encoding) from x0 (nil: σ_0 ξ).
func runDiffusion(b ops.Backend, den Denoiser, n int, dtype tensor.DType, cfg DiffusionConfig, grid []float64, x0 *tensor.Tensor) (*Result, error) {
	K, d, dev := len(grid)-1, den.Dim(), b.Device()
	r := &diffusionRun{b: b, den: den, cfg: cfg, sig: grid, n: n, d: d, res: &Result{Sigmas: grid}}
	ok := false
	defer func() {
		closeAll(r.owned...)
		if !ok {
			r.res.Close()
		}
	}()
	alloc := func(what string, shape ...int) (*tensor.Tensor, error) {
		t, err := tensor.New(dev, dtype, shape...)
		if err != nil {
			return nil, fmt.Errorf("allocate %s %v: %w", what, shape, err)
		}
		return t, nil
	}
	scratch := func(what string) (*tensor.Tensor, error) {
		t, err := alloc(what, n, d)
		if err == nil {
			r.owned = append(r.owned, t)
		}
		return t, err
	}
	var err error
	if cfg.Trajectory {
		if r.res.Trace, err = alloc("the sampling trajectory", K+1, n, d); err != nil {
			return nil, err
		}
		if r.res.Denoised, err = alloc("the denoising trajectory", K, n, d); err != nil {
			return nil, err
		}
		r.res.TraceSteps = make([]int, K+1)
		for i := range r.res.TraceSteps {
			r.res.TraceSteps[i] = i
		}
	} else {
		if r.x, err = alloc("the samples", n, d); err != nil {
			return nil, err
		}
		r.res.Samples = r.x
	}
	history := map[string]int{MethodDPMPP2M: 2, MethodDPMPP3M: 3, MethodIPNDM: 0}
	rings, multistep := history[cfg.Method]
	if !multistep {
		rings = 1
	}
	if !cfg.Trajectory {
		for k := 0; k < rings; k++ {
			t, err := scratch("a denoiser output")
			if err != nil {
				return nil, err
			}
			r.ring = append(r.ring, t)
		}
	}
	if cfg.Method == MethodIPNDM {
		for k := 0; k < 4; k++ {
			t, err := scratch("an iPNDM derivative")
			if err != nil {
				return nil, err
			}
			r.derivs = append(r.derivs, t)
		}
	}
	switch cfg.Method {
	case MethodHeun, MethodDPM2, MethodEDMSDE:
		if r.stage, err = scratch("the second-stage point"); err != nil {
			return nil, err
		}
		if r.stageD, err = scratch("the second-stage denoiser output"); err != nil {
			return nil, err
		}
	}

	start, err := r.state(0)
	if err != nil {
		return nil, err
	}
	if x0 != nil {
		if err := start.CopyFrom(x0); err != nil {
			return nil, fmt.Errorf("copy the initial state: %w", err)
		}
	} else {
		if err := noisedStart(b, den, cfg.Init, start, 1, grid[0]*grid[0], grid[0], cfg.Seed, cfg.FirstChain); err != nil {
			return nil, err
		}
	}
	prog := newProgress(cfg.Progress, int64(K), dev)
	for i := 0; i < K; i++ {
		if err := r.step(i); err != nil {
			return nil, fmt.Errorf("step %d (sigma %g → %g): %w", i, grid[i], grid[i+1], err)
		}
		if err := prog.step(int64(i + 1)); err != nil {
			return nil, fmt.Errorf("step %d (sigma %g → %g): %w", i, grid[i], grid[i+1], err)
		}
	}
	if cfg.Trajectory {
		last, err := r.state(K)
		if err != nil {
			return nil, err
		}
		if r.res.Samples, err = last.CopyTo(dev); err != nil {
			return nil, fmt.Errorf("copy the samples: %w", err)
		}
	}
	nt := newNaNTracker(n)
	if cfg.Trajectory {
		for i := 0; i <= K; i++ {
			row, err := r.state(i)
			if err != nil {
				return nil, err
			}
			if err := nt.check(row, i); err != nil {
				return nil, err
			}
		}
	} else if err := nt.check(r.res.Samples, K); err != nil {
		return nil, err
	}
	r.res.NaN = nt.rep
	ok = true
	return r.res, nil
}

// state is the tensor that holds x_i.
func (r *diffusionRun) state(i int) (*tensor.Tensor, error) {
	if r.res.Trace == nil {
		return r.x, nil
	}
	v, err := r.res.Trace.View(i*r.n*r.d, r.n, r.d)
	if err != nil {
		return nil, fmt.Errorf("trajectory row %d: %w", i, err)
	}
	return v, nil
}

// denoised is the tensor that holds D_i = D(x_i; σ_i).
func (r *diffusionRun) denoised(i int) (*tensor.Tensor, error) {
	if r.res.Denoised == nil {
		if r.cfg.Method == MethodIPNDM {
			return r.derivs[i%len(r.derivs)], nil // turned into d_i in place
		}
		return r.ring[i%len(r.ring)], nil
	}
	v, err := r.res.Denoised.View(i*r.n*r.d, r.n, r.d)
	if err != nil {
		return nil, fmt.Errorf("denoising trajectory row %d: %w", i, err)
	}
	return v, nil
}

// denoise writes D(x; σ) into dst and counts the evaluation.
func (r *diffusionRun) denoise(dst, x *tensor.Tensor, sigma float64) error {
	if err := r.den.Denoise(r.b, dst, x, sigma); err != nil {
		return fmt.Errorf("denoiser %s at sigma %g: %w", r.den, sigma, err)
	}
	r.res.ScoreEvals += int64(r.n)
	r.res.ScoreCalls++
	return nil
}

// combine is dst = Σ C_k T_k + noise·ξ with ξ the normals of Site(step, PurposeDiffusion); terms
// with a zero coefficient are left out.
func (r *diffusionRun) combine(dst *tensor.Tensor, step int, terms ...ops.Term) error {
	return r.combineNoise(dst, step, 0, terms...)
}

func (r *diffusionRun) combineNoise(dst *tensor.Tensor, step int, noise float64, terms ...ops.Term) error {
	kept := terms[:0]
	for _, t := range terms {
		if t.C != 0 {
			kept = append(kept, t)
		}
	}
	if len(kept) == 0 { // cannot happen: every update's coefficients sum to 1
		return fmt.Errorf("update with no nonzero coefficient")
	}
	return r.b.Combine(dst, kept, noise, drawAt(r.cfg.Seed, step, PurposeDiffusion, r.cfg.FirstChain))
}

// step advances x_i at σ_i to x_{i+1} at σ_{i+1}.
func (r *diffusionRun) step(i int) error {
	x, err := r.state(i)
	if err != nil {
		return err
	}
	out, err := r.state(i + 1)
	if err != nil {
		return err
	}
	dn, err := r.denoised(i)
	if err != nil {
		return err
	}
	s, sn := r.sig[i], r.sig[i+1]
	switch r.cfg.Method {
	case MethodEuler:
		if err := r.denoise(dn, x, s); err != nil {
			return err
		}
		c := sn / s
		return r.combine(out, i, ops.Term{T: x, C: c}, ops.Term{T: dn, C: 1 - c})
	case MethodDDIM, MethodDDPM:
		eta := r.cfg.Eta
		if r.cfg.Method == MethodDDPM {
			eta = 1
		}
		if err := r.denoise(dn, x, s); err != nil {
			return err
		}
		a, noise := ddimCoeffs(s, sn, eta)
		return r.combineNoise(out, i, noise, ops.Term{T: x, C: a}, ops.Term{T: dn, C: 1 - a})
	case MethodHeun:
		return r.heun(i, x, s, sn, dn, out)
	case MethodEDMSDE:
		gamma := 0.0
		if r.cfg.STMin <= s && s <= r.cfg.STMax {
			gamma = math.Min(r.cfg.SChurn/float64(len(r.sig)-1), math.Sqrt2-1)
		}
		if gamma == 0 {
			return r.heun(i, x, s, sn, dn, out)
		}
		shat := s * (1 + gamma)
		// x̂ goes where x_{i+1} will (x itself without a trajectory, the next row with one).
		noise := r.cfg.SNoise * s * math.Sqrt(gamma*(2+gamma)) // S_noise sqrt(σ̂² − σ²)
		if err := r.combineNoise(out, i, noise, ops.Term{T: x, C: 1}); err != nil {
			return err
		}
		return r.heun(i, out, shat, sn, dn, out)
	case MethodDPM2:
		if err := r.denoise(dn, x, s); err != nil {
			return err
		}
		if sn == 0 {
			return r.combine(out, i, ops.Term{T: dn, C: 1})
		}
		sm := math.Sqrt(s * sn)
		rm := sm / s
		if err := r.combine(r.stage, i, ops.Term{T: x, C: rm}, ops.Term{T: dn, C: 1 - rm}); err != nil {
			return err
		}
		if err := r.denoise(r.stageD, r.stage, sm); err != nil {
			return err
		}
		h := sn - s
		return r.combine(out, i, ops.Term{T: x, C: sn / s}, ops.Term{T: dn, C: h / sm * (1 - rm)},
			ops.Term{T: r.stageD, C: -h / sm})
	case MethodDPMPP2M, MethodDPMPP3M:
		if err := r.denoise(dn, x, s); err != nil {
			return err
		}
		if sn == 0 {
			return r.combine(out, i, ops.Term{T: dn, C: 1})
		}
		var c []float64
		if r.cfg.Method == MethodDPMPP2M {
			c = dpmpp2mCoeffs(r.sig, i)
		} else {
			c = dpmpp3mCoeffs(r.sig, i, r.cfg.Classic)
		}
		terms := []ops.Term{{T: x, C: sn / s}}
		for k, ck := range c {
			dk, err := r.denoised(i - k)
			if err != nil {
				return err
			}
			terms = append(terms, ops.Term{T: dk, C: ck})
		}
		return r.combine(out, i, terms...)
	case MethodIPNDM:
		if err := r.denoise(dn, x, s); err != nil {
			return err
		}
		di := r.derivs[i%len(r.derivs)]
		if err := r.combine(di, i, ops.Term{T: x, C: 1 / s}, ops.Term{T: dn, C: -1 / s}); err != nil {
			return err
		}
		w := ipndmWeights(r.sig, i, r.cfg.Classic)
		terms := []ops.Term{{T: x, C: 1}}
		for k, wk := range w {
			terms = append(terms, ops.Term{T: r.derivs[(i-k)%len(r.derivs)], C: wk})
		}
		return r.combine(out, i, terms...)
	}
	return fmt.Errorf("unknown method %q", r.cfg.Method)
}

// heun is the step of EDM Algorithm 1 (and the deterministic part of Algorithm 2) from the state
// xh at level sh to level sn: the Euler predictor, then the trapezoidal corrector unless sn = 0.
// dn receives D(xh; sh); out may be xh.
func (r *diffusionRun) heun(i int, xh *tensor.Tensor, sh, sn float64, dn, out *tensor.Tensor) error {
	if err := r.denoise(dn, xh, sh); err != nil {
		return err
	}
	c := sn / sh
	if sn == 0 {
		return r.combine(out, i, ops.Term{T: dn, C: 1})
	}
	if err := r.combine(r.stage, i, ops.Term{T: xh, C: c}, ops.Term{T: dn, C: 1 - c}); err != nil {
		return err
	}
	if err := r.denoise(r.stageD, r.stage, sn); err != nil {
		return err
	}
	h := sn - sh
	return r.combine(out, i, ops.Term{T: xh, C: c}, ops.Term{T: dn, C: -h * (2*sn - sh) / (2 * sh * sn)},
		ops.Term{T: r.stageD, C: -h / (2 * sn)})
}

// ddimCoeffs returns the coefficient a of y_i in y_{i+1} = x̂0 + a (y_i − x̂0) + c̃ ξ and the noise
// scale c̃ of the DDIM step from σ_i = s to σ_{i+1} = sn in VE coordinates (see Diffusion).
func ddimCoeffs(s, sn, eta float64) (a, noise float64) {
	if eta == 0 {
		return sn / s, 0
	}
	a = sn / s * math.Sqrt((1-eta*eta)*s*s+eta*eta*sn*sn) / s
	noise = eta * sn / s * math.Sqrt(math.Max(0, s*s-sn*sn))
	return a, noise
}

// dpmpp2mCoeffs returns the coefficients of D_i and (from the second step on) D_{i−1} in the
// DPM-Solver++(2M) update from σ_i to σ_{i+1} > 0 (k-diffusion's sample_dpmpp_2m).
func dpmpp2mCoeffs(sig []float64, i int) []float64 {
	h := math.Log(sig[i] / sig[i+1])
	c := -math.Expm1(-h)
	if i == 0 {
		return []float64{c}
	}
	rr := math.Log(sig[i-1]/sig[i]) / h
	return []float64{c * (1 + 1/(2*rr)), -c / (2 * rr)}
}

// dpmpp3mCoeffs returns the coefficients of D_i, D_{i−1}, D_{i−2} (as many as the step's order)
// in the DPM-Solver++(3M) update from σ_i to σ_{i+1} > 0. The update integrates
// x_{i+1} = e^{−h} x_i + ∫_0^h e^{u−h} D(λ_i + u) du with D replaced by its Taylor polynomial
// D_i + u D_λ + u²/2 D_λλ in λ, whose terms integrate to h φ1(−h) D_i + h² φ2(−h) D_λ +
// h³ φ3(−h) D_λλ; D_λ and D_λλ come from the divided differences of k-diffusion: with
// r0 = h_{i−1}/h, r1 = h_{i−2}/h, Δ1_0 = (D_i − D_{i−1})/r0, Δ1_1 = (D_{i−1} − D_{i−2})/r1,
// Δ1 = Δ1_0 + (Δ1_0 − Δ1_1) r0/(r0 + r1) ≈ h D_λ and Δ2 = (Δ1_0 − Δ1_1)/(r0 + r1) ≈ h² D_λλ/2,
// hence the weights h φ2(−h) on Δ1 and 2h φ3(−h) on Δ2 (classic: h φ3(−h), k-diffusion's −φ3).
// The second step uses Δ1 = Δ1_0 alone.
func dpmpp3mCoeffs(sig []float64, i int, classic bool) []float64 {
	h := math.Log(sig[i] / sig[i+1])
	c := []float64{-math.Expm1(-h), 0, 0}
	p2 := h * phi(2, -h)
	switch {
	case i == 0:
		return c[:1]
	case i == 1:
		r0 := math.Log(sig[i-1]/sig[i]) / h
		c[0] += p2 / r0
		c[1] -= p2 / r0
		return c[:2]
	}
	r0 := math.Log(sig[i-1]/sig[i]) / h
	r1 := math.Log(sig[i-2]/sig[i-1]) / h
	d10 := [3]float64{1 / r0, -1 / r0, 0}
	d11 := [3]float64{0, 1 / r1, -1 / r1}
	w2 := 2 * h * phi(3, -h)
	if classic {
		w2 = h * phi(3, -h)
	}
	for k := range c {
		diff := d10[k] - d11[k]
		d1 := d10[k] + diff*r0/(r0+r1)
		d2 := diff / (r0 + r1)
		c[k] += p2*d1 + w2*d2
	}
	return c
}

// phi is the exponential-integrator function φ_k(z) = Σ_{j≥0} z^j/(j+k)! (φ_0 = e^z,
// φ_{k+1}(z) = (φ_k(z) − 1/k!)/z), by its series for |z| < 1 (the recursion cancels there) and by
// the recursion otherwise.
func phi(k int, z float64) float64 {
	if math.Abs(z) < 1 {
		// Σ_j z^j/(j+k)!: 30 terms reach double precision for |z| < 1.
		term := 1.0
		for j := 2; j <= k; j++ {
			term /= float64(j)
		}
		sum := 0.0
		for j := 0; j < 30; j++ {
			sum += term
			term *= z / float64(j+k+1)
		}
		return sum
	}
	p, fact := math.Exp(z), 1.0
	for j := 0; j < k; j++ {
		if j > 0 {
			fact *= float64(j)
		}
		p = (p - 1/fact) / z
	}
	return p
}

// classicAB are the Adams–Bashforth weights of a uniform grid, order 1 to 4 (most recent first).
var classicAB = [4][]float64{
	{1},
	{3.0 / 2, -1.0 / 2},
	{23.0 / 12, -16.0 / 12, 5.0 / 12},
	{55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24},
}

// ipndmWeights returns the weights w_k of d_{i−k}, k = 0 … q−1 (q = min(i+1, 4)), in iPNDM's
// update x_{i+1} = x_i + Σ w_k d_{i−k}: w_k = ∫_{σ_i}^{σ_{i+1}} ℓ_k(σ) dσ, ℓ_k the Lagrange basis
// polynomials on the nodes σ_i, σ_{i−1}, …, σ_{i−q+1} (exact for d polynomial in σ of degree
// < q), integrated by 3-point Gauss–Legendre (exact for the degree ≤ 3 of ℓ_k). With classic,
// the uniform-grid weights h_σ·classicAB.
func ipndmWeights(sig []float64, i int, classic bool) []float64 {
	q := min(i+1, 4)
	h := sig[i+1] - sig[i]
	w := make([]float64, q)
	if classic {
		for k := range w {
			w[k] = h * classicAB[q-1][k]
		}
		return w
	}
	// Nodes in the unit u = (σ − σ_i)/h: u_0 = 0, the history at u_k = (σ_{i−k} − σ_i)/h < 0
	// (−k on a uniform grid); the step is u ∈ [0, 1].
	u := make([]float64, q)
	for k := range u {
		u[k] = (sig[i-k] - sig[i]) / h
	}
	gx := [3]float64{0.5 - 0.5*math.Sqrt(0.6), 0.5, 0.5 + 0.5*math.Sqrt(0.6)}
	gw := [3]float64{5.0 / 18, 8.0 / 18, 5.0 / 18}
	for k := range w {
		for g, x := range gx {
			l := 1.0
			for m := range u {
				if m != k {
					l *= (x - u[m]) / (u[k] - u[m])
				}
			}
			w[k] += gw[g] * l
		}
		w[k] *= h
	}
	return w
}
