package solvers

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/tensor"
)

// LIMConfig configures LIM. A grid (Steps, or Sigmas) must be given; every other zero field
// means its default.
type LIMConfig struct {
	// Alpha α ∈ (1, 2] is the stability index of the noise (default DefaultLIMAlpha). With a
	// *LIMDenoiser it must be the denoiser's (0 takes the denoiser's).
	Alpha float64
	// Steps, Schedule, SigmaMin, SigmaMax, Rho and Sigmas make the grid of levels
	// ρ_0 > ρ_1 > … > ρ_K = 0 (ρ = s/a, the noise-to-signal ratio), exactly as DiffusionConfig's
	// (defaults: the EDM schedule on [DefaultSigmaMin, DefaultSigmaMax], ρ-exponent DefaultRho).
	Steps              int
	Schedule           string
	SigmaMin, SigmaMax float64
	Rho                float64
	Sigmas             []float64
	// Eta η ∈ [0, 1] is the stochasticity (0, the default: deterministic; see LIM).
	Eta float64
	// Clamp > 0 clips every value of the α-stable noise a step injects (and of the prior start's)
	// to [−Clamp, Clamp], as the reference implementation does with 20, and counts the values
	// clipped in Result.Clamped; 0 (default) clips nothing. The exact start is never clipped.
	Clamp float64
	// Seed keys the random stream; FirstChain is the chain index of row 0 (see Site and
	// PurposeLIM).
	Seed, FirstChain uint64
	// Trajectory keeps the states in Result.Trace, (K+1, N, d), row i the VE state y_i at ρ_i
	// (the VP state is a_i y_i, LIMScales), and the denoiser outputs in Result.Denoised, (K, N, d).
	Trajectory bool
	// Init: InitExact (default) the exact law of the data noised to ρ_0 (the denoiser must be a
	// *LIMDenoiser; SampleLIMNoised with a = 1, s = ρ_0), InitPrior the noise alone, ρ_0 S.
	Init string
	// Progress, when set, receives the steps done out of K.
	Progress Progress
}

// limCoeffs returns the coefficient c of y_i − D in the LIM step from level r to rn and the scale
// of the fresh α-stable noise (see LIM). With η = 0 they are DDIM's, rn/r and 0, exactly.
func limCoeffs(r, rn, alpha, eta float64) (c, noise float64) {
	if eta == 0 {
		return rn / r, 0
	}
	ratio := rn / r
	beta := math.Pow(-math.Expm1(alpha*math.Log(ratio)), 1/alpha) // (1 − (ρ_{i+1}/ρ_i)^α)^{1/α}
	if rn == 0 {
		beta = 1
	}
	c = ratio * math.Pow(math.Max(0, 1-math.Pow(eta*beta, alpha)), 1/alpha)
	return c, eta * rn * beta
}

