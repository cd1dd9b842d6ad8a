package solvers

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The base processes of GFDMConfig.Base (docs/math.md §5.5).
const (
	// GFDMBaseFVE is the fractional variance-exploding process: μ(t) = 0 and
	// g(t) = σ_min (σ_max/σ_min)^t √(2 log(σ_max/σ_min)), the g of the VE SDE whose noise level is
	// σ(t) = σ_min (σ_max/σ_min)^t (so ∫_0^t g² = σ(t)² − σ_min²).
	GFDMBaseFVE = "fve"
	// GFDMBaseFVP is the fractional variance-preserving process: the drift and diffusion of the VP
	// SDE of DDPM (Song et al. 2021), μ(t) = −½β(t) and g(t) = √β(t), with the linear schedule
	// β(t) = β_min + t (β_max − β_min), driven by MA-fBM instead of Brownian motion. With a
	// fractional driver the variance is no longer preserved exactly; the name keeps the drift.
	GFDMBaseFVP = "fvp"
)

// GFDMBases returns the base processes, in the order the documentation lists them.
func GFDMBases() []string { return []string{GFDMBaseFVE, GFDMBaseFVP} }

// Defaults of GFDMConfig. σ_min = 0.01 and σ_max = 50 are the FVE range of docs/math.md §5.5,
// β_min = 0.1 and β_max = 20 the linear VP schedule of DDPM, γ_max = 20 the largest MA-fBM speed
// GFDM uses. DefaultGFDMTableSteps knots with gfdmSubsteps RK4 steps between neighbours hold
// the covariance to about 1e-13 of its scale for t ≥ 0.1 (see GFDMProcess for all t).
const (
	DefaultGFDMSigmaMin   = 0.01
	DefaultGFDMSigmaMax   = 50.0
	DefaultGFDMBetaMin    = 0.1
	DefaultGFDMBetaMax    = 20.0
	DefaultGFDMGammaMax   = 20.0
	DefaultGFDMTableSteps = 2048
)

// MaxGFDMK bounds the number K of OU processes of a GFDM driver. GFDM uses K ∈ {2..5}; the
// normal matrix of the MA-fBM weights is already ill-conditioned at K = 5 (about 8e6) and more
// speeds on [1/γ_max, γ_max] buy no accuracy.
const MaxGFDMK = 5

// MaxGFDMTableSteps bounds GFDMConfig.TableSteps (the table holds (K+1)(K+2) float64 per knot).
const MaxGFDMTableSteps = 1 << 20

// gfdmSubsteps is the number of RK4 steps between two knots of the table.
const gfdmSubsteps = 8

// GFDMConfig configures NewGFDMProcess. Base, Hurst and K must be given; every other zero field
// means its default.
type GFDMConfig struct {
	// Base is GFDMBaseFVE or GFDMBaseFVP.
	Base string
	// Hurst H ∈ (0, 1) is the Hurst index of the type-II fBM the driver approximates.
	Hurst float64
	// K ∈ [1, MaxGFDMK] is the number of OU processes of the MA-fBM driver (docs/math.md §4.2).
	K int
	// GammaMax > 1 is the largest OU speed (default DefaultGFDMGammaMax); the speeds run
	// geometrically from 1/γ_max to γ_max (K = 1: the single speed 1, γ_max unused).
	GammaMax float64
	// SigmaMin < SigmaMax are the noise range of GFDMBaseFVE (defaults DefaultGFDMSigmaMin,
	// DefaultGFDMSigmaMax); refused with GFDMBaseFVP.
	SigmaMin, SigmaMax float64
	// BetaMin ≤ BetaMax are the ends of the linear β schedule of GFDMBaseFVP (defaults
	// DefaultGFDMBetaMin, DefaultGFDMBetaMax); refused with GFDMBaseFVE.
	BetaMin, BetaMax float64
	// TableSteps is the number of intervals of the table of Φ and Σ on [0, 1] (default
	// DefaultGFDMTableSteps, at least 16, at most MaxGFDMTableSteps).
	TableSteps int
}

