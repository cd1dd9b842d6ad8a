package solvers

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// The rectified-flow methods (docs/math.md §5.3), as the command names them.
const (
	// MethodRF is the Euler sampler of the rectified-flow ODE on the uniform grid.
	MethodRF = "rf"
	// MethodRFLowDim is the Euler sampler on the low-dimension-adaptive grid (LowDimGrid).
	MethodRFLowDim = "rf-lowdim"
	// MethodRFStochastic is the stochastic rectified-flow sampler (the stochastic-localisation
	// step, see RectifiedFlow) on the low-dimension-adaptive grid.
	MethodRFStochastic = "rf-stochastic"
)

// Grids of RFConfig.Grid.
const (
	RFGridUniform = "uniform"
	RFGridLowDim  = "lowdim"
)

// DefaultRFTMin is δ of LowDimGrid when RFConfig.TMin is 0: the first and the last grid times
// inside (0, 1) are δ and 1 − δ.
const DefaultRFTMin = 1e-3

// RFConfig configures RectifiedFlow. Either Steps (with Grid) or Times must be given.
type RFConfig struct {
	// Grid is RFGridUniform (the default when empty): t_i = i/Steps, or RFGridLowDim: the
	// U-shaped grid of LowDimGrid(Steps, TMin).
	Grid string
	// Steps is the number K of Euler steps (≥ 1 on the uniform grid, ≥ 3 on the low-dimension
	// grid). Cost: K − 1 denoiser evaluations per chain (the first step, at t = 0, uses the
	// data mean in closed form).
	Steps int
	// TMin is δ ∈ (0, ½) of the low-dimension grid (default DefaultRFTMin).
	TMin float64
	// Stochastic runs the stochastic sampler instead of the Euler step of the ODE (see
	// RectifiedFlow); its fresh normals of step i are drawn at Site(i, PurposeDiffusion).
	Stochastic bool
	// Times, when not nil, replaces Grid, Steps and TMin: the grid 0 = t_0 < t_1 < … < t_K = 1.
	Times []float64
	// Seed keys the random stream and FirstChain is the chain index of row 0 (see Site): the start
	// x_0 ~ N(0, I) is Site(0, PurposeInit).
	Seed, FirstChain uint64
	// Trajectory keeps every state in Result.Trace, shape (K + 1, N, d): row i is x_{t_i}
	// (TraceSteps[i] = i).
	Trajectory bool
	// Progress, when set, receives the steps done out of Steps (see Progress).
	Progress Progress
}

// RFConfigFor returns the configuration of one of the command's methods (MethodRF,
// MethodRFLowDim, MethodRFStochastic) with K steps; the caller sets the seed and the rest.
func RFConfigFor(method string, steps int) (RFConfig, error) {
	switch method {
	case MethodRF:
		return RFConfig{Grid: RFGridUniform, Steps: steps}, nil
	case MethodRFLowDim:
		return RFConfig{Grid: RFGridLowDim, Steps: steps}, nil
	case MethodRFStochastic:
		return RFConfig{Grid: RFGridLowDim, Steps: steps, Stochastic: true}, nil
	}
	return RFConfig{}, fmt.Errorf("rectified flow: unknown method %q (want %q, %q or %q)", method, MethodRF, MethodRFLowDim, MethodRFStochastic)
}

