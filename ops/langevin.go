package ops

import (
	"fmt"
	"math"
	"slices"

	"github.com/scorekit/scorekit/tensor"
)

// Step coefficients of the fused linear update (docs/math.md §2, §3, §5):
//
//	dst = Alpha·x + Beta_i·score + Gamma_i·ξ,   ξ ~ N(0, I) from the draw
//
// with Beta_i = Beta·h_i and Gamma_i = Gamma·sqrt(h_i) when per-chain step sizes H (shape (N), x's
// dtype and device) are given, else Beta_i = Beta, Gamma_i = Gamma. ULA with step h is
// {1, h, sqrt(2h)} (or {1, 1, √2, H}); the MALA proposal is the same with dst = y; DDPM's
// exponential integrator from t to t − h is {e^h, 2(e^h − 1), sqrt(e^{2h} − 1)}.
type Coeffs struct {
	Alpha, Beta, Gamma float64
	H                  *tensor.Tensor
}

// ULA returns the coefficients of one unadjusted Langevin step of size h.
func ULA(h float64) Coeffs { return Coeffs{Alpha: 1, Beta: h, Gamma: math.Sqrt(2 * h)} }

// ULAPerChain returns the coefficients of a Langevin step with per-chain step sizes h (N).
func ULAPerChain(h *tensor.Tensor) Coeffs { return Coeffs{Alpha: 1, Beta: 1, Gamma: math.Sqrt2, H: h} }

// MALAState is one batch of chains with their target log-density and score.
type MALAState struct {
	X, LogP, Score *tensor.Tensor // (N, d), (N), (N, d)
}