// validate checks cfg and fills in its defaults.
func (cfg GFDMConfig) validate() (GFDMConfig, error) {
	const op = "gfdm"
	switch cfg.Base {
	case "":
		return cfg, fmt.Errorf("%s: no base process: set Base to one of %s", op, quoteAll(GFDMBases()))
	case GFDMBaseFVE:
		if cfg.BetaMin != 0 || cfg.BetaMax != 0 {
			return cfg, fmt.Errorf("%s: beta min and beta max are parameters of %q only", op, GFDMBaseFVP)
		}
		if cfg.SigmaMin == 0 {
			cfg.SigmaMin = DefaultGFDMSigmaMin
		}
		if cfg.SigmaMax == 0 {
			cfg.SigmaMax = DefaultGFDMSigmaMax
		}
		if !finitePositive(cfg.SigmaMin) {
			return cfg, fmt.Errorf("%s: sigma min = %g: must be a finite number > 0", op, cfg.SigmaMin)
		}
		if !finitePositive(cfg.SigmaMax) {
			return cfg, fmt.Errorf("%s: sigma max = %g: must be a finite number > 0", op, cfg.SigmaMax)
		}
		if !(cfg.SigmaMin < cfg.SigmaMax) {
			return cfg, fmt.Errorf("%s: sigma min = %g ≥ sigma max = %g: need sigma min < sigma max", op, cfg.SigmaMin, cfg.SigmaMax)
		}
	case GFDMBaseFVP:
		if cfg.SigmaMin != 0 || cfg.SigmaMax != 0 {
			return cfg, fmt.Errorf("%s: sigma min and sigma max are parameters of %q only", op, GFDMBaseFVE)
		}
		if cfg.BetaMin == 0 {
			cfg.BetaMin = DefaultGFDMBetaMin
		}
		if cfg.BetaMax == 0 {
			cfg.BetaMax = DefaultGFDMBetaMax
		}
		if !finitePositive(cfg.BetaMin) {
			return cfg, fmt.Errorf("%s: beta min = %g: must be a finite number > 0", op, cfg.BetaMin)
		}
		if !finitePositive(cfg.BetaMax) {
			return cfg, fmt.Errorf("%s: beta max = %g: must be a finite number > 0", op, cfg.BetaMax)
		}
		if !(cfg.BetaMin <= cfg.BetaMax) {
			return cfg, fmt.Errorf("%s: beta min = %g > beta max = %g: need beta min ≤ beta max", op, cfg.BetaMin, cfg.BetaMax)
		}
	default:
		return cfg, fmt.Errorf("%s: unknown base process %q (want one of %s)", op, cfg.Base, quoteAll(GFDMBases()))
	}
	if !(cfg.Hurst > 0 && cfg.Hurst < 1) {
		return cfg, fmt.Errorf("%s: hurst = %g: must be in (0, 1) (there is no default)", op, cfg.Hurst)
	}
	if cfg.K < 1 || cfg.K > MaxGFDMK {
		return cfg, fmt.Errorf("%s: K = %d OU processes: must be in [1, %d] (there is no default)", op, cfg.K, MaxGFDMK)
	}
	if cfg.GammaMax == 0 {
		cfg.GammaMax = DefaultGFDMGammaMax
	}
	if !(cfg.GammaMax > 1) || math.IsInf(cfg.GammaMax, 0) {
		return cfg, fmt.Errorf("%s: gamma max = %g: must be a finite number > 1 (the speeds run from 1/gamma max to gamma max)", op, cfg.GammaMax)
	}
	if cfg.TableSteps == 0 {
		cfg.TableSteps = DefaultGFDMTableSteps
	}
	if cfg.TableSteps < 16 || cfg.TableSteps > MaxGFDMTableSteps {
		return cfg, fmt.Errorf("%s: table steps = %d: must be in [16, %d]", op, cfg.TableSteps, MaxGFDMTableSteps)
	}
	return cfg, nil
}