// RFTimes returns the time grid cfg describes (validated): Times as given, or the uniform or
// low-dimension grid of Steps.
func RFTimes(cfg RFConfig) ([]float64, error) {
	if cfg.Times != nil {
		if cfg.Steps != 0 || cfg.Grid != "" || cfg.TMin != 0 {
			return nil, fmt.Errorf("give either Times or Grid, Steps and TMin, not both")
		}
		g := cfg.Times
		if len(g) < 2 {
			return nil, fmt.Errorf("times %v: need at least two (one step)", g)
		}
		for i, t := range g {
			if math.IsNaN(t) || math.IsInf(t, 0) {
				return nil, fmt.Errorf("times[%d] = %g: times must be finite", i, t)
			}
			if i > 0 && !(t > g[i-1]) {
				return nil, fmt.Errorf("times[%d] = %g ≤ times[%d] = %g: times must increase strictly", i, t, i-1, g[i-1])
			}
		}
		if g[0] != 0 || g[len(g)-1] != 1 {
			return nil, fmt.Errorf("times run from %g to %g: rectified flow runs from t = 0 (the Gaussian) to t = 1 (the data)", g[0], g[len(g)-1])
		}
		return append([]float64(nil), g...), nil
	}
	if cfg.Steps <= 0 {
		return nil, fmt.Errorf("steps = %d: need at least one step (or give Times)", cfg.Steps)
	}
	if cfg.Steps > MaxDiffusionSteps {
		return nil, fmt.Errorf("steps = %d: at most %d (the grid is held on the host)", cfg.Steps, MaxDiffusionSteps)
	}
	switch cfg.Grid {
	case "", RFGridUniform:
		if cfg.TMin != 0 {
			return nil, fmt.Errorf("TMin = %g: only the %q grid takes one", cfg.TMin, RFGridLowDim)
		}
		g := make([]float64, cfg.Steps+1)
		for i := range g {
			g[i] = float64(i) / float64(cfg.Steps)
		}
		return g, nil
	case RFGridLowDim:
		tMin := cfg.TMin
		if tMin == 0 {
			tMin = DefaultRFTMin
		}
		return LowDimGrid(cfg.Steps, tMin)
	}
	return nil, fmt.Errorf("unknown grid %q (want %q or %q)", cfg.Grid, RFGridUniform, RFGridLowDim)
}

// LowDimGrid is the U-shaped time grid of K ≥ 3 steps on [0, 1] whose steps are geometric near
// both ends (Roy, Rinaldo & Sarkar's low-dimension-adaptive discretisation), with δ = tMin ∈
// (0, ½):
//
//	t_0 = 0,  t_K = 1,
//	t_i = g((i − 1)/(K − 2))  for i = 1 … K − 1,
//	g(u) = δ · (1/(2δ))^{2u}     for u ≤ ½,     g(u) = 1 − g(1 − u)   for u ≥ ½.
//
// So t_1 = δ, t_{K−1} = 1 − δ, the grid is symmetric (t_{K−i} = 1 − t_i), and with the ratio
// ρ = (1/(2δ))^{2/(K−2)} the steps inside [δ, ½] are h_i = t_{i+1} − t_i = (ρ − 1) t_i and those
// inside [½, 1 − δ] are h_i = (ρ − 1)(1 − t_{i+1}): h_i ∝ min(t_i, 1 − t_i) within the factor
// ρ (→ 1 as K grows), the step-size profile of the paper, refined where the velocity field is
// stiff (the data's fine scales near t = 1, the Gaussian's near t = 0). The first step [0, δ]
// and the last [1 − δ, 1] are the two ends: the first uses the closed-form velocity at t = 0,
// the last one lands on the denoiser's output D(x; 1 − δ).
func LowDimGrid(K int, tMin float64) ([]float64, error) {
	if K < 3 {
		return nil, fmt.Errorf("low-dimension grid: steps K = %d: need at least 3 (t = 0, δ, 1 − δ, 1)", K)
	}
	if K > MaxDiffusionSteps {
		return nil, fmt.Errorf("low-dimension grid: steps K = %d: at most %d", K, MaxDiffusionSteps)
	}
	if !(tMin > 0 && tMin < 0.5) {
		return nil, fmt.Errorf("low-dimension grid: tMin δ = %g: must be in (0, 1/2)", tMin)
	}
	g := func(u float64) float64 {
		if u <= 0.5 {
			return tMin * math.Pow(1/(2*tMin), 2*u)
		}
		return 1 - tMin*math.Pow(1/(2*tMin), 2*(1-u))
	}
	t := make([]float64, K+1)
	m := float64(K - 2)
	for i := 1; i < K; i++ {
		t[i] = g(float64(i-1) / m)
	}
	t[K] = 1
	return t, nil
}