// LIM samples n chains in dtype on b's device with the DDIM-type sampler of the Lévy–Itō model
// (docs/math.md §5.2.1) on den, the LIM denoiser D(y; ρ) = E[X_0 | X_0 + ρ S = y] (usually a
// *LIMDenoiser; a learned network of the same meaning works with Init = InitPrior).
//
// In the VP coordinates x_t = a_t X_0 + s_t S (a^α + s^α = 1) the step from t to s is
//
//	x_s = a_s x̂0 + (s_s^α − c^α)^{1/α} (x_t − a_t x̂0)/s_t + c S',   c = η (s_s/s_t) b,
//	b = (1 − (a_t/a_s)^α)^{1/α},
//
// S' fresh isotropic α-stable noise: if (x_t − a_t x̂0)/s_t were the forward noise S, the sum of
// the two independent stable terms would be s_s S in law (u S + v S' ~ (u^α + v^α)^{1/α} S), so
// the step keeps the forward marginals; b is the scale of the forward transition
// x_t = (a_t/a_s) x_s + b S”, and c is the stable analogue of DDPM's posterior scale. In the VE
// state y = x/a, with r = ρ_{i+1}/ρ_i, it reads
//
//	y_{i+1} = D_i + r (1 − η^α (1 − r^α))^{1/α} (y_i − D_i) + η ρ_{i+1} (1 − r^α)^{1/α} S',
//
// D_i = D(y_i; ρ_i): one denoiser evaluation, one ops.Backend.Combine and, for η > 0, one
// ops.Backend.Stable (isotropic, clamped by cfg.Clamp) at Site(i+1, PurposeLIM) per step. At
// α = 2 it is DDIM's step (Diffusion, "ddim") with the same η; with η = 0 it is the same update
// as DDIM's to the bit, so LIM at α = 2, η = 0 with an exact start reproduces Diffusion's "ddim"
// up to the round-off of the two denoisers. The last step (ρ_K = 0) ends at D_{K−1}.
//
// With η = 0 the update is Euler's method for dy/dρ = (y − D(y; ρ))/ρ = E[S | y_ρ = y], the
// velocity that carries the law of X_0 + ρ S along ρ for any law of S, which is why the
// deterministic sampler needs no stability property.
func LIM(b ops.Backend, den Denoiser, n int, dtype tensor.DType, cfg LIMConfig) (*Result, error) {
	const op = "lim"
	if b == nil {
		return nil, fmt.Errorf("%s: nil backend", op)
	}
	if den == nil {
		return nil, fmt.Errorf("%s: nil denoiser", op)
	}
	if dtype != tensor.F32 && dtype != tensor.F64 {
		return nil, fmt.Errorf("%s: dtype %v: want f32 or f64", op, dtype)
	}
	ld, isLIM := den.(*LIMDenoiser)
	if cfg.Alpha == 0 {
		cfg.Alpha = DefaultLIMAlpha
		if isLIM {
			cfg.Alpha = ld.Alpha()
		}
	}
	if err := CheckLIMAlpha(cfg.Alpha); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if isLIM && ld.Alpha() != cfg.Alpha {
		return nil, fmt.Errorf("%s: alpha = %g, but the denoiser is for alpha = %g", op, cfg.Alpha, ld.Alpha())
	}
	if !(cfg.Eta >= 0 && cfg.Eta <= 1) {
		return nil, fmt.Errorf("%s: eta = %g: must be in [0, 1]", op, cfg.Eta)
	}
	if !(cfg.Clamp >= 0) || math.IsInf(cfg.Clamp, 0) {
		return nil, fmt.Errorf("%s: clamp = %g: must be 0 (none) or a finite number > 0", op, cfg.Clamp)
	}
	dc := DiffusionConfig{Method: MethodDDIM, Steps: cfg.Steps, Schedule: cfg.Schedule, SigmaMin: cfg.SigmaMin,
		SigmaMax: cfg.SigmaMax, Rho: cfg.Rho, Sigmas: cfg.Sigmas, Init: cfg.Init, FirstChain: cfg.FirstChain}
	dc, grid, err := dc.validate(n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if dc.Init == InitExact && !isLIM {
		return nil, fmt.Errorf("%s: %s cannot draw its noised law exactly (the default start): start from the noise alone with Init %q (--init %s)",
			op, den, InitPrior, InitPrior)
	}
	K, d, dev := len(grid)-1, den.Dim(), b.Device()
	run, err := newSamplesRun(op, dev, dtype, n, d)
	if err != nil {
		return nil, err
	}
	defer run.release()
	res, x := run.res, run.res.Samples
	res.Sigmas = grid
	dn, err := tensor.New(dev, dtype, n, d)
	if err != nil {
		return nil, fmt.Errorf("%s: allocate the denoiser output: %w", op, err)
	}
	defer dn.Close()
	var noise *tensor.Tensor
	spec := ops.StableSpec{Kind: ops.StableIsotropic, Alpha: cfg.Alpha, Clamp: cfg.Clamp}
	if cfg.Eta > 0 || dc.Init == InitPrior {
		if noise, err = tensor.New(dev, dtype, n, d); err != nil {
			return nil, fmt.Errorf("%s: allocate the noise: %w", op, err)
		}
		defer noise.Close()
	}

	// The start at ρ_0.
	if dc.Init == InitExact {
		v, err := SampleLIMNoised(ld.t, n, cfg.Alpha, 1, grid[0], cfg.Seed, cfg.FirstChain)
		if err != nil {
			return nil, fmt.Errorf("%s: initial state: %w", op, err)
		}
		h, err := tensor.FromFloat64s(dtype, v, n, d)
		if err != nil {
			return nil, fmt.Errorf("%s: initial state: %w", op, err)
		}
		err = x.CopyFrom(h)
		h.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: initial state: %w", op, err)
		}
	} else {
		c, err := b.Stable(noise, spec, drawAt(cfg.Seed, 0, PurposeLIM, cfg.FirstChain))
		if err != nil {
			return nil, fmt.Errorf("%s: initial state: %w", op, err)
		}
		res.Clamped += c
		if err := b.Combine(x, []ops.Term{{T: noise, C: grid[0]}}, 0, ops.Draw{}); err != nil {
			return nil, fmt.Errorf("%s: initial state: %w", op, err)
		}
	}
	nt := newNaNTracker(n)
	var tr, dtr *tracer
	if cfg.Trajectory {
		if tr, err = newTracer(dev, dtype, K+1, n, d); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		res.Trace = tr.t
		if dtr, err = newTracer(dev, dtype, K, n, d); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		res.Denoised = dtr.t
		if err := keepAndCheck(tr, nt, x, 0); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	prog := newProgress(cfg.Progress, int64(K), dev)
	for i := 0; i < K; i++ {
		r, rn := grid[i], grid[i+1]
		if err := den.Denoise(b, dn, x, r); err != nil {
			return nil, fmt.Errorf("%s: step %d (rho %g → %g): denoiser %s: %w", op, i, r, rn, den, err)
		}
		res.ScoreEvals += int64(n)
		res.ScoreCalls++
		c, scale := limCoeffs(r, rn, cfg.Alpha, cfg.Eta)
		terms := []ops.Term{{T: x, C: c}, {T: dn, C: 1 - c}}
		if scale > 0 {
			cl, err := b.Stable(noise, spec, drawAt(cfg.Seed, i+1, PurposeLIM, cfg.FirstChain))
			if err != nil {
				return nil, fmt.Errorf("%s: step %d (rho %g → %g): noise: %w", op, i, r, rn, err)
			}
			res.Clamped += cl
			terms = append(terms, ops.Term{T: noise, C: scale})
		}
		kept := terms[:0]
		for _, t := range terms {
			if t.C != 0 {
				kept = append(kept, t)
			}
		}
		if err := b.Combine(x, kept, 0, ops.Draw{}); err != nil {
			return nil, fmt.Errorf("%s: step %d (rho %g → %g): %w", op, i, r, rn, err)
		}
		if tr != nil {
			if err := dtr.keep(dn, i); err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
			if err := keepAndCheck(tr, nt, x, i+1); err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
		}
		if err := prog.step(int64(i + 1)); err != nil {
			return nil, fmt.Errorf("%s: step %d (rho %g → %g): %w", op, i, r, rn, err)
		}
	}
	if err := run.checkFinal(op, nt, tr, K); err != nil {
		return nil, err
	}
	return run.keep()
}