// GFDMProcess is the forward process of generative fractional diffusion (Nobis et al. 2024;
// docs/math.md §5.5) on t ∈ [0, 1]:
//
//	dX_t = μ(t) X_t dt + g(t) dB̂_t,   B̂_t = Σ_k ω_k Y^k_t,   dY^k = −γ_k Y^k dt + dW,   Y^k_0 = 0,
//
// with (μ, g) the base process (GFDMBaseFVE or GFDMBaseFVP) and B̂ the Markov approximation of
// type-II fBM of ops.MAFBM, its speeds γ_k and weights ω_k fitted on the horizon T = 1. Every
// coordinate of the data evolves independently with the same law; per coordinate the augmented
// state Z = (x, y_1, …, y_K) solves the linear SDE dZ = F(t) Z dt + G(t) dW with one Brownian W:
//
//	F(t) = [[μ(t), −g(t)ω_1γ_1, …, −g(t)ω_Kγ_K], [0, −diag(γ_1, …, γ_K)]]
//	G(t) = (g(t) Σ_k ω_k, 1, …, 1)ᵀ
//
// Given x_0 (and Z_0 = (x_0, 0, …, 0)), Z_t is Gaussian with mean x_0 φ(t), φ(t) the first
// column of the fundamental matrix Φ(t) (Φ' = FΦ, Φ(0) = I: only the first column is needed, and
// since the y rows of F have no x column, φ = (e^{∫_0^t μ}, 0, …, 0)), and covariance Σ(t), the
// solution of the Lyapunov equation Σ' = FΣ + ΣFᵀ + GGᵀ, Σ(0) = 0 (which does not depend on x_0).
//
// NewGFDMProcess integrates both ODEs once, in float64, by the classical fourth-order Runge–Kutta
// method with gfdmSubsteps = 8 steps between consecutive knots t_i = i/M, M = TableSteps, and
// stores (φ, Σ) at the knots. Mean and Covariance evaluate at any t ∈ [0, 1] by restarting the
// same integration from the knot at or below t: at most 8 RK4 steps of equal length
// ≤ 1/(8M), the last landing on t (about 15·(K+1)³·8 flops, microseconds). This dense output has
// the accuracy of the knots everywhere; a cubic Hermite interpolant of the knots (tried first)
// was as good in absolute terms but lost up to 3 digits relative to the tiny entries of Σ in the
// first intervals (Σ_xx ∝ (g Σω)² t when Σω nearly cancels), where a score divides by them.
// The stiffest rate is 2γ_max = 40 (Σ_yy of the fastest OU process); with the defaults the RK4
// step h = 1/16384 has 40h ≈ 2.4e-3. Measured against an independent nested Gauss–Legendre
// evaluation of Σ (TestGFDMCovarianceAgainstQuadrature), each entry's error scaled by
// √(Σ_aa Σ_bb), at times between the knots, both bases, K ∈ {1, 2, 3, 5}, H ∈ {0.2, 0.8}: at
// most 1.5e-13 for t ≥ 0.1 and 4e-12 at t ≥ 3.7e-4 except where Σω nearly cancels (K = 2,
// H = 0.8: Σω = −0.011), where the relative error of the tiny Σ_xx at t = 3.7e-4 is 2e-9 (FVE)
// and 6e-9 (FVP), falling like M^{−3} with more knots. The error falls like M^{−4} elsewhere
// (M = 16: 3.5e-6, M = 128: 7e-10). The mean has the closed form above and matches it to 2e-14.
//
// A GFDMProcess is immutable after NewGFDMProcess and safe for concurrent use.
type GFDMProcess struct {
	cfg             GFDMConfig
	k, n            int // K and the augmented size n = K+1
	gammas, weights []float64
	weightSum       float64
	relErrSq        float64
	// the table: knot i at t = i/M holds φ (n values), then Σ (n², row-major).
	m          int
	tab        []float64
	stride     int
	logSigRate float64 // FVE: log(σ_max/σ_min)
}

