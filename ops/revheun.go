package ops

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// Reversible Heun (docs/math.md §4.7, Kidger et al. 2021) for the Stratonovich SDE
// dX = f(X) dt + g(X) ∘ dW carries a state y and an auxiliary state z (both start at x_0). One
// step of size h with Brownian increment ΔW is
//
//	z' = 2y − z + f(z) h + g(z) ΔW
//	y' = y + ½(f(z) + f(z')) h + ½(g(z) + g(z')) ΔW
//
// and it is algebraically invertible: from (y', z') and the same ΔW,
//
//	z = 2y' − z' − f(z') h − g(z') ΔW
//	y = y' − ½(f(z) + f(z')) h − ½(g(z) + g(z')) ΔW
//
// so a backward pass reconstructs every state to round-off from the last one without storing the
// trajectory. Strong order ½ in general, 1 for additive noise.
//
// The fused op here integrates affine coordinate-wise SDEs (AffineSDE): every coordinate of every
// chain is a scalar SDE with its own Brownian motion (diagonal noise). The arithmetic, fixed
// because the kernel repeats it bit for bit, is, with fma(a, b, c) = a·b + c rounded once:
//
//	forward:  f = fma(B, z, A), g = fma(E, z, C)
//	          z' = fma(g, ΔW, fma(f, h, 2y − z));  f' = fma(B, z', A), g' = fma(E, z', C)
//	          y' = fma(½(g + g'), ΔW, fma(½(f + f'), h, y))
//	inverse:  f' = fma(B, z', A), g' = fma(E, z', C)
//	          z = fma(−g', ΔW, fma(−f', h, 2y' − z'));  f = fma(B, z, A), g = fma(E, z, C)
//	          y = fma(−½(g + g'), ΔW, fma(−½(f + f'), h, y'))
//
// in float64 whatever the dtype; a float32 state is widened when the op starts and rounded once
// when it ends, after all the op's steps.

// AffineSDE is the scalar Stratonovich SDE dX = (A + B·X) dt + (C + E·X) ∘ dW, applied to every
// coordinate of a state with a Brownian motion of its own per coordinate. OrnsteinUhlenbeck and
// GeometricBrownian build its two families.
type AffineSDE struct {
	A, B, C, E float64
}

// OrnsteinUhlenbeck is dX = θ(μ − X) dt + σ dW (additive noise, so Itô and Stratonovich agree):
// A = θμ, B = −θ, C = σ, E = 0. θ may be any finite number (θ > 0 reverts to μ); σ ≥ 0.
func OrnsteinUhlenbeck(theta, mu, sigma float64) (AffineSDE, error) {
	const op = "ornstein-uhlenbeck sde"
	switch {
	case !finite(theta):
		return AffineSDE{}, fmt.Errorf("%s: θ = %g: must be finite", op, theta)
	case !finite(mu):
		return AffineSDE{}, fmt.Errorf("%s: μ = %g: must be finite", op, mu)
	case !finite(sigma) || sigma < 0:
		return AffineSDE{}, fmt.Errorf("%s: σ = %g: must be a finite number ≥ 0", op, sigma)
	}
	s := AffineSDE{A: theta * mu, B: -theta, C: sigma}
	if !finite(s.A) {
		return AffineSDE{}, fmt.Errorf("%s: θμ = %g·%g overflows", op, theta, mu)
	}
	return s, nil
}

// GeometricBrownian is the geometric Brownian motion of Itô form dX = μ X dt + σ X dW, whose
// solution is X_t = X_0 exp((μ − σ²/2) t + σ W_t). Its Stratonovich form, the one reversible Heun
// integrates, carries the Itô–Stratonovich drift correction −½ g ∂g/∂x = −½σ² X:
// dX = (μ − σ²/2) X dt + σ X ∘ dW, so A = 0, B = μ − σ²/2, C = 0, E = σ.
func GeometricBrownian(mu, sigma float64) (AffineSDE, error) {
	const op = "geometric brownian motion sde"
	switch {
	case !finite(mu):
		return AffineSDE{}, fmt.Errorf("%s: μ = %g: must be finite", op, mu)
	case !finite(sigma) || sigma < 0:
		return AffineSDE{}, fmt.Errorf("%s: σ = %g: must be a finite number ≥ 0", op, sigma)
	}
	s := AffineSDE{B: mu - 0.5*sigma*sigma, E: sigma}
	if !finite(s.B) {
		return AffineSDE{}, fmt.Errorf("%s: μ − σ²/2 = %g − %g²/2 overflows", op, mu, sigma)
	}
	return s, nil
}

// Check validates the coefficients: all finite.
func (s AffineSDE) Check() error {
	if !finite(s.A) || !finite(s.B) || !finite(s.C) || !finite(s.E) {
		return fmt.Errorf("affine sde: coefficients A = %g, B = %g, C = %g, E = %g: must be finite", s.A, s.B, s.C, s.E)
	}
	return nil
}

// Drift is the Stratonovich drift f(x) = fma(B, x, A).
func (s AffineSDE) Drift(x float64) float64 { return math.FMA(s.B, x, s.A) }

// Diffusion is g(x) = fma(E, x, C).
func (s AffineSDE) Diffusion(x float64) float64 { return math.FMA(s.E, x, s.C) }

// AdditiveNoise reports whether g does not depend on the state (E = 0): reversible Heun then has
// strong order 1.
func (s AffineSDE) AdditiveNoise() bool { return s.E == 0 }

// HeunDirection says which way ReversibleHeun runs.
type HeunDirection int

