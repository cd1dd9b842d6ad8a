package solvers

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// The registry's GFDM methods (see Methods): GFDMSample with GFDMSolverSDE and GFDMSolverODE.
const (
	MethodGFDM    = "gfdm"
	MethodGFDMODE = "gfdm-ode"
)

// The solvers of GFDMSample.
const (
	// GFDMSolverSDE is the Euler–Maruyama method on the reverse-time SDE
	// dZ = (F Z − G Gᵀ ∇log p_t(Z)) dt + G dW̄.
	GFDMSolverSDE = "sde"
	// GFDMSolverODE is Heun's method on the probability-flow ODE dZ/dt = F Z − ½ G Gᵀ ∇log p_t(Z).
	GFDMSolverODE = "ode"
)

// GFDMSolvers returns the solvers of GFDMSample.
func GFDMSolvers() []string { return []string{GFDMSolverSDE, GFDMSolverODE} }

// GFDMTMinCondition is the condition number of the equilibrated Σ(t) (GFDMProcess.Condition) at
// which the default last time t_min of GFDMSample is placed: the score there is accurate to
// about 1e-13·1e8 = 1e-5 relative (see GFDMMaxCondition).
const GFDMTMinCondition = 1e8

// DefaultGFDMTMinFloor is the smallest default t_min of GFDMSample.
const DefaultGFDMTMinFloor = 1e-3