// NewGFDMProcess validates cfg, fits the MA-fBM driver (ops.NewMAFBM with T = 1) and tabulates
// the mean map and covariance (see GFDMProcess): 4·8·M right-hand sides of about 2(K+1)³ flops each
// (with the defaults and K = 5 about 3·10⁷ flops, ~15 ms on one core; the table is 8(M+1)(K+1)(K+2)
// bytes, 690 KB).
func NewGFDMProcess(cfg GFDMConfig) (*GFDMProcess, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	m, err := ops.NewMAFBM(cfg.Hurst, cfg.K, cfg.GammaMax, 1)
	if err != nil {
		return nil, fmt.Errorf("gfdm: driver: %w", err)
	}
	return newGFDMProcess(cfg, m.Gammas(), m.Weights(), m.RelErrorSq())
}

// newGFDMProcess builds the process of a validated cfg on given speeds and weights (the tests use
// it for drivers NewMAFBM does not make, such as the VE limit γ = 0, ω = 1).
func newGFDMProcess(cfg GFDMConfig, gammas, weights []float64, relErrSq float64) (*GFDMProcess, error) {
	k := len(gammas)
	p := &GFDMProcess{cfg: cfg, k: k, n: k + 1, gammas: append([]float64(nil), gammas...),
		weights: append([]float64(nil), weights...), relErrSq: relErrSq, m: cfg.TableSteps}
	for _, w := range weights {
		p.weightSum += w
	}
	if cfg.Base == GFDMBaseFVE {
		p.logSigRate = math.Log(cfg.SigmaMax / cfg.SigmaMin)
	}
	n := p.n
	p.stride = n + n*n
	p.tab = make([]float64, (p.m+1)*p.stride)
	ws := newGFDMWork(n)
	y := make([]float64, p.stride)
	y[0] = 1 // φ(0) = e_1, Σ(0) = 0
	copy(p.tab, y)
	h := 1 / float64(p.m*gfdmSubsteps)
	for i := 0; i < p.m; i++ {
		for s := 0; s < gfdmSubsteps; s++ {
			t := float64(i*gfdmSubsteps+s) * h
			p.rk4(y, t, h, ws)
		}
		copy(p.tab[(i+1)*p.stride:(i+2)*p.stride], y)
	}
	for i, v := range p.tab {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("gfdm: the mean and covariance table is not finite (entry %d of knot %d is %g): the base process is too steep for float64",
				i%p.stride, i/p.stride, v)
		}
	}
	return p, nil
}

// gfdmWork is the scratch of one integration: F, G and the four RK4 stages.
type gfdmWork struct {
	f, g               []float64
	k1, k2, k3, k4, yt []float64
}

func newGFDMWork(n int) *gfdmWork {
	s := n + n*n
	return &gfdmWork{f: make([]float64, n*n), g: make([]float64, n),
		k1: make([]float64, s), k2: make([]float64, s), k3: make([]float64, s), k4: make([]float64, s), yt: make([]float64, s)}
}

// rk4 advances y = (φ, Σ) from t to t + h by one classical Runge–Kutta step.
func (p *GFDMProcess) rk4(y []float64, t, h float64, w *gfdmWork) {
	p.rhs(w.k1, t, y, w)
	for i := range y {
		w.yt[i] = y[i] + h/2*w.k1[i]
	}
	p.rhs(w.k2, t+h/2, w.yt, w)
	for i := range y {
		w.yt[i] = y[i] + h/2*w.k2[i]
	}
	p.rhs(w.k3, t+h/2, w.yt, w)
	for i := range y {
		w.yt[i] = y[i] + h*w.k3[i]
	}
	p.rhs(w.k4, t+h, w.yt, w)
	for i := range y {
		y[i] += h / 6 * (w.k1[i] + 2*w.k2[i] + 2*w.k3[i] + w.k4[i])
	}
}