// ULDParams are the underdamped Langevin constants: friction γ > 0 and inverse mass u > 0
// (default 1).
type ULDParams struct {
	Gamma, InvMass float64
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func checkSame(op, name string, t *tensor.Tensor, dev tensor.Device, dt tensor.DType, shape ...int) error {
	if t == nil || t.Closed() {
		return fmt.Errorf("%s: %s is nil or closed", op, name)
	}
	if t.Device() != dev || t.DType() != dt {
		return fmt.Errorf("%s: %s is %v on %s, want %v on %s", op, name, t.DType(), t.Device().Name(), dt, dev.Name())
	}
	if !slices.Equal(t.Shape(), shape) {
		return fmt.Errorf("%s: %s has shape %v, want %v", op, name, t.Shape(), shape)
	}
	return nil
}

// CheckStep validates Step's arguments.
func CheckStep(dev tensor.Device, dst, x, score *tensor.Tensor, c Coeffs, d Draw) error {
	const op = "step"
	if x == nil || x.Closed() || x.Rank() != 2 {
		return fmt.Errorf("%s: x must be an open (N, d) tensor", op)
	}
	n, dim := x.Dim(0), x.Dim(1)
	if err := checkSame(op, "x", x, dev, x.DType(), n, dim); err != nil {
		return err
	}
	if err := checkSame(op, "dst", dst, dev, x.DType(), n, dim); err != nil {
		return err
	}
	if c.Beta != 0 {
		if err := checkSame(op, "score", score, dev, x.DType(), n, dim); err != nil {
			return err
		}
	}
	if !finite(c.Alpha) || !finite(c.Beta) || !finite(c.Gamma) {
		return fmt.Errorf("%s: coefficients (%g, %g, %g) must be finite", op, c.Alpha, c.Beta, c.Gamma)
	}
	if c.Gamma < 0 {
		return fmt.Errorf("%s: noise coefficient %g must be ≥ 0", op, c.Gamma)
	}
	if c.H != nil {
		if err := checkSame(op, "per-chain step sizes", c.H, dev, x.DType(), n); err != nil {
			return err
		}
	}
	return checkFill(op, dev, x, d)
}

// CheckMALAAccept validates MALAAccept's arguments.
func CheckMALAAccept(dev tensor.Device, cur, prop MALAState, h float64, hs *tensor.Tensor, d Draw, accepted *tensor.Tensor) error {
	const op = "mala accept"
	x := cur.X
	if x == nil || x.Closed() || x.Rank() != 2 {
		return fmt.Errorf("%s: current state must be an open (N, d) tensor", op)
	}
	n, dim, dt := x.Dim(0), x.Dim(1), x.DType()
	for _, c := range []struct {
		name  string
		t     *tensor.Tensor
		shape []int
	}{
		{"current x", cur.X, []int{n, dim}}, {"current log p", cur.LogP, []int{n}}, {"current score", cur.Score, []int{n, dim}},
		{"proposed x", prop.X, []int{n, dim}}, {"proposed log p", prop.LogP, []int{n}}, {"proposed score", prop.Score, []int{n, dim}},
	} {
		if err := checkSame(op, c.name, c.t, dev, dt, c.shape...); err != nil {
			return err
		}
	}
	if err := checkSame(op, "acceptance counts", accepted, dev, tensor.F64, n); err != nil {
		return err
	}
	if hs != nil {
		if err := checkSame(op, "per-chain step sizes", hs, dev, dt, n); err != nil {
			return err
		}
	} else if !(h > 0) || !finite(h) {
		return fmt.Errorf("%s: step size h = %g: must be a finite number > 0", op, h)
	}
	return checkFill(op, dev, x, d)
}

// CheckULDStep validates ULDStep's arguments.
func CheckULDStep(dev tensor.Device, x, v, score *tensor.Tensor, h float64, p ULDParams, d Draw) error {
	const op = "uld step"
	if x == nil || x.Closed() || x.Rank() != 2 {
		return fmt.Errorf("%s: x must be an open (N, d) tensor", op)
	}
	n, dim, dt := x.Dim(0), x.Dim(1), x.DType()
	if err := checkSame(op, "x", x, dev, dt, n, dim); err != nil {
		return err
	}
	if err := checkSame(op, "v", v, dev, dt, n, dim); err != nil {
		return err
	}
	if err := checkSame(op, "score", score, dev, dt, n, dim); err != nil {
		return err
	}
	if !(h > 0) || !finite(h) {
		return fmt.Errorf("%s: step size h = %g: must be a finite number > 0", op, h)
	}
	if !(p.Gamma > 0) || !finite(p.Gamma) {
		return fmt.Errorf("%s: friction γ = %g: must be a finite number > 0", op, p.Gamma)
	}
	if !(p.InvMass > 0) || !finite(p.InvMass) {
		return fmt.Errorf("%s: inverse mass u = %g: must be a finite number > 0", op, p.InvMass)
	}
	if d.Site == math.MaxUint64 {
		return fmt.Errorf("%s: site %d: ULD uses sites Site and Site+1", op, d.Site)
	}
	return checkFill(op, dev, x, d)
}

// CheckGaussianFactor validates AddGaussianFactor's arguments.
func CheckGaussianFactor(dev tensor.Device, out ScoreOutputs, x, center *tensor.Tensor, a, v float64) error {
	const op = "gaussian factor"
	if x == nil || x.Closed() || x.Rank() != 2 {
		return fmt.Errorf("%s: x must be an open (N, d) tensor", op)
	}
	n, dim, dt := x.Dim(0), x.Dim(1), x.DType()
	if err := checkSame(op, "x", x, dev, dt, n, dim); err != nil {
		return err
	}
	if err := checkSame(op, "center", center, dev, dt, n, dim); err != nil {
		return err
	}
	if out.LogP == nil && out.Score == nil {
		return fmt.Errorf("%s: nothing to update (set LogP and/or Score)", op)
	}
	if out.Denoiser != nil || out.Resp != nil {
		return fmt.Errorf("%s: only LogP and Score can be updated", op)
	}
	if out.LogP != nil {
		if err := checkSame(op, "log p", out.LogP, dev, dt, n); err != nil {
			return err
		}
	}
	if out.Score != nil {
		if err := checkSame(op, "score", out.Score, dev, dt, n, dim); err != nil {
			return err
		}
	}
	if !(a > 0) || !finite(a) || !(v > 0) || !finite(v) {
		return fmt.Errorf("%s: scale a = %g and variance v = %g must be finite and > 0", op, a, v)
	}
	return nil
}

// ULDCoefficients returns, for step h, friction γ and inverse mass u, with E = e^{−γh}:
// the drift coefficients of the frozen-gradient integrator (docs/math.md §2)
//
//	v' = E v + cv·∇log π + W_v,   x' = x + cx·v + cxg·∇log π + W_x
//	cv = (u/γ)(1 − E),  cx = (1 − E)/γ,  cxg = (u/γ)(h − (1 − E)/γ)
//
// (∇log π = −∇f, so the signs of the ∇f terms flip) and the lower Cholesky factor of the noise
// covariance [[Var W_x, Cov], [Cov, Var W_v]]: W_x = l11 ξ1, W_v = l21 ξ1 + l22 ξ2.
// 1 − E and its relatives are computed with expm1 so that small γh loses no digits.
func ULDCoefficients(h float64, p ULDParams) (e, cv, cx, cxg, l11, l21, l22 float64) {
	g, u := p.Gamma, p.InvMass
	om := -math.Expm1(-g * h)       // 1 − E
	e = 1 - om                      // E
	omE2 := -math.Expm1(-2 * g * h) // 1 − E²
	cv = u / g * om
	cx = om / g
	cxg = u / g * (h - om/g)
	varV := u * omE2
	// h − 2(1 − E)/γ + (1 − E²)/(2γ) suffers cancellation for small γh: use its series
	// γ²h³/3 − γ³h⁴/4 + 7γ⁴h⁵/60 − … when γh < 1e-2.
	var inner float64
	if gh := g * h; gh < 1e-2 {
		inner = h * gh * gh * (1.0/3 - gh/4 + 7*gh*gh/60 - gh*gh*gh/24)
	} else {
		inner = h - 2*om/g + omE2/(2*g)
	}
	varX := 2 * u / g * inner
	cov := u / g * om * om // (u/γ)(1 − 2E + E²) = (u/γ)(1 − E)²
	l11 = math.Sqrt(varX)
	l21 = cov / l11
	l22 = math.Sqrt(math.Max(varV-l21*l21, 0))
	return
}