// DefaultTMin returns the default last time t_min of GFDMSample: the smallest t ∈
// [DefaultGFDMTMinFloor, 1] at which the equilibrated Σ(t) has condition number at most
// GFDMTMinCondition, found by bisection in log t (the condition number falls with t near 0).
// With K ≥ 2 OU processes Σ(t) is nearly singular for small t — x_0 is then almost determined by
// the augmented state, its posterior spread σ̃(t) being tiny — so the sampler stops there and
// returns the posterior mean (see GFDMSample).
func (p *GFDMProcess) DefaultTMin() float64 {
	ok := func(t float64) bool {
		l, err := p.law(t)
		return err == nil && l.cond <= GFDMTMinCondition
	}
	if ok(DefaultGFDMTMinFloor) {
		return DefaultGFDMTMinFloor
	}
	lo, hi := math.Log(DefaultGFDMTMinFloor), 0.0
	if !ok(1) {
		return 1
	}
	for i := 0; i < 40; i++ {
		mid := 0.5 * (lo + hi)
		if ok(math.Exp(mid)) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return math.Exp(hi)
}

// GFDMSampleConfig configures GFDMSample. Process, Solver and Steps must be given.
type GFDMSampleConfig struct {
	// Process is the forward process (base, H, K, γ_max).
	Process *GFDMProcess
	// Solver is GFDMSolverSDE or GFDMSolverODE.
	Solver string
	// Steps n ≥ 1: n − 1 solver steps on the grid t_0 = 1 > … > t_{n−1} = t_min (geometric),
	// then the step to t = 0 (the posterior mean).
	Steps int
	// TMin is t_min ∈ (0, 1) (default Process.DefaultTMin()); with Steps = 1 it is unused.
	TMin float64
	// Exponential (GFDMSolverSDE only) replaces Euler–Maruyama by the exponential integrator:
	// each step integrates the reverse SDE exactly with the denoiser held at its value at the
	// step's start (see GFDMSample). Same cost per step, stable at any step size.
	Exponential bool
	// Seed keys the random stream; FirstChain is the chain index of row 0 (see Site).
	Seed, FirstChain uint64
	// Trajectory keeps x (the first component of Z) along the run in Result.Trace,
	// (n + 1, N, d): row i is x at t_i (i < n), the last row the samples.
	Trajectory bool
	// AugmentedTrajectory keeps the whole augmented state along the run in
	// Result.AugmentedTrace, (n, N, d, K + 1): row i is Z = (x, y_1, …, y_K) of every coordinate
	// at t_i (the grid in Result.AugmentedTimes); x is component 0. The step to t = 0 returns
	// the posterior mean of x_0 only, so there is no augmented row for it.
	AugmentedTrajectory bool
	// Progress, when set, receives the run's progress in steps.
	Progress Progress
}

// GFDMSample draws n samples of the data of den by generative fractional diffusion (Nobis et al.
// 2024; docs/math.md §5.5): the augmented state Z = (X, Y^1, …, Y^K) of every coordinate runs
// backwards in time from the exact terminal law at t = 1 with the exact augmented score of
// GFDMProcess.AugmentedScore,
//
//	∇_z log p_t(z) = −Σ(t)⁻¹ (z − φ(t) D(ũ; σ̃(t))),   ũ = ψᵀz/q (per coordinate),
//
// D the denoiser of den at the VE level σ̃ = q^{−1/2} (exact for Gaussian mixtures and data sets;
// den may be any Denoiser, a learned one included). On the geometric grid t_0 = 1 > … > t_{n−1} =
// t_min, with h = t_i − t_{i+1}, S_i the score at (z_i, t_i), F, G at t_i:
//
//	sde:  z_{i+1} = z_i − h (F z_i − G Gᵀ S_i) + √h G ξ_i          (Euler–Maruyama; n evaluations)
//	sde, Exponential:  z_{i+1} = A_i z_i + (φ_{i+1} − A_i φ_i) D_i + L_i ξ_i   (n evaluations)
//	ode:  v(z, t) = F(t) z − ½ G(t) G(t)ᵀ S(z, t),  z̃ = z_i − h v(z_i, t_i),
//	      z_{i+1} = z_i − (h/2)(v(z_i, t_i) + v(z̃, t_{i+1}))        (Heun; 2n − 1 evaluations)
//
// and the last step, to t = 0, returns the posterior mean E[X_0 | Z_{t_min}] = D(ũ; σ̃(t_min)) (as
// EDM's last Euler step to σ = 0): a sample whose deviation from an exact one is at most the
// posterior spread σ̃(t_min), listed in Result.Sigmas (σ̃ along the grid). The default t_min is
// where Σ(t) stops being well conditioned (DefaultTMin); there σ̃ is already small (K = 3, FVE,
// H = 0.3: t_min ≈ 0.07, σ̃ ≈ 2e-6).
//
// The explicit steps are stable for h·GᵀΣ⁻¹G ≲ 2 (SDE; twice that for the ODE), and GᵀΣ⁻¹G
// grows like 10/t to 90/t with K (at t = 1: 20 to 90): take n in the hundreds for K ≥ 3.
//
// The exponential integrator (Exponential) removes that limit. The reverse drift is
// F z + G Gᵀ Σ⁻¹(z − φ D): linear in z but for the denoiser D, and the stiff part G GᵀΣ⁻¹ is in
// the linear term. With D held at D_i = D(ũ_i; σ̃(t_i)) over the step the reverse SDE is that of
// the forward process conditioned on x_0 = D_i, whose law from t_i back to t_{i+1} is the exact
// Gaussian bridge: with Ψ = Φ(t_i)Φ(t_{i+1})⁻¹ the transition map of the forward SDE (integrated
// with the table's RK4 steps), Σ_i = Σ(t_i), Σ_{i+1} = Σ(t_{i+1}),
//
//	A_i = Σ_{i+1} Ψᵀ Σ_i⁻¹,   C_i = Σ_{i+1} − A_i Ψ Σ_{i+1},   L_i L_iᵀ = C_i,
//
// and ξ_i the K+1 normals per coordinate of Site(i, PurposeGFDMSample) (laid out as the start's).
// The only error left is D's change over the step, so few steps reach the accuracy Euler–Maruyama
// needs hundreds for (docs/math.md §5.5).
//
// Start: Z_1 = φ ũ + R with ũ the data noised to σ̃(1) (den must be a NoisedSampler; its draws
// are those of the exact starts, Site(0, PurposeInit) and Site(0, PurposeInitComponent)) and
// R ~ N(0, Σ − φφᵀ/q) independent of it, R = L ξ with L the positive semidefinite square root
// and ξ the K+1 normals per coordinate of Site(0, PurposeGFDM) (laid out as SampleForward's);
// this is exactly the law of Z_1 (AugmentedScore). The SDE's normals of step i are the (N, d)
// normals of Site(i, PurposeGFDMSample).
//
// Arithmetic: float64 on b's device. The state z (K+1, N, d), the statistics ũ and the denoiser's
// values (N, d) stay there; every step is one ops.AugmentedStep (Heun: two), which reads z and D,
// draws the step's normals, writes z and the next ũ (on the GPU one fused kernel launch,
// kernels/augmented.cu, bit for bit the CPU's arithmetic), then the denoiser runs on ũ. The
// terminal statistic is drawn on the host (den's NoisedSampler) and uploaded once; the samples
// are D at t_min moved to the host once and rounded once to dtype. A trajectory moves z to the
// host after every step. Cost per evaluation: one denoiser call of N rows plus about 3(K+1)²
// flops and 8(2K+4) bytes per coordinate.
func GFDMSample(b ops.Backend, den Denoiser, n int, dtype tensor.DType, cfg GFDMSampleConfig) (*Result, error) {
	const op = "gfdm sample"
	if b == nil {
		return nil, fmt.Errorf("%s: nil backend", op)
	}
	if den == nil {
		return nil, fmt.Errorf("%s: nil denoiser", op)
	}
	p := cfg.Process
	if p == nil {
		return nil, fmt.Errorf("%s: no forward process (set Process from NewGFDMProcess)", op)
	}
	switch cfg.Solver {
	case GFDMSolverSDE, GFDMSolverODE:
	default:
		return nil, fmt.Errorf("%s: solver %q: want one of %s", op, cfg.Solver, quoteAll(GFDMSolvers()))
	}
	if cfg.Exponential && cfg.Solver != GFDMSolverSDE {
		return nil, fmt.Errorf("%s: the exponential integrator is a solver of the reverse SDE (solver %q), not of %q", op, GFDMSolverSDE, cfg.Solver)
	}
	if cfg.Steps < 1 || uint64(cfg.Steps) >= MaxSteps {
		return nil, fmt.Errorf("%s: steps = %d: need at least 1", op, cfg.Steps)
	}
	if err := checkChains(op, n, cfg.FirstChain); err != nil {
		return nil, err
	}
	if dtype != tensor.F32 && dtype != tensor.F64 {
		return nil, fmt.Errorf("%s: dtype %v: want f32 or f64", op, dtype)
	}
	tMin := cfg.TMin
	if tMin == 0 {
		tMin = p.DefaultTMin()
	} else if !(tMin > 0 && tMin < 1) {
		return nil, fmt.Errorf("%s: t min = %g: must be in (0, 1)", op, tMin)
	}
	ns, ok := den.(NoisedSampler)
	if !ok {
		return nil, fmt.Errorf("%s: %s cannot draw its noised law exactly (the terminal law needs it)", op, den)
	}
	steps := cfg.Steps
	grid := make([]float64, steps)
	grid[0] = 1
	for i := 1; i < steps; i++ {
		grid[i] = math.Exp(math.Log(tMin) * float64(i) / float64(steps-1))
	}
	if steps > 1 {
		grid[steps-1] = tMin
	}
	laws := make([]*gfdmLaw, steps)
	for i, t := range grid {
		l, err := p.law(t)
		if err != nil {
			return nil, fmt.Errorf("%s: grid time %d: %w (raise t min)", op, i, err)
		}
		laws[i] = l
	}
	d, dev := den.Dim(), b.Device()
	nd, nk := n*d, p.n
	run, err := newSamplesRun(op, dev, dtype, n, d)
	if err != nil {
		return nil, err
	}
	defer run.release()
	res := run.res
	res.Sigmas = make([]float64, steps)
	for i, l := range laws {
		res.Sigmas[i] = l.sigmaVE
	}

	// Every step is one AugmentedStep on b's device (docs/math.md §5.5): the state z (K+1, N, d),
	// the statistics u and the denoiser's values D (N, d) stay there, float64.
	maps, err := gfdmMaps(p, laws, grid, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer func() {
		for _, m := range maps.all() {
			ops.Release(b, m)
		}
	}()
	st, err := newGFDMState(b, den, n, d, nk, cfg.Solver == GFDMSolverODE)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer st.close()
	st.evals = &res.Evals

	// The terminal law: Z_1 = φ ũ + R.
	u0 := make([]float64, nd)
	if err := ns.SampleNoised(u0, 1, 1/laws[0].q, cfg.Seed, cfg.FirstChain); err != nil {
		return nil, fmt.Errorf("%s: terminal law: %w", op, err)
	}
	if err := copyHost(st.d, u0); err != nil {
		return nil, fmt.Errorf("%s: terminal law: %w", op, err)
	}
	if err := b.AugmentedStep(st.z, st.z, nil, st.d, st.u, maps.start, drawAt(cfg.Seed, 0, PurposeGFDM, cfg.FirstChain)); err != nil {
		return nil, fmt.Errorf("%s: terminal law: %w", op, err)
	}

	var trace, aug []float64
	if cfg.Trajectory {
		trace = make([]float64, 0, (steps+1)*nd)
	}
	if cfg.AugmentedTrajectory {
		aug = make([]float64, 0, steps*nd*nk)
	}
	keep := func() error { // the trace stores x; the augmented trace (e, a) of the planes a·nd + e
		if trace == nil && aug == nil {
			return nil
		}
		z, err := st.z.Float64s()
		if err != nil {
			return fmt.Errorf("the trajectory: %w", err)
		}
		if trace != nil {
			trace = append(trace, z[:nd]...)
		}
		if aug != nil {
			for e := 0; e < nd; e++ {
				for a := 0; a < nk; a++ {
					aug = append(aug, z[a*nd+e])
				}
			}
		}
		return nil
	}
	prog := newProgress(cfg.Progress, int64(steps), dev)
	for i := 0; i+1 < steps; i++ {
		if err := keep(); err != nil {
			return nil, fmt.Errorf("%s: step %d: %w", op, i, err)
		}
		if err := st.denoise(laws[i]); err != nil {
			return nil, fmt.Errorf("%s: step %d (t = %g): %w", op, i, grid[i], err)
		}
		draw := drawAt(cfg.Seed, i, PurposeGFDMSample, cfg.FirstChain)
		if cfg.Solver == GFDMSolverODE {
			// Heun: the predictor into zp, the denoiser there, the corrector from (zp, z) into z.
			if err := b.AugmentedStep(st.zp, st.z, nil, st.d, st.u, maps.steps[i], draw); err != nil {
				return nil, fmt.Errorf("%s: step %d (t = %g): %w", op, i, grid[i], err)
			}
			if err := st.denoise(laws[i+1]); err != nil {
				return nil, fmt.Errorf("%s: step %d (t = %g): %w", op, i, grid[i+1], err)
			}
			if err := b.AugmentedStep(st.z, st.zp, st.z, st.d, st.u, maps.correct[i], draw); err != nil {
				return nil, fmt.Errorf("%s: step %d (t = %g): %w", op, i, grid[i+1], err)
			}
		} else if err := b.AugmentedStep(st.z, st.z, nil, st.d, st.u, maps.steps[i], draw); err != nil {
			return nil, fmt.Errorf("%s: step %d (t = %g): %w", op, i, grid[i], err)
		}
		if err := prog.step(int64(i + 1)); err != nil {
			return nil, fmt.Errorf("%s: step %d: %w", op, i, err)
		}
	}
	if err := keep(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if aug != nil {
		at, err := toDevice(dev, dtype, aug, steps, n, d, nk)
		if err != nil {
			return nil, fmt.Errorf("%s: the augmented trajectory: %w", op, err)
		}
		res.AugmentedTrace = at
		res.AugmentedTimes = append([]float64(nil), grid...)
	}
	// The step to t = 0: the posterior mean (u is the last law's projection, written by the last
	// step's map).
	last := laws[steps-1]
	if err := st.denoise(last); err != nil {
		return nil, fmt.Errorf("%s: last step (t = %g): %w", op, last.t, err)
	}
	dv, err := st.d.Float64s()
	if err != nil {
		return nil, fmt.Errorf("%s: read the samples: %w", op, err)
	}
	if err := copyHost(res.Samples, dv); err != nil {
		return nil, fmt.Errorf("%s: write the samples: %w", op, err)
	}
	nt := newNaNTracker(n)
	if trace != nil {
		trace = append(trace, dv...)
		tt, err := toDevice(dev, dtype, trace, steps+1, n, d)
		if err != nil {
			return nil, fmt.Errorf("%s: the trajectory: %w", op, err)
		}
		res.Trace = tt
	}
	if err := prog.step(int64(steps)); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := run.checkFinal(op, nt, nil, steps); err != nil {
		return nil, err
	}
	if res.Trace != nil {
		res.TraceSteps = make([]int, steps+1)
		for i := range res.TraceSteps {
			res.TraceSteps[i] = i
		}
	}
	return run.keep()
}

// gfdmState is GFDMSample's state on the backend's device, float64: z and (Heun only) the
// predictor zp (K+1, N, d), the statistics u and the denoiser's values d (N, d).
type gfdmState struct {
	b     ops.Backend
	den   Denoiser
	z, zp *tensor.Tensor
	u, d  *tensor.Tensor
	n     int
	evals *Evals
}

func newGFDMState(b ops.Backend, den Denoiser, n, d, nk int, heun bool) (*gfdmState, error) {
	s := &gfdmState{b: b, den: den, n: n}
	var err error
	dev := b.Device()
	if s.z, err = tensor.New(dev, tensor.F64, nk, n, d); err != nil {
		return nil, fmt.Errorf("augmented state (%d, %d, %d): %w", nk, n, d, err)
	}
	if heun {
		s.zp, err = tensor.New(dev, tensor.F64, nk, n, d)
	}
	if err == nil {
		if s.u, err = tensor.New(dev, tensor.F64, n, d); err == nil {
			s.d, err = tensor.New(dev, tensor.F64, n, d)
		}
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("augmented state (%d, %d, %d): %w", nk, n, d, err)
	}
	return s, nil
}

func (s *gfdmState) close() {
	for _, t := range []*tensor.Tensor{s.z, s.zp, s.u, s.d} {
		if t != nil {
			t.Close()
		}
	}
}

// denoise writes D(u; σ̃) of the law into s.d and counts one evaluation per row.
func (s *gfdmState) denoise(l *gfdmLaw) error {
	if err := s.den.Denoise(s.b, s.d, s.u, l.sigmaVE); err != nil {
		return fmt.Errorf("denoise at σ̃ = %g: %w", l.sigmaVE, err)
	}
	s.evals.ScoreEvals += int64(s.n)
	s.evals.ScoreCalls++
	return nil
}

// gfdmMapSet holds the AugmentedMaps of one GFDMSample run: the terminal law's, one per step
// (the Heun predictor for the ODE) and the Heun correctors.
type gfdmMapSet struct {
	start          *ops.AugmentedMap
	steps, correct []*ops.AugmentedMap
}

func (m *gfdmMapSet) all() []*ops.AugmentedMap {
	out := append([]*ops.AugmentedMap{m.start}, m.steps...)
	return append(out, m.correct...)
}

// gfdmMaps builds the maps of GFDMSample's steps on the grid (see GFDMSample). Each map also
// projects its result for the next denoiser evaluation: u = ψᵀz/q of the law at the time the
// state reaches. With F, g at t_i, P_i = Σ(t_i)⁻¹ and h = t_i − t_{i+1}:
//
//	start:  z = φ_0 ũ + L_0 ξ                                     (L_0 L_0ᵀ = Σ_0 − φ_0φ_0ᵀ/q_0)
//	sde:    z' = (I − hF) z − h g gᵀ P_i (z − φ_i D) + √h g ξ
//	exp:    z' = A_i (z − φ_i D) + φ_{i+1} D + L_i ξ
//	ode:    zp = (I − hF) z − (h/2) g gᵀ P_i (z − φ_i D)
//	        z' = ½ z + (½ I − (h/2) F') zp − (h/4) g' g'ᵀ P_{i+1} (zp − φ_{i+1} D')   (F', g' at t_{i+1})
//
// the score −P(z − φD) being applied through its residual.
func gfdmMaps(p *GFDMProcess, laws []*gfdmLaw, grid []float64, cfg GFDMSampleConfig) (*gfdmMapSet, error) {
	nk := p.n
	l0 := laws[0]
	resid := make([]float64, nk*nk)
	for a := 0; a < nk; a++ {
		for c := 0; c < nk; c++ {
			resid[a*nk+c] = l0.sigma[a*nk+c] - l0.phi[a]*l0.phi[c]/l0.q
		}
	}
	lr, err := covarianceFactor(resid, nk)
	if err != nil {
		return nil, fmt.Errorf("terminal law: residual covariance: %w", err)
	}
	set := &gfdmMapSet{}
	if set.start, err = ops.NewAugmentedMap(ops.AugmentedSpec{M: nk, R: nk, Bias: l0.phi, L: lr, W: l0.psi, Q: l0.q}); err != nil {
		return nil, fmt.Errorf("terminal law: %w", err)
	}
	f, g := make([]float64, nk*nk), make([]float64, nk)
	// linear returns c0·I − c1·F and −c2·g gᵀ P of the law (F, g at its time).
	linear := func(l *gfdmLaw, c0, c1, c2 float64) (a, c []float64) {
		p.coefficients(f, g, l.t)
		a, c = make([]float64, nk*nk), make([]float64, nk*nk)
		gp := make([]float64, nk) // gᵀP
		for k := 0; k < nk; k++ {
			for j := 0; j < nk; j++ {
				gp[k] += g[j] * l.prec[j*nk+k]
			}
		}
		for r := 0; r < nk; r++ {
			for k := 0; k < nk; k++ {
				a[r*nk+k] = -c1 * f[r*nk+k]
				c[r*nk+k] = -c2 * g[r] * gp[k]
			}
			a[r*nk+r] += c0
		}
		return a, c
	}
	for i := 0; i+1 < len(laws); i++ {
		li, lj := laws[i], laws[i+1]
		h := grid[i] - grid[i+1]
		var spec ops.AugmentedSpec
		switch {
		case cfg.Exponential:
			es, err := newGFDMExpStep(p, li, lj)
			if err != nil {
				return nil, fmt.Errorf("step %d (t = %g → %g): %w", i, grid[i], grid[i+1], err)
			}
			spec = ops.AugmentedSpec{M: nk, R: nk, C: es.a, Phi: li.phi, Bias: lj.phi, L: es.l}
		case cfg.Solver == GFDMSolverSDE:
			a, c := linear(li, 1, h, h)
			l := make([]float64, nk)
			for k := range l {
				l[k] = math.Sqrt(h) * g[k]
			}
			spec = ops.AugmentedSpec{M: nk, R: 1, A: a, C: c, Phi: li.phi, L: l}
		default:
			a, c := linear(li, 1, h, h/2)
			spec = ops.AugmentedSpec{M: nk, A: a, C: c, Phi: li.phi}
			a2, c2 := linear(lj, 0.5, h/2, h/4)
			half := make([]float64, nk*nk)
			for k := 0; k < nk; k++ {
				half[k*nk+k] = 0.5
			}
			cm, err := ops.NewAugmentedMap(ops.AugmentedSpec{M: nk, A: a2, C: c2, Phi: lj.phi, B: half, W: lj.psi, Q: lj.q})
			if err != nil {
				return nil, fmt.Errorf("step %d (t = %g): %w", i, grid[i+1], err)
			}
			set.correct = append(set.correct, cm)
		}
		spec.W, spec.Q = lj.psi, lj.q
		m, err := ops.NewAugmentedMap(spec)
		if err != nil {
			return nil, fmt.Errorf("step %d (t = %g): %w", i, grid[i], err)
		}
		set.steps = append(set.steps, m)
	}
	return set, nil
}

// gfdmExpStep is one step of the exponential integrator from t_i to t_{i+1} (see GFDMSample):
// z ← A z + b D + L ξ with A = Σ_{i+1}ΨᵀΣ_i⁻¹, b = φ_{i+1} − A φ_i and L L ᵀ = Σ_{i+1} − AΨΣ_{i+1}.
type gfdmExpStep struct {
	a, b, l []float64
}

// newGFDMExpStep precomputes the step from the law at t (from) back to the law at s < t (to).
func newGFDMExpStep(p *GFDMProcess, from, to *gfdmLaw) (*gfdmExpStep, error) {
	n := p.n
	psi := make([]float64, n*n)
	p.transition(psi, from.t, to.t)
	// cross = Σ_s Ψᵀ = Cov(Z_s, Z_t | x_0); A = cross Σ_t⁻¹.
	cross := make([]float64, n*n)
	for a := 0; a < n; a++ {
		for c := 0; c < n; c++ {
			acc := 0.0
			for k := 0; k < n; k++ {
				acc += to.sigma[a*n+k] * psi[c*n+k]
			}
			cross[a*n+c] = acc
		}
	}
	st := &gfdmExpStep{a: make([]float64, n*n), b: make([]float64, n)}
	for a := 0; a < n; a++ {
		for c := 0; c < n; c++ {
			acc := 0.0
			for k := 0; k < n; k++ {
				acc += cross[a*n+k] * from.prec[k*n+c]
			}
			st.a[a*n+c] = acc
		}
	}
	cov := make([]float64, n*n)
	for a := 0; a < n; a++ {
		bv := to.phi[a]
		for c := 0; c < n; c++ {
			bv -= st.a[a*n+c] * from.phi[c]
		}
		st.b[a] = bv
		for c := 0; c < n; c++ {
			acc := to.sigma[a*n+c]
			for k := 0; k < n; k++ {
				acc -= st.a[a*n+k] * cross[c*n+k] // (A ΨΣ_s)_{ac} = (A crossᵀ)_{ac}
			}
			cov[a*n+c] = acc
		}
	}
	for a := 0; a < n; a++ { // symmetrise the rounding
		for c := a + 1; c < n; c++ {
			m := 0.5 * (cov[a*n+c] + cov[c*n+a])
			cov[a*n+c], cov[c*n+a] = m, m
		}
	}
	// C is a difference of terms of the size of Σ_{i+1} formed through Σ_i⁻¹: its rounding is the
	// table's relative error times up to the condition number of Σ_i.
	var err error
	if st.l, err = covarianceFactorTol(cov, n, gfdmPSDTol*math.Max(1, from.cond)); err != nil {
		return nil, fmt.Errorf("bridge covariance: %w", err)
	}
	return st, nil
}