// rhs writes the right-hand side at t of y = (φ, Σ): φ' = Fφ, Σ' = FΣ + ΣFᵀ + GGᵀ, as plain
// dense products.
func (p *GFDMProcess) rhs(dst []float64, t float64, y []float64, w *gfdmWork) {
	n := p.n
	p.coefficients(w.f, w.g, t)
	f, g := w.f, w.g
	phi, sig := y[:n], y[n:]
	dphi, dsig := dst[:n], dst[n:]
	for a := 0; a < n; a++ {
		acc := 0.0
		for c := 0; c < n; c++ {
			acc += f[a*n+c] * phi[c]
		}
		dphi[a] = acc
	}
	for a := 0; a < n; a++ {
		for b := 0; b < n; b++ {
			acc := g[a] * g[b]
			for c := 0; c < n; c++ {
				acc += f[a*n+c]*sig[c*n+b] + sig[a*n+c]*f[b*n+c]
			}
			dsig[a*n+b] = acc
		}
	}
}

// coefficients writes F(t) (row-major n×n) and G(t) (n).
func (p *GFDMProcess) coefficients(f, g []float64, t float64) {
	n := p.n
	clear(f)
	gt := p.diffusion(t)
	f[0] = p.drift(t)
	for k := 1; k < n; k++ {
		f[k] = -gt * p.weights[k-1] * p.gammas[k-1]
		f[k*n+k] = -p.gammas[k-1]
		g[k] = 1
	}
	g[0] = gt * p.weightSum
}

func (p *GFDMProcess) drift(t float64) float64 {
	if p.cfg.Base == GFDMBaseFVP {
		return -0.5 * p.beta(t)
	}
	return 0
}

func (p *GFDMProcess) diffusion(t float64) float64 {
	if p.cfg.Base == GFDMBaseFVP {
		return math.Sqrt(p.beta(t))
	}
	return p.cfg.SigmaMin * math.Exp(t*p.logSigRate) * math.Sqrt(2*p.logSigRate)
}

func (p *GFDMProcess) beta(t float64) float64 {
	return p.cfg.BetaMin + t*(p.cfg.BetaMax-p.cfg.BetaMin)
}

// checkTime validates a time t ∈ [0, 1].
func checkGFDMTime(op string, t float64) error {
	if !(t >= 0 && t <= 1) {
		return fmt.Errorf("%s: time t = %g: must be in [0, 1]", op, t)
	}
	return nil
}

// Config returns the configuration with its defaults filled in.
func (p *GFDMProcess) Config() GFDMConfig { return p.cfg }

// K is the number of OU processes; the augmented state of one coordinate has K+1 numbers.
func (p *GFDMProcess) K() int { return p.k }

// Gammas returns a copy of the speeds γ_1 < … < γ_K.
func (p *GFDMProcess) Gammas() []float64 { return append([]float64(nil), p.gammas...) }

// Weights returns a copy of the weights ω_1 … ω_K.
func (p *GFDMProcess) Weights() []float64 { return append([]float64(nil), p.weights...) }

// RelErrorSq is the driver's squared relative L² error (ops.MAFBM.RelErrorSq).
func (p *GFDMProcess) RelErrorSq() float64 { return p.relErrSq }

// Drift is μ(t) of the base process (0 for FVE, −½β(t) for FVP); t must be in [0, 1].
func (p *GFDMProcess) Drift(t float64) (float64, error) {
	if err := checkGFDMTime("gfdm drift", t); err != nil {
		return 0, err
	}
	return p.drift(t), nil
}