const (
	// HeunForward applies the steps k = 0 … q−1 of the increments in order.
	HeunForward HeunDirection = iota
	// HeunInverse applies the inverse steps k = q−1 … 0: it undoes a HeunForward call with the
	// same increments and step size, to round-off.
	HeunInverse
)

func (d HeunDirection) String() string {
	switch d {
	case HeunForward:
		return "forward"
	case HeunInverse:
		return "inverse"
	}
	return fmt.Sprintf("HeunDirection(%d)", int(d))
}

// RevHeunForwardStep is one reversible Heun step of the affine SDE s for one coordinate: it
// returns (y', z') from (y, z), step h and increment dw (the arithmetic of the header comment).
func RevHeunForwardStep(s AffineSDE, y, z, h, dw float64) (float64, float64) {
	f, g := s.Drift(z), s.Diffusion(z)
	z1 := math.FMA(g, dw, math.FMA(f, h, 2*y-z))
	f1, g1 := s.Drift(z1), s.Diffusion(z1)
	y1 := math.FMA(0.5*(g+g1), dw, math.FMA(0.5*(f+f1), h, y))
	return y1, z1
}

// RevHeunInverseStep undoes RevHeunForwardStep: it returns (y, z) from (y', z'), h and dw.
func RevHeunInverseStep(s AffineSDE, y1, z1, h, dw float64) (float64, float64) {
	f1, g1 := s.Drift(z1), s.Diffusion(z1)
	z := math.FMA(-g1, dw, math.FMA(-f1, h, 2*y1-z1))
	f, g := s.Drift(z), s.Diffusion(z)
	y := math.FMA(-0.5*(g+g1), dw, math.FMA(-0.5*(f+f1), h, y1))
	return y, z
}

// CheckReversibleHeun validates ReversibleHeun's arguments: y and z distinct open (N, d) f32 or
// f64 tensors of one dtype on dev; dw an f64 tensor (N·d, q) on dev; a finite step h > 0; finite
// coefficients; a known direction.
func CheckReversibleHeun(dev tensor.Device, y, z, dw *tensor.Tensor, s AffineSDE, h float64, dir HeunDirection) error {
	const op = "reversible heun"
	if err := checkHeunState(op, dev, y, z, dw, h, dir); err != nil {
		return err
	}
	if err := s.Check(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// checkHeunState validates the state, increments, step and direction of a fused reversible Heun
// op named op: y and z distinct open (N, d) f32 or f64 tensors of one dtype on dev; dw an f64
// tensor (N·d, q) on dev; a finite step h > 0; a known direction.
func checkHeunState(op string, dev tensor.Device, y, z, dw *tensor.Tensor, h float64, dir HeunDirection) error {
	if y == nil || y.Closed() || y.Rank() != 2 {
		return fmt.Errorf("%s: y must be an open (N, d) tensor", op)
	}
	n, dim, dt := y.Dim(0), y.Dim(1), y.DType()
	if dt != tensor.F32 && dt != tensor.F64 {
		return fmt.Errorf("%s: y is %v: want f32 or f64", op, dt)
	}
	if err := checkSame(op, "y", y, dev, dt, n, dim); err != nil {
		return err
	}
	if err := checkSame(op, "z", z, dev, dt, n, dim); err != nil {
		return err
	}
	if y == z {
		return fmt.Errorf("%s: y and z are the same tensor: the op updates both in place", op)
	}
	if dw == nil || dw.Closed() || dw.Rank() != 2 {
		return fmt.Errorf("%s: increments must be an open (N·d, q) tensor", op)
	}
	if err := checkSame(op, "increments", dw, dev, tensor.F64, n*dim, dw.Dim(1)); err != nil {
		return err
	}
	if !(h > 0) || !finite(h) {
		return fmt.Errorf("%s: step size h = %g: must be a finite number > 0", op, h)
	}
	if dir != HeunForward && dir != HeunInverse {
		return fmt.Errorf("%s: direction %v: want HeunForward or HeunInverse", op, dir)
	}
	return nil
}

// ReversibleHeun: every coordinate j of every chain c of (y, z) (N, d) takes q reversible Heun
// steps of size h of the SDE s, in place, with the increments dw[c·d + j, k] (k = 0 … q−1) —
// forward in order, or inverse from k = q−1 down to 0 (see the header comment). A float32 state
// is carried in float64 through the q steps and rounded once at the end.
func (b cpuBackend) ReversibleHeun(y, z, dw *tensor.Tensor, s AffineSDE, h float64, dir HeunDirection) error {
	if err := CheckReversibleHeun(tensor.CPU(), y, z, dw, s, h, dir); err != nil {
		return err
	}
	n, dim, q := y.Dim(0), y.Dim(1), dw.Dim(1)
	if n == 0 || dim == 0 || q == 0 {
		return nil
	}
	ry, rz := rowsOf(y), rowsOf(z)
	w, _ := dw.F64()
	b.parallelRows(n, 20*dim*q, func(lo, hi int) {
		for i := lo * dim; i < hi*dim; i++ {
			yv, zv := ry.at(i), rz.at(i)
			inc := w[i*q : (i+1)*q]
			if dir == HeunForward {
				for _, d := range inc {
					yv, zv = RevHeunForwardStep(s, yv, zv, h, d)
				}
			} else {
				for k := q - 1; k >= 0; k-- {
					yv, zv = RevHeunInverseStep(s, yv, zv, h, inc[k])
				}
			}
			ry.put(i, yv)
			rz.put(i, zv)
		}
	})
	return nil
}
