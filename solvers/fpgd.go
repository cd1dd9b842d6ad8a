package solvers

import (
	"fmt"
	"math"
	"slices"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// Noise methods of FPGD (FPGDConfig.Method).
const (
	// FGNDaviesHarte: exact fGn by circulant embedding (ops.Backend.FGN), on the backend.
	FGNDaviesHarte = "davies-harte"
	// FGNMAFBM: increments of the Markov approximation of type-II fBM (ops.Backend.MAFBM).
	FGNMAFBM = "mafbm"
	// FGNCholesky: exact fGn by the Cholesky factor of the Toeplitz covariance
	// (ops.FGNCholesky), on the host, at most FGNCholeskyMaxSteps steps.
	FGNCholesky = "cholesky"
)

// Defaults and limits of FPGDConfig.
const (
	// DefaultMAFBMOrder is K, the number of Ornstein–Uhlenbeck processes of the "mafbm" noise.
	DefaultMAFBMOrder = 5
	// DefaultMAFBMGammaMax is γ_max of the "mafbm" speed grid (GFDM's choice).
	DefaultMAFBMGammaMax = 20
	// DefaultNoiseBlock is the default bound on the elements of one noise call (NoiseBlock):
	// 2^23 values, 64 MiB in f64.
	DefaultNoiseBlock = 1 << 23
	// FGNCholeskyMaxSteps is the longest path the host Cholesky reference generates.
	FGNCholeskyMaxSteps = 4096
)

// EscapeSpec asks FPGD to record, per chain, the first step at which the state crosses a
// threshold in one coordinate: the smallest n ∈ [0, Steps] with x_n[Coord] > Threshold (with
// Below: x_n[Coord] < Threshold). n = 0 means the start already lies beyond the threshold; a chain
// that never crosses gets −1. For a chain started in the left well of DoubleWell (x_1 = −1),
// {Coord: 0, Threshold: 0.5} records the step at which it first reaches half way into the right
// well: past the saddle by a margin, so that a chain merely sitting on the ridge does not count.
type EscapeSpec struct {
	Coord     int
	Threshold float64
	Below     bool
}

// crossed reports whether v lies beyond the threshold.
func (e *EscapeSpec) crossed(v float64) bool {
	if e.Below {
		return v < e.Threshold
	}
	return v > e.Threshold
}

// FPGDConfig configures FPGD. Hurst, StepSize and Steps must be given; everything else has a
// default.
type FPGDConfig struct {
	// Hurst is H ∈ (0, 1) of the noise: H > ½ persistent (positively correlated increments),
	// H = ½ independent increments (perturbed gradient descent), H < ½ anti-persistent.
	Hurst float64
	// StepSize is h > 0.
	StepSize float64
	// Sigma is the noise scale σ ≥ 0 (0: plain gradient descent, no noise is drawn).
	Sigma float64
	// Steps is the number of steps (≥ 1).
	Steps int
	// Method generates the fractional increments: FGNDaviesHarte (the default), FGNMAFBM or
	// FGNCholesky (see FPGD).
	Method string
	// K (≥ 1) and GammaMax (> 1) are the order and the largest speed of the "mafbm" noise
	// (defaults DefaultMAFBMOrder and DefaultMAFBMGammaMax); other methods ignore them.
	K        int
	GammaMax float64
	// Seed keys the random stream; FirstChain is the chain index of row 0 of x0 (see FPGD).
	Seed       uint64
	FirstChain uint64
	// Thin > 0 keeps the state every Thin steps in Trace, shape (Steps/Thin + 1, N, d): row 0 the
	// initial state, row k the state after k·Thin steps. 0 keeps no trace.
	Thin int
	// Escape, when set, records every chain's first crossing of a threshold (FPGDResult.Escape).
	Escape *EscapeSpec
	// NoiseBlock bounds the number of noise values generated in one backend call (default
	// DefaultNoiseBlock): chains are processed in blocks of ⌊NoiseBlock/(d·Steps)⌋ (at least one)
	// so that memory stays O(NoiseBlock) whatever N. Blocks draw exactly the numbers of one call.
	NoiseBlock int
	// Progress, when set, receives the chain-steps done out of N·Steps (see Progress).
	Progress Progress
}

// FPGDResult is what FPGD returns (DescentResult: the states, trace, escapes, gradient count and
// NaN report; TraceSteps[k] is the step of trace row k). Tensors live on the backend's device;
// Close frees them.
type FPGDResult struct {
	DescentResult
	// NoiseRelErrorSq is, for "mafbm", the squared relative L² error (ops.MAFBM.RelErrorSq) of
	// the approximation of type-II fBM on [0, Steps·h] (docs/math.md §4.2); 0 for the exact methods.
	NoiseRelErrorSq float64
}

// Close frees the result's tensors.
func (r *FPGDResult) Close() error {
	if r == nil {
		return nil
	}
	return r.DescentResult.Close()
}

// EscapeStats summarises escape steps (−1: never) as DescentResult.EscapeStats does.
func EscapeStats(steps []int) (fraction, mean, median float64) {
	if len(steps) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	var esc []int
	for _, s := range steps {
		if s >= 0 {
			esc = append(esc, s)
		}
	}
	fraction = float64(len(esc)) / float64(len(steps))
	if len(esc) == 0 {
		return fraction, math.NaN(), math.NaN()
	}
	slices.Sort(esc)
	sum := 0.0
	for _, s := range esc {
		sum += float64(s)
	}
	m := len(esc) / 2
	median = float64(esc[m])
	if len(esc)%2 == 0 {
		median = 0.5 * float64(esc[m-1]+esc[m])
	}
	return fraction, sum / float64(len(esc)), median
}

// validate checks cfg and fills in the defaults.
func (cfg FPGDConfig) validate() (FPGDConfig, error) {
	if !(cfg.Hurst > 0 && cfg.Hurst < 1) {
		return cfg, fmt.Errorf("hurst %g: must be in (0, 1)", cfg.Hurst)
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
	switch cfg.Method {
	case "":
		cfg.Method = FGNDaviesHarte
	case FGNDaviesHarte, FGNMAFBM:
	case FGNCholesky:
		if cfg.Steps > FGNCholeskyMaxSteps {
			return cfg, fmt.Errorf("cholesky: steps = %d: the host reference generates at most %d (use %q)",
				cfg.Steps, FGNCholeskyMaxSteps, FGNDaviesHarte)
		}
	default:
		return cfg, fmt.Errorf("unknown noise method %q (want %q, %q or %q)", cfg.Method, FGNDaviesHarte, FGNMAFBM, FGNCholesky)
	}
	if cfg.K == 0 {
		cfg.K = DefaultMAFBMOrder
	}
	if cfg.K < 1 {
		return cfg, fmt.Errorf("mafbm: K = %d: must be ≥ 1", cfg.K)
	}
	if cfg.GammaMax == 0 {
		cfg.GammaMax = DefaultMAFBMGammaMax
	}
	if !(cfg.GammaMax > 1) || math.IsInf(cfg.GammaMax, 0) {
		return cfg, fmt.Errorf("mafbm: gamma max %g: must be a finite number > 1", cfg.GammaMax)
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

// FPGD runs N chains of gradient descent with fractional noise (docs/math.md §4.5) from the rows
// of x0 (N, d) on the objective f:
//
//	x_{n+1} = x_n − h ∇f(x_n) + σ ΔB^H_n,   n = 0 … Steps−1,
//
// with one fractional path per (chain, coordinate), independent across both.
//
// Noise scaling. ΔB^H_n = B^H((n+1)h) − B^H(nh) are the increments of fBM sampled at step h:
// fGn with Var ΔB^H_n = h^{2H} and Cov(ΔB^H_n, ΔB^H_{n+k}) = h^{2H} ρ(k),
// ρ(k) = ½(|k+1|^{2H} − 2|k|^{2H} + |k−1|^{2H}). They are generated as unit-step fGn (Var 1)
// times h^H — the self-similarity of fBM — so σ is the noise scale of the continuous-time SDE
// dx = −∇f dt + σ dB^H, and at H = ½ the step is the Euler–Maruyama step of
// dx = −∇f dt + σ dW (per-step variance σ² h). At equal σ the per-step variance σ² h^{2H}
// depends on H; to compare H at equal per-step variance s², take σ = s h^{−H}.
//
// Methods (cfg.Method):
//
//	davies-harte  exact stationary fGn, ops.Backend.FGN (plan of length Steps), on the backend
//	cholesky      exact stationary fGn, ops.FGNCholesky, on the host (Steps ≤ 4096); same law
//	              as davies-harte, other numbers
//	mafbm         increments B̂((n+1)h) − B̂(nh) of the Markov approximation of type-II
//	              (Riemann–Liouville) fBM on [0, Steps·h] with K OU processes (docs/math.md §4.2),
//	              ops.Backend.MAFBM, B̂(0) = 0. Type-II fBM is not stationary and has
//	              Var B(t) = t^{2H} / (2H Γ(H+½)²); its increments are used as they are (not
//	              rescaled by h^H, which would be wrong for a non-self-similar approximation). At
//	              H = ½ type-II fBM is Brownian motion, which the approximation then approaches.
//
// Randomness. The path of coordinate j of chain c (c = FirstChain + row) is chain c·d + j of the
// draw (Seed, Site(0, PurposeFractional)) for davies-harte and cholesky: a whole path of Steps
// increments from one draw site. The mafbm step s draws its K normals at Site(s,
// PurposeFractional) (stride SitesPerStep). A chain's noise therefore depends only on
// (Seed, c, j) and the law (Method, H, Steps; h, K, GammaMax for mafbm): a run split into batches of chains (FirstChain) reproduces the
// single run exactly, and so does any NoiseBlock. A path depends on Steps too (through the
// Davies–Harte embedding size, the Cholesky factor, the MA-fBM weights fitted on [0, Steps·h]): do
// not expect a shorter run to be a prefix of a longer one. The noise is drawn in x0's dtype.
//
// Cost and memory. The noise is generated on the backend in blocks of chains, each block's
// paths (block·d, Steps) in one call, bounded by NoiseBlock elements, then copied to the host.
// f is a Go function, so the recursion itself runs on the host in float64, in parallel over
// chains (GOMAXPROCS goroutines): N·Steps gradient evaluations plus N·d·Steps noise values
// copied from the device. On the CPU reference the noise generation dominates a run with a cheap
// analytic f (O(Steps log Steps) per path for davies-harte, O(Steps²) for cholesky, O(Steps·K²)
// for mafbm, against O(Steps·d) for the recursion); on a GPU backend the noise moves to the
// device and the host recursion and the copy remain. The final states are rounded to x0's dtype.
//
// Checks: NaN or ±Inf in a chain's state is reported (FPGDResult.NaN), and the chain keeps running
// as it is. Bad input (H ∉ (0, 1), h ≤ 0, σ < 0, Steps < 1, a dimension mismatch, an unknown
// method) is an error naming it.
func FPGD(b ops.Backend, f Objective, x0 *tensor.Tensor, cfg FPGDConfig) (*FPGDResult, error) {
	res, err := fpgd(b, f, x0, cfg)
	if err != nil {
		return nil, fmt.Errorf("fpgd: %w", err)
	}
	return res, nil
}

func fpgd(b ops.Backend, f Objective, x0 *tensor.Tensor, cfg FPGDConfig) (*FPGDResult, error) {
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
	noise, err := newNoiseSource(b, cfg, d, x0.DType())
	if err != nil {
		return nil, err
	}
	defer noise.close()
	out, err := descend(b, f, x0.DType(), x, n, d, descentSpec{steps: cfg.Steps, thin: cfg.Thin,
		h: cfg.StepSize, sigma: cfg.Sigma, scale: noise.scale, escape: cfg.Escape,
		noiseBlock: cfg.NoiseBlock, progress: cfg.Progress}, noise)
	if err != nil {
		return nil, err
	}
	return &FPGDResult{DescentResult: out.result(), NoiseRelErrorSq: noise.relError}, nil
}

// noiseSource generates the fractional increments of blocks of chains.
type noiseSource struct {
	b        ops.Backend
	cfg      FPGDConfig
	d        int
	dt       tensor.DType
	plan     *ops.FGNPlan
	ma       *ops.MAFBM
	scale    float64 // the increments are multiplied by σ·scale
	relError float64
	buf, y   *tensor.Tensor // (block·d, Steps) and, for mafbm, (block·d, K)
}

func newNoiseSource(b ops.Backend, cfg FPGDConfig, d int, dt tensor.DType) (*noiseSource, error) {
	s := &noiseSource{b: b, cfg: cfg, d: d, dt: dt, scale: math.Pow(cfg.StepSize, cfg.Hurst)}
	if cfg.Sigma == 0 {
		return s, nil
	}
	var err error
	switch cfg.Method {
	case FGNDaviesHarte:
		if s.plan, err = ops.NewFGNPlan(cfg.Hurst, cfg.Steps); err != nil {
			return nil, err
		}
	case FGNMAFBM:
		if s.ma, err = ops.NewMAFBM(cfg.Hurst, cfg.K, cfg.GammaMax, float64(cfg.Steps)*cfg.StepSize); err != nil {
			return nil, err
		}
		s.scale = 1
		s.relError = s.ma.RelErrorSq()
	}
	return s, nil
}

// close frees the buffers and what the backend keeps for the noise (the MA-fBM transition, the
// fGn weights): a sweep builds a new approximation per call.
func (s *noiseSource) close() {
	closeAll(s.buf, s.y)
	if s.ma != nil {
		_ = ops.Release(s.b, s.ma)
	}
	if s.plan != nil {
		_ = ops.Release(s.b, s.plan)
	}
}

// generate returns the noise paths of chains [c0, c1) on the host: row (i−c0)·d + j is the path
// of chain i, coordinate j.
func (s *noiseSource) generate(c0, c1 int) ([]float64, error) {
	cfg, paths, steps := s.cfg, (c1-c0)*s.d, s.cfg.Steps
	draw := ops.Draw{Seed: cfg.Seed, Site: Site(0, PurposeFractional), FirstChain: (cfg.FirstChain + uint64(c0)) * uint64(s.d)}
	dev := s.b.Device()
	if cfg.Method == FGNCholesky {
		dev = tensor.CPU()
	}
	if s.buf == nil || s.buf.Dim(0) < paths {
		closeAll(s.buf, s.y)
		s.buf, s.y = nil, nil
		var err error
		if s.buf, err = tensor.New(dev, s.dt, paths, steps); err != nil {
			return nil, fmt.Errorf("allocate the noise (%d paths, %d steps) %v on %s: %w", paths, steps, s.dt, dev.Name(), err)
		}
		if cfg.Method == FGNMAFBM {
			if s.y, err = tensor.New(dev, s.dt, paths, cfg.K); err != nil {
				return nil, fmt.Errorf("allocate the ma-fbm state (%d, %d) %v on %s: %w", paths, cfg.K, s.dt, dev.Name(), err)
			}
		}
	}
	buf := s.buf
	if buf.Dim(0) != paths {
		var err error
		if buf, err = s.buf.View(0, paths, steps); err != nil {
			return nil, fmt.Errorf("noise block: %w", err)
		}
	}
	switch cfg.Method {
	case FGNDaviesHarte:
		if err := s.b.FGN(buf, s.plan, ops.FGNForm{}, draw); err != nil {
			return nil, err
		}
	case FGNCholesky:
		if err := ops.FGNCholesky(buf, cfg.Hurst, ops.FGNForm{}, draw); err != nil {
			return nil, err
		}
	case FGNMAFBM:
		y := s.y
		if y.Dim(0) != paths {
			var err error
			if y, err = s.y.View(0, paths, cfg.K); err != nil {
				return nil, fmt.Errorf("ma-fbm state block: %w", err)
			}
		}
		if err := y.Fill(0); err != nil {
			return nil, fmt.Errorf("ma-fbm state: %w", err)
		}
		if err := s.b.MAFBM(buf, y, s.ma, cfg.StepSize, draw, SitesPerStep); err != nil {
			return nil, err
		}
	}
	v, err := buf.Float64s()
	if err != nil {
		return nil, fmt.Errorf("copy the noise to the host: %w", err)
	}
	if cfg.Method == FGNMAFBM {
		// B̂(t_1..t_S) → increments, B̂(0) = 0.
		for p := 0; p < paths; p++ {
			row := v[p*steps : (p+1)*steps]
			for k := steps - 1; k > 0; k-- {
				row[k] -= row[k-1]
			}
		}
	}
	return v, nil
}