// Diffusion is g(t) of the base process (σ_min (σ_max/σ_min)^t √(2 log(σ_max/σ_min)) for FVE,
// √β(t) for FVP); t must be in [0, 1].
func (p *GFDMProcess) Diffusion(t float64) (float64, error) {
	if err := checkGFDMTime("gfdm diffusion", t); err != nil {
		return 0, err
	}
	return p.diffusion(t), nil
}

// Coefficients returns F(t) ((K+1)×(K+1), row-major) and G(t) (K+1) of the augmented SDE
// dZ = F Z dt + G dW; t must be in [0, 1].
func (p *GFDMProcess) Coefficients(t float64) (f, g []float64, err error) {
	if err := checkGFDMTime("gfdm coefficients", t); err != nil {
		return nil, nil, err
	}
	f, g = make([]float64, p.n*p.n), make([]float64, p.n)
	p.coefficients(f, g, t)
	return f, g, nil
}

// evaluate writes φ(t) and Σ(t) (the layout of a knot) into dst: from the knot t_i = i/M at or
// below t, the RK4 steps of the table's integration (at most gfdmSubsteps, of equal length
// ≤ 1/(M·gfdmSubsteps), the last landing on t exactly).
func (p *GFDMProcess) evaluate(dst []float64, t float64) {
	i := min(int(t*float64(p.m)), p.m-1)
	ti := float64(i) / float64(p.m)
	if t < ti { // t·M rounded up across a knot
		i--
		ti = float64(i) / float64(p.m)
	}
	copy(dst, p.tab[i*p.stride:(i+1)*p.stride])
	r := t - ti
	if r <= 0 {
		return
	}
	steps := int(math.Ceil(r * float64(p.m*gfdmSubsteps)))
	steps = max(1, min(steps, gfdmSubsteps))
	h := r / float64(steps)
	ws := newGFDMWork(p.n)
	for s := 0; s < steps; s++ {
		p.rk4(dst, ti+float64(s)*h, h, ws)
	}
}

// transition writes Ψ(t, s) = Φ(t)Φ(s)⁻¹ (n×n, row-major), the solution map of dZ = F Z dt from
// s to t ≥ s, into dst: Ψ' = F Ψ, Ψ(s) = I, by classical RK4 steps of the table's length
// (≤ 1/(M·gfdmSubsteps), so its accuracy is the table's). About 8n³ flops per step.
func (p *GFDMProcess) transition(dst []float64, t, s float64) {
	n := p.n
	clear(dst)
	for a := 0; a < n; a++ {
		dst[a*n+a] = 1
	}
	if !(t > s) {
		return
	}
	steps := max(1, int(math.Ceil((t-s)*float64(p.m*gfdmSubsteps))))
	h := (t - s) / float64(steps)
	f, g := make([]float64, n*n), make([]float64, n)
	k := [4][]float64{make([]float64, n*n), make([]float64, n*n), make([]float64, n*n), make([]float64, n*n)}
	yt := make([]float64, n*n)
	rhs := func(out []float64, tau float64, y []float64) {
		p.coefficients(f, g, tau)
		for a := 0; a < n; a++ {
			for b := 0; b < n; b++ {
				acc := 0.0
				for c := 0; c < n; c++ {
					acc += f[a*n+c] * y[c*n+b]
				}
				out[a*n+b] = acc
			}
		}
	}
	for i := 0; i < steps; i++ {
		tau := s + float64(i)*h
		rhs(k[0], tau, dst)
		for j := range yt {
			yt[j] = dst[j] + h/2*k[0][j]
		}
		rhs(k[1], tau+h/2, yt)
		for j := range yt {
			yt[j] = dst[j] + h/2*k[1][j]
		}
		rhs(k[2], tau+h/2, yt)
		for j := range yt {
			yt[j] = dst[j] + h*k[2][j]
		}
		rhs(k[3], tau+h, yt)
		for j := range dst {
			dst[j] += h / 6 * (k[0][j] + 2*k[1][j] + 2*k[2][j] + k[3][j])
		}
	}
}

