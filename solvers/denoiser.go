package solvers

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/ops"
	"github.com/scorekit/scorekit/ops/target"
	"github.com/scorekit/scorekit/tensor"
)

// Denoiser is the one model every diffusion sampler of this package runs on: the posterior mean
// of the clean data given a noisy observation in the variance-exploding (VE) convention,
//
//	D(x; σ) = E[x0 | x0 + σ ξ = x],   ξ ~ N(0, I) independent of x0 ~ p0,
//
// for noise levels σ ≥ 0, with D(x; 0) = x (with no noise the observation is the data). Every
// other parametrisation of a diffusion model is an exact, affine function of D at the same point
// (docs/math.md §1.1, §5.1–5.3):
//
//	score     ∇log pσ(x) = (D − x)/σ²                       (Tweedie; ScoreFromDenoiser)
//	noise     ε̂ = E[ξ | x] = (x − D)/σ                       (EpsFromDenoiser)
//	VP        x_t = α_t x0 + s_t ε with α_t² + s_t² = 1 is the VE state x_t/α_t at σ = s_t/α_t,
//	          so E[x0 | x_t] = D(x_t/α_t; s_t/α_t)          (VPFromSigma, DenoiseVP)
//	flow      x_t = (1 − t) x0 + t x1 (x0 noise, x1 data) is the VE state x_t/t at σ = (1 − t)/t,
//	          and the velocity E[x1 − x0 | x_t] = (D(x_t/t; (1−t)/t) − x_t)/(1 − t)
//	          (VelocityFromDenoiser)
//
// so one Denoiser serves the VE samplers (Euler, Heun, DPM-Solver, …), the VP ones (DDIM, DDPM)
// and rectified flow, and a learned network implements this interface once, whatever it was
// trained to predict.
//
// Denoise writes D(x; σ) for every row of x (N, Dim()) into dst (same shape, dtype and device; not
// x itself), on b's device. It returns an error, never panics, for a σ that is not a finite
// number ≥ 0 or for tensors that do not fit.
type Denoiser interface {
	// Dim is the dimension d of the data.
	Dim() int
	// Denoise writes D(x; sigma) into dst.
	Denoise(b ops.Backend, dst, x *tensor.Tensor, sigma float64) error
	// String is a short description.
	String() string
}

// TargetDenoiser is the exact denoiser of an analytic or empirical target: D(x; σ) is the
// target's Tweedie denoiser at VE level σ, evaluated by t.Evaluate with ops.AtSigma(σ) (for a
// Gaussian mixture the posterior mean under Σ_k + σ² I, docs/math.md §1.1; for a data set the
// mean-shift weights of §1.2). At σ = 0 it is x itself, for every target: the observation is the
// data (for a data set this is the σ → 0 limit only at the data points; the samplers never
// evaluate D at σ = 0).
//
// A nil target gives a nil Denoiser.
func TargetDenoiser(t target.Target) Denoiser {
	if t == nil {
		return nil
	}
	return targetDenoiser{t: t}
}

type targetDenoiser struct{ t target.Target }

func (d targetDenoiser) Dim() int { return d.t.Dim() }

func (d targetDenoiser) String() string { return "denoiser of " + d.t.String() }

func (d targetDenoiser) Denoise(b ops.Backend, dst, x *tensor.Tensor, sigma float64) error {
	const op = "denoise"
	if b == nil {
		return fmt.Errorf("%s: nil backend", op)
	}
	if math.IsNaN(sigma) || math.IsInf(sigma, 0) || sigma < 0 {
		return fmt.Errorf("%s: sigma = %g: must be a finite number ≥ 0", op, sigma)
	}
	if sigma == 0 {
		if err := d.t.Check(b.Device(), ops.ScoreOutputs{Denoiser: dst}, x, ops.AtSigma(1)); err != nil {
			return fmt.Errorf("%s at sigma = 0: %w", op, err)
		}
		if err := dst.CopyFrom(x); err != nil {
			return fmt.Errorf("%s at sigma = 0: %w", op, err)
		}
		return nil
	}
	return d.t.Evaluate(b, ops.ScoreOutputs{Denoiser: dst}, x, ops.AtSigma(sigma))
}

// ScoreFromDenoiser writes the score of the VE-noised density, ∇log pσ(x) = (D − x)/σ²
// (Tweedie's formula read backwards), into dst; den holds D(x; σ). σ > 0.
func ScoreFromDenoiser(b ops.Backend, dst, x, den *tensor.Tensor, sigma float64) error {
	if err := checkLevel("score from denoiser", sigma); err != nil {
		return err
	}
	v := sigma * sigma
	return b.Combine(dst, []ops.Term{{T: den, C: 1 / v}, {T: x, C: -1 / v}}, 0, ops.Draw{})
}

// DenoiserFromScore writes D(x; σ) = x + σ² ∇log pσ(x) into dst; score holds ∇log pσ(x). σ > 0.
func DenoiserFromScore(b ops.Backend, dst, x, score *tensor.Tensor, sigma float64) error {
	if err := checkLevel("denoiser from score", sigma); err != nil {
		return err
	}
	return b.Combine(dst, []ops.Term{{T: x, C: 1}, {T: score, C: sigma * sigma}}, 0, ops.Draw{})
}

