package solvers

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// DDPMConfig configures DDPM. Steps is required; everything else has a default.
type DDPMConfig struct {
	// Steps is the number K ≥ 1 of equal steps of [0, Horizon] (one score evaluation each); used
	// when Grid is nil.
	Steps int
	// Horizon is T (default DefaultHorizon, see there).
	Horizon float64
	// Grid, when not nil, replaces Steps and Horizon: the times 0 ≤ t_0 < t_1 < … < t_K = T. The
	// run ends at t_0; t_0 > 0 stops early (the samples are then those of p_{t_0}, p0 blurred by
	// N(0, 1 − e^{−2 t_0}) and shrunk by e^{−t_0}).
	Grid []float64
	// Thin > 0 keeps the state every Thin steps in Result.Trace, shape (K/Thin + 1, N, d): row 0 is
	// the N(0, I) start at t_K, row k the state after k·Thin steps. 0 keeps no trace.
	Thin int
	// Seed keys the random stream and FirstChain is the chain index of row 0 (see Site).
	Seed       uint64
	FirstChain uint64
	// Init is the start at t_K = T: InitExact (default) the exact law of the target noised to T,
	// e^{−T} x0 + sqrt(1 − e^{−2T}) ξ (see SampleNoised); InitPrior N(0, I), which ignores the
	// data's mean and biases the samples by about |μ| e^{−T}.
	Init string
	// Progress, when set, receives the steps done out of K (see Progress).
	Progress Progress
}

// DDPM samples the target t with the exponential integrator of the reverse OU SDE (docs/math.md
// §3's baseline; the "exponential integrator" / DDPM sampler of the OU process).
//
// Derivation. The forward process dX = −X dt + √2 dB, X_0 ~ p0, has marginals p_t (t noised at
// VP time t). Its time reversal Y_τ = X_{T−τ} solves
//
//	dY = (Y + 2 ∇log p_{T−τ}(Y)) dτ + √2 dW.
//
// Over one step from time t down to t − h (τ → τ + h), freeze the score at the current time,
// s = ∇log p_t(y). The SDE is then linear, dY = (Y + 2s) dτ + √2 dW, and its exact solution
// after h is, by variation of constants,
//
//	Y_{τ+h} = e^{h} y + 2 s ∫_0^h e^{h−r} dr + √2 ∫_0^h e^{h−r} dW_r
//	        = e^{h} y + 2(e^{h} − 1) s + sqrt(e^{2h} − 1) ξ,
//
// since Var(√2 ∫_0^h e^{h−r} dW_r) = 2 ∫_0^h e^{2(h−r)} dr = e^{2h} − 1. This is one fused
// ops.Backend.Step with coefficients {e^h, 2(e^h − 1), sqrt(e^{2h} − 1)} (computed with expm1).
// The only error of the step is the frozen score; the linear drift and the noise are exact.
//
// The end point. The score is evaluated only at the start of each step, at times t_K, …, t_1,
// never at t_0. So the last step can end at t_0 = 0 exactly — it uses ∇log p_{t_1}, which exists
// for every target (an empirical data set included) — and no early stop is needed for the
// scheme to be defined. The frozen score, not the end point, sets the accuracy: the local error
// is O(h²) per step and the error of the samples O(max h) overall (for p0 = N(0, I), where every
// p_t is N(0, I), one step maps the variance 1 to 3 − 4e^{h} + 2e^{2h} = 1 + 2h² + O(h³)), which
// is why enough steps, or a grid refined where p_t changes fast (near t = 0), are needed.
//
// n chains are sampled in dtype on b's device, starting at t_K from the exact noised law of the
// target or from N(0, I) (cfg.Init); step j (from t_{K−j} to t_{K−j−1}) draws at Site(j,
// PurposeStep). Cost: K score
// evaluations per chain.
func DDPM(b ops.Backend, t target.Target, n int, dtype tensor.DType, cfg DDPMConfig) (*Result, error) {
	const op = "ddpm"
	if b == nil {
		return nil, fmt.Errorf("%s: nil backend", op)
	}
	if t == nil {
		return nil, fmt.Errorf("%s: nil target", op)
	}
	if cfg.Grid == nil && cfg.Steps <= 0 {
		return nil, fmt.Errorf("%s: steps = %d: need at least one step", op, cfg.Steps)
	}
	if cfg.Grid != nil && cfg.Steps != 0 {
		return nil, fmt.Errorf("%s: give either a grid or steps and horizon, not both", op)
	}
	grid, err := timeGrid(cfg.Grid, cfg.Horizon, cfg.Steps, 1, "steps")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	K := len(grid) - 1
	if uint64(K) > MaxSteps {
		return nil, fmt.Errorf("%s: %d steps: at most %d", op, K, uint64(MaxSteps))
	}
	if cfg.Thin < 0 || cfg.Thin > K {
		return nil, fmt.Errorf("%s: thin = %d: must be in [0, steps = %d] (0 keeps no trace)", op, cfg.Thin, K)
	}
	if err := checkChains(op, n, cfg.FirstChain); err != nil {
		return nil, err
	}
	init, err := checkInit(cfg.Init)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	d, dev := t.Dim(), b.Device()
	run, err := newSamplesRun(op, dev, dtype, n, d)
	if err != nil {
		return nil, err
	}
	defer run.release()
	res, x := run.res, run.res.Samples
	score, err := tensor.New(dev, dtype, n, d)
	if err != nil {
		return nil, fmt.Errorf("%s: allocate the score: %w", op, err)
	}
	defer score.Close()
	ev := &evaluator{b: b, t: t, ev: &res.Evals}
	if err := t.Check(dev, ops.ScoreOutputs{Score: score}, x, ops.AtTime(grid[K])); err != nil {
		return nil, fmt.Errorf("%s: target %s cannot give a score at VP time: %w", op, t, err)
	}

	a, s := ouScaleVar(grid[K])
	if err := noisedStart(b, TargetDenoiser(t), init, x, a, s, 1, cfg.Seed, cfg.FirstChain); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	nt := newNaNTracker(n)
	var tr *tracer
	if cfg.Thin > 0 {
		if tr, err = newTracer(dev, dtype, K/cfg.Thin+1, n, d); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		res.Trace = tr.t
		if err := keepAndCheck(tr, nt, x, 0); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	prog := newProgress(cfg.Progress, int64(K), dev)
	for j := 0; j < K; j++ {
		i := K - j
		h := grid[i] - grid[i-1]
		ev.noise = ops.AtTime(grid[i])
		if err := ev.eval(ops.ScoreOutputs{Score: score}, x); err != nil {
			return nil, fmt.Errorf("%s: step %d (t = %g): %w", op, j, grid[i], err)
		}
		eh1 := math.Expm1(h)
		c := ops.Coeffs{Alpha: 1 + eh1, Beta: 2 * eh1, Gamma: math.Sqrt(math.Expm1(2 * h))}
		if err := b.Step(x, x, score, c, drawAt(cfg.Seed, j, PurposeStep, cfg.FirstChain)); err != nil {
			return nil, fmt.Errorf("%s: step %d (t = %g): %w", op, j, grid[i], err)
		}
		if tr != nil && (j+1)%cfg.Thin == 0 {
			if err := keepAndCheck(tr, nt, x, j+1); err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
		}
		if err := prog.step(int64(j + 1)); err != nil {
			return nil, fmt.Errorf("%s: step %d (t = %g): %w", op, j, grid[i], err)
		}
	}
	if err := run.checkFinal(op, nt, tr, K); err != nil {
		return nil, err
	}
	return run.keep()
}