// Mean returns φ(t), the first column of Φ(t) (K+1 values): the mean of Z_t given x_0 is
// x_0 φ(t). t must be in [0, 1]. Accuracy: see GFDMProcess.
func (p *GFDMProcess) Mean(t float64) ([]float64, error) {
	if err := checkGFDMTime("gfdm mean", t); err != nil {
		return nil, err
	}
	y := make([]float64, p.stride)
	p.evaluate(y, t)
	return y[:p.n:p.n], nil
}

// Covariance returns Σ(t), the covariance of Z_t given x_0 ((K+1)×(K+1), row-major; the same for
// every x_0 and every coordinate). t must be in [0, 1]. Accuracy: see GFDMProcess.
func (p *GFDMProcess) Covariance(t float64) ([]float64, error) {
	if err := checkGFDMTime("gfdm covariance", t); err != nil {
		return nil, err
	}
	y := make([]float64, p.stride)
	p.evaluate(y, t)
	return y[p.n:], nil
}

// knot returns φ and Σ stored at knot i (t = i/TableSteps), for the tests.
func (p *GFDMProcess) knot(i int) (phi, sigma []float64) {
	row := p.tab[i*p.stride : (i+1)*p.stride]
	return row[:p.n], row[p.n:]
}

// gfdmPSDTol is the relative size −λ_min/λ_max up to which a negative eigenvalue of Σ counts as
// rounding: the table's entries carry the rounding of up to 8·MaxGFDMTableSteps RK4 steps, and
// the eigenvalues of a nearly singular Σ (small t) inherit it on the scale of λ_max. Measured at
// every knot of the defaults: at most about 256ε ≈ 6e-14.
const gfdmPSDTol = 1e-12

// covarianceFactor returns L (n×n, row-major) with L Lᵀ = the positive semidefinite part of Σ:
// Σ = U Λ Uᵀ, eigenvalues within rounding of zero (≥ −gfdmPSDTol·λ_max) set to 0, L = U Λ^{1/2}.
// Σ(0) = 0 and Σ at small t is nearly singular (the OU states start together), so a plain
// Cholesky factorisation would fail there.
func covarianceFactor(sigma []float64, n int) ([]float64, error) {
	return covarianceFactorTol(sigma, n, gfdmPSDTol)
}