// dataMean returns E[x1] of the target's data law: Σ_k w_k μ_k for a mixture, the mean of the
// points for a data set, the data mean stored with a network (its training data's mean).
func dataMean(t target.Target) ([]float64, error) {
	switch tt := t.(type) {
	case target.GMM:
		return gmmMean(tt.Mixture)
	case *target.GMM:
		return gmmMean(tt.Mixture)
	case target.Empirical:
		return empiricalMean(tt.DataSet)
	case *target.Empirical:
		return empiricalMean(tt.DataSet)
	case target.MLP:
		return mlpMean(tt.Net), nil
	case *target.MLP:
		return mlpMean(tt.Net), nil
	}
	return nil, fmt.Errorf("target %s: its mean (the velocity at t = 0) is known only for Gaussian mixtures, data sets and networks", t)
}

func gmmMean(g *ops.GMM) ([]float64, error) {
	if g == nil {
		return nil, fmt.Errorf("nil mixture")
	}
	p := g.Params()
	m := make([]float64, p.D)
	mx := math.Inf(-1)
	for _, lw := range p.LogWeights {
		mx = math.Max(mx, lw)
	}
	total := 0.0
	for k, lw := range p.LogWeights {
		w := math.Exp(lw - mx)
		total += w
		for j := range m {
			m[j] += w * p.Means[k*p.D+j]
		}
	}
	for j := range m {
		m[j] /= total
	}
	return m, nil
}

func empiricalMean(e *ops.Empirical) ([]float64, error) {
	if e == nil {
		return nil, fmt.Errorf("nil data set")
	}
	d, n := e.Dim(), e.Points()
	m := make([]float64, d)
	for i := 0; i < n; i++ {
		for j := range m {
			m[j] += e.At(i, j)
		}
	}
	for j := range m {
		m[j] /= float64(n)
	}
	return m, nil
}

// rfNoise is the corruption of the data at rectified-flow time t ∈ (0, 1): x_t = t x1 + (1 − t) x0.
func rfNoise(t float64) ops.Noise {
	return ops.Noise{Kind: ops.Affine, Scale: t, Var: (1 - t) * (1 - t)}
}