// EpsFromDenoiser writes the noise prediction ε̂ = E[ξ | x0 + σξ = x] = (x − D)/σ into dst. σ > 0.
func EpsFromDenoiser(b ops.Backend, dst, x, den *tensor.Tensor, sigma float64) error {
	if err := checkLevel("eps from denoiser", sigma); err != nil {
		return err
	}
	return b.Combine(dst, []ops.Term{{T: x, C: 1 / sigma}, {T: den, C: -1 / sigma}}, 0, ops.Draw{})
}

// DenoiserFromEps writes D = x − σ ε̂ into dst; eps holds the noise prediction ε̂. σ > 0.
func DenoiserFromEps(b ops.Backend, dst, x, eps *tensor.Tensor, sigma float64) error {
	if err := checkLevel("denoiser from eps", sigma); err != nil {
		return err
	}
	return b.Combine(dst, []ops.Term{{T: x, C: 1}, {T: eps, C: -sigma}}, 0, ops.Draw{})
}

// VPFromSigma maps a VE noise level σ ≥ 0 to the variance-preserving parametrisation
// x_t = α x0 + s ε (α² + s² = 1) that has the same signal-to-noise ratio α/s = 1/σ:
//
//	α = 1/sqrt(1 + σ²),   s = σ/sqrt(1 + σ²),   t = ½ log(1 + σ²)
//
// t is the Ornstein–Uhlenbeck time of ops.AtTime (α = e^{−t}, s² = 1 − e^{−2t}). A VP state x_t
// is the VE state x_t/α at level σ = s/α, and the VE state x is the VP state α x.
func VPFromSigma(sigma float64) (alpha, s, t float64) {
	r := math.Hypot(1, sigma)
	return 1 / r, sigma / r, 0.5 * math.Log1p(sigma*sigma)
}

// SigmaFromVPTime is the VE level of OU time t ≥ 0: σ = s_t/α_t = sqrt(e^{2t} − 1).
func SigmaFromVPTime(t float64) float64 { return math.Sqrt(math.Expm1(2 * t)) }

// DenoiseVP writes the VP denoiser E[x0 | x_t] = D(x_t/α_t; s_t/α_t) at OU time t > 0
// (α_t = e^{−t}, s_t² = 1 − e^{−2t}, the noise of ops.AtTime(t)) for the VP states x into dst. It
// scales x into dst first (one Combine), so dst must not be x.
func DenoiseVP(b ops.Backend, den Denoiser, dst, x *tensor.Tensor, t float64) error {
	const op = "denoise vp"
	if b == nil {
		return fmt.Errorf("%s: nil backend", op)
	}
	if x == nil || x.Closed() {
		return fmt.Errorf("%s: input x is nil or closed", op)
	}
	if !finitePositive(t) {
		return fmt.Errorf("%s: time t = %g: must be a finite number > 0", op, t)
	}
	if den == nil {
		return fmt.Errorf("%s: nil denoiser", op)
	}
	if dst == x {
		return fmt.Errorf("%s: dst must not be x", op)
	}
	scaled, err := tensor.New(b.Device(), x.DType(), x.Shape()...)
	if err != nil {
		return fmt.Errorf("%s: allocate the scaled state %v: %w", op, x.Shape(), err)
	}
	defer scaled.Close()
	if err := b.Combine(scaled, []ops.Term{{T: x, C: math.Exp(t)}}, 0, ops.Draw{}); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return den.Denoise(b, dst, scaled, SigmaFromVPTime(t))
}

// RFFromTime maps the rectified-flow time t ∈ (0, 1) of x_t = (1 − t) x0 + t x1 (x0 ~ N(0, I),
// x1 data; docs/math.md §5.3) to the VE picture: x_t/scale is the VE state of level sigma, with
// scale = t and sigma = (1 − t)/t.
func RFFromTime(t float64) (scale, sigma float64) { return t, (1 - t) / t }

// VelocityFromDenoiser writes the rectified-flow velocity v(x, t) = E[x1 − x0 | x_t = x] =
// (E[x1 | x_t] − x)/(1 − t) into dst, where den holds E[x1 | x_t = x] = D(x/t; (1 − t)/t) (see
// RFFromTime). t ∈ (0, 1).
func VelocityFromDenoiser(b ops.Backend, dst, x, den *tensor.Tensor, t float64) error {
	if !(t > 0 && t < 1) {
		return fmt.Errorf("velocity from denoiser: time t = %g: must be in (0, 1)", t)
	}
	c := 1 / (1 - t)
	return b.Combine(dst, []ops.Term{{T: den, C: c}, {T: x, C: -c}}, 0, ops.Draw{})
}

// checkLevel validates a positive noise level.
func checkLevel(op string, sigma float64) error {
	if !finitePositive(sigma) {
		return fmt.Errorf("%s: sigma = %g: must be a finite number > 0", op, sigma)
	}
	return nil
}