// covarianceFactorTol is covarianceFactor with the relative size tol of the negative eigenvalues
// that count as rounding.
func covarianceFactorTol(sigma []float64, n int, tol float64) ([]float64, error) {
	s := mat.NewSymDense(n, nil)
	for a := 0; a < n; a++ {
		for b := a; b < n; b++ {
			s.SetSym(a, b, 0.5*(sigma[a*n+b]+sigma[b*n+a]))
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(s, true) {
		return nil, fmt.Errorf("eigendecomposition of the %d×%d covariance failed", n, n)
	}
	lambda := eig.Values(nil)
	var u mat.Dense
	eig.VectorsTo(&u)
	top := math.Max(lambda[n-1], 0)
	if lambda[0] < -tol*top {
		return nil, fmt.Errorf("covariance is not positive semidefinite (eigenvalue %.3g, largest %.3g)", lambda[0], top)
	}
	l := make([]float64, n*n)
	for q := 0; q < n; q++ {
		r := math.Sqrt(math.Max(lambda[q], 0))
		for a := 0; a < n; a++ {
			l[a*n+q] = u.At(a, q) * r
		}
	}
	return l, nil
}

// SampleForward draws Z_t given the data x0 (N, d) on b's device: the result has shape
// (K+1, N, d) on b's device in x0's dtype, slice c (a contiguous (N, d) block, offset c·N·d) being
// component c of the augmented state — slice 0 is X_t, slice k the OU state Y^k_t — so each
// component can be handed to ops as an (N, d) tensor. For chain i (row i, chain firstChain + i)
// and coordinate j:
//
//	Z_t[·, i, j] = x0[i, j] φ(t) + L(t) ξ_ij,   ξ_ij = columns j(K+1) … j(K+1)+K of the normals
//
// of the draw at Site(step, PurposeGFDM) (one row of d(K+1) normals per chain, in x0's precision),
// L(t) the positive semidefinite square root of Σ(t) described at covarianceFactor (L = 0 at
// t = 0: Z_0 = (x0, 0, …, 0)). φ and Σ come from the table (see GFDMProcess); the arithmetic is
// float64 on the host, rounded once to x0's dtype. The samples are a pure function of (seed,
// step, chain): a batch split by firstChain reproduces the single call. x0 must be finite;
// t ∈ [0, 1]. The caller closes the result.
func (p *GFDMProcess) SampleForward(b ops.Backend, x0 *tensor.Tensor, t float64, seed, step, firstChain uint64) (*tensor.Tensor, error) {
	const op = "gfdm forward sample"
	if b == nil {
		return nil, fmt.Errorf("%s: nil backend", op)
	}
	if x0 == nil || x0.Closed() {
		return nil, fmt.Errorf("%s: data x0 is nil or closed", op)
	}
	if x0.Device() != b.Device() {
		return nil, fmt.Errorf("%s: data x0 is on %s, the backend runs on %s", op, x0.Device().Name(), b.Device().Name())
	}
	if x0.Rank() != 2 || x0.Dim(0) == 0 || x0.Dim(1) == 0 {
		return nil, fmt.Errorf("%s: data x0 has shape %v: want (N, d) with N, d ≥ 1", op, x0.Shape())
	}
	if err := checkGFDMTime(op, t); err != nil {
		return nil, err
	}
	if step > MaxSteps {
		return nil, fmt.Errorf("%s: step %d: at most %d", op, step, uint64(MaxSteps))
	}
	nr, d, n := x0.Dim(0), x0.Dim(1), p.n
	if err := checkChains(op, nr, firstChain); err != nil {
		return nil, err
	}
	if d > math.MaxInt32/n {
		return nil, fmt.Errorf("%s: dimension d = %d: the %d normals per chain exceed 2^31", op, d, d*n)
	}
	x, err := x0.Float64s()
	if err != nil {
		return nil, fmt.Errorf("%s: read x0: %w", op, err)
	}
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: x0[%d, %d] = %g: the data must be finite", op, i/d, i%d, v)
		}
	}
	phi, _ := p.Mean(t)
	sigma, _ := p.Covariance(t)
	l, err := covarianceFactor(sigma, n)
	if err != nil {
		return nil, fmt.Errorf("%s: t = %g: %w", op, t, err)
	}
	xt, err := tensor.New(b.Device(), x0.DType(), nr, d*n)
	if err != nil {
		return nil, fmt.Errorf("%s: normals (%d, %d): %w", op, nr, d*n, err)
	}
	defer xt.Close()
	if err := b.Normal(xt, ops.Draw{Seed: seed, Site: Site(step, PurposeGFDM), FirstChain: firstChain}); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	xi, err := xt.Float64s()
	if err != nil {
		return nil, fmt.Errorf("%s: read normals: %w", op, err)
	}
	out := make([]float64, n*nr*d)
	plane := nr * d
	for i := 0; i < nr; i++ {
		for j := 0; j < d; j++ {
			x0ij := x[i*d+j]
			z := xi[i*d*n+j*n : i*d*n+(j+1)*n]
			for a := 0; a < n; a++ {
				v := x0ij * phi[a]
				for c := 0; c < n; c++ {
					v += l[a*n+c] * z[c]
				}
				out[a*plane+i*d+j] = v
			}
		}
	}
	res, err := toDevice(b.Device(), x0.DType(), out, n, nr, d)
	if err != nil {
		return nil, fmt.Errorf("%s: result (%d, %d, %d): %w", op, n, nr, d, err)
	}
	return res, nil
}