// RectifiedFlow samples the target t (the data law of x1) with rectified flow (docs/math.md §5.3):
// n chains in dtype on b's device, from x_0 ~ N(0, I) (Site(0, PurposeInit)) along the time grid
// 0 = t_0 < … < t_K = 1 of cfg (RFTimes).
//
// The velocity. With x_t = (1 − t) x0 + t x1, x0 ~ N(0, I) independent of x1 ~ data, the law of x_t
// is the data corrupted by ops.Affine noise with a = t and s = (1 − t)², so the target's denoiser
// at that noise is D(x; t) = E[x1 | x_t = x] (Tweedie, computed in closed form by
// ops.Backend.GMMScore for a mixture and by EmpiricalScore — the softmax-weighted mean of the
// points — for a data set). Since E[x0 | x_t = x] = (x − t D)/(1 − t),
//
//	v(x, t) = E[x1 − x0 | x_t = x] = (D(x; t) − x) / (1 − t),   t ∈ (0, 1),
//	v(x, 0) = E[x1] − x                                           (x_0 is independent of x1),
//
// the mean E[x1] being Σ_k w_k μ_k for a mixture and the points' mean for a data set (other
// targets are refused). For a mixture with small t the Tweedie form (x + s ∇log p)/t loses about
// log10(1/t) digits (harmless in float64; in float32 it bounds the useful δ of LowDimGrid to
// ≳ 10⁻³).
//
// The Euler sampler (cfg.Stochastic false), one ops.Backend.Combine per step, h_i = t_{i+1} − t_i:
//
//	x_{i+1} = x_i + h_i v(x_i, t_i) = (1 − r_i) x_i + r_i D(x_i; t_i),   r_i = h_i / (1 − t_i).
//
// The last step has r = 1: it returns D(x_{K−1}; t_{K−1}), so v is never evaluated at t = 1.
// Euler's error is O(max_i h_i) for smooth data laws (first order; RF's velocity is affine in x for
// Gaussian data, with the known flow map x0 ↦ μ + s x0 for N(μ, s² I)).
//
// The stochastic sampler (cfg.Stochastic true). The time change τ = (t/(1 − t))² and
// y = t x/(1 − t)² turn x_t into y_τ = τ x1 + √τ x0, a stochastic-localisation process: in law
// y_τ = τ x1 + W_τ for a Brownian motion W, whose drift in its own filtration is
// dy = E[x1 | y_τ] dτ + dW_τ = D dτ + dW_τ. In x and t that SDE reads
//
//	dx = [ v(x, t) + ((1 − t)/t) ∇log p_t(x) ] dt + sqrt(2(1 − t)/t) dB_t,
//	∇log p_t(x) = (t D(x; t) − x)/(1 − t)²,
//
// which has RF's marginals for every t (the Fokker–Planck terms of the added score drift and of
// the noise cancel) and is the DDPM reverse SDE after the change of time and scale — the link the
// paper builds on. Its discretisation freezes D over a step, where the SDE in y is exact:
// y' = y + (τ' − τ) D + sqrt(τ' − τ) ξ. Back in x, from t to t' (Site(i, PurposeDiffusion)):
//
//	x' = c_x x + c_D D(x; t) + c_ξ ξ,
//	c_x = t (1 − t')² / (t' (1 − t)²),
//	c_D = (t' − t)(t' + t − 2 t t') / (t' (1 − t)²),
//	c_ξ = (1 − t') sqrt((t' − t)(t' + t − 2 t t')) / (t' (1 − t)),
//
// (τ' − τ = (t' − t)(t' + t − 2tt')/((1 − t)²(1 − t')²), written so no difference of close
// numbers is formed). The step is exact when the data is a point mass (D constant): it maps
// N(tμ, (1 − t)² I) to N(t'μ, (1 − t')² I). At t = 0, c_x = 0 (y_0 = 0: the start is forgotten,
// x_1 = t_1 E[x1] + (1 − t_1) ξ), and at t' = 1, c_x = c_ξ = 0 and c_D = 1: the last step returns
// D(x_{K−1}; t_{K−1}) as the Euler sampler does.
//
// The result's Trace (cfg.Trajectory) holds x_{t_0} … x_{t_K}; the NaN report checks the end
// state (and every trace row). Cost: one denoiser evaluation per step with t_i > 0.
func RectifiedFlow(b ops.Backend, t target.Target, n int, dtype tensor.DType, cfg RFConfig) (*Result, error) {
	op := "rectified flow"
	if cfg.Stochastic {
		op = "stochastic rectified flow"
	}
	if b == nil {
		return nil, fmt.Errorf("%s: nil backend", op)
	}
	if t == nil {
		return nil, fmt.Errorf("%s: nil target", op)
	}
	grid, err := RFTimes(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	K := len(grid) - 1
	if uint64(K) > MaxSteps {
		return nil, fmt.Errorf("%s: %d steps: at most %d", op, K, uint64(MaxSteps))
	}
	if err := checkChains(op, n, cfg.FirstChain); err != nil {
		return nil, err
	}
	mean, err := dataMean(t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	d, dev := t.Dim(), b.Device()
	if len(mean) != d {
		return nil, fmt.Errorf("%s: target %s has dimension %d but a mean of %d coordinates", op, t, d, len(mean))
	}
	run, err := newSamplesRun(op, dev, dtype, n, d)
	if err != nil {
		return nil, err
	}
	defer run.release()
	res, x := run.res, run.res.Samples
	den, err := tensor.New(dev, dtype, n, d)
	if err != nil {
		return nil, fmt.Errorf("%s: allocate the denoiser output (%d, %d): %w", op, n, d, err)
	}
	defer den.Close()
	if err := t.Check(dev, ops.ScoreOutputs{Denoiser: den}, x, rfNoise(0.5)); err != nil {
		return nil, fmt.Errorf("%s: target %s cannot give a denoiser under affine noise: %w", op, t, err)
	}

	if err := b.Normal(x, drawAt(cfg.Seed, 0, PurposeInit, cfg.FirstChain)); err != nil {
		return nil, fmt.Errorf("%s: initial state: %w", op, err)
	}
	nt := newNaNTracker(n)
	var tr *tracer
	if cfg.Trajectory {
		if tr, err = newTracer(dev, dtype, K+1, n, d); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		res.Trace = tr.t
		if err := keepAndCheck(tr, nt, x, 0); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	prog := newProgress(cfg.Progress, int64(K), b.Device())
	for i := 0; i < K; i++ {
		t0, t1 := grid[i], grid[i+1]
		if t0 == 0 {
			if err := fillRows(den, mean); err != nil {
				return nil, fmt.Errorf("%s: step %d: the data mean: %w", op, i, err)
			}
		} else {
			if err := t.Evaluate(b, ops.ScoreOutputs{Denoiser: den}, x, rfNoise(t0)); err != nil {
				return nil, fmt.Errorf("%s: step %d (t = %g): evaluate the denoiser: %w", op, i, t0, err)
			}
			res.ScoreEvals += int64(n) // a denoiser evaluation counts as a score evaluation
			res.ScoreCalls++
		}
		terms, noise := rfStep(t0, t1, cfg.Stochastic)
		terms[0].T, terms[1].T = x, den
		if err := b.Combine(x, terms, noise, drawAt(cfg.Seed, i, PurposeDiffusion, cfg.FirstChain)); err != nil {
			return nil, fmt.Errorf("%s: step %d (t = %g): %w", op, i, t0, err)
		}
		if tr != nil {
			if err := keepAndCheck(tr, nt, x, i+1); err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
		}
		if err := prog.step(int64(i + 1)); err != nil {
			return nil, fmt.Errorf("%s: step %d (t = %g): %w", op, i, t0, err)
		}
	}
	if err := run.checkFinal(op, nt, tr, K); err != nil {
		return nil, err
	}
	return run.keep()
}

// rfStep returns the coefficients of x (term 0) and D (term 1) and the noise coefficient of one
// step from t to t' (see RectifiedFlow).
func rfStep(t, t1 float64, stochastic bool) ([]ops.Term, float64) {
	if !stochastic {
		r := (t1 - t) / (1 - t)
		return []ops.Term{{C: 1 - r}, {C: r}}, 0
	}
	q := (t1 - t) * (t1 + t - 2*t*t1)
	cx := t * (1 - t1) * (1 - t1) / (t1 * (1 - t) * (1 - t))
	cd := q / (t1 * (1 - t) * (1 - t))
	cxi := (1 - t1) * math.Sqrt(q) / (t1 * (1 - t))
	return []ops.Term{{C: cx}, {C: cd}}, cxi
}

// fillRows sets every row of dst (N, d) to row (d values), on any device.
func fillRows(dst *tensor.Tensor, row []float64) error {
	n, d := dst.Dim(0), dst.Dim(1)
	v := make([]float64, n*d)
	for i := 0; i < n; i++ {
		copy(v[i*d:(i+1)*d], row)
	}
	h, err := tensor.FromFloat64s(dst.DType(), v, n, d)
	if err != nil {
		return err
	}
	return dst.CopyFrom(h)
}

// mlpMean is the data mean a network was trained around (its data.mean parameter).
func mlpMean(m *ops.MLP) []float64 {
	o := m.Offset("data.mean")
	return append([]float64(nil), m.Packed()[o:o+m.Dim()]...)
}
