package ops

import (
	"fmt"
	"math"

	"github.com/scorekit/scorekit/tensor"
)

// NoiseKind says how a target is noised. Every kind is an affine-Gaussian corruption
// x = a·x0 + sqrt(s)·ξ, so a noised Gaussian N(μ, Σ) becomes N(a μ, a² Σ + s I):
//
//	VE  (variance exploding, level σ > 0):     a = 1,       s = σ²
//	VP  (Ornstein–Uhlenbeck time t > 0):       a = e^{−t},  s = 1 − e^{−2t}
//	Affine (a > 0 and s > 0 given directly):   for samplers with their own parametrisation
//	Clean  (no noise):                         a = 1,       s = 0  (the target itself; GMM only)
//
// and the posterior mean of x0 (the denoiser) is, by Tweedie's formula, D = (x + s ∇log p(x)) / a.
type NoiseKind int

const (
	VE NoiseKind = iota + 1
	VP
	Affine
	Clean
)

// NoNoise evaluates the target itself (Langevin samplers of p0). Only targets with a density
// accept it: an empirical data set has none.
var NoNoise = Noise{Kind: Clean}

func (k NoiseKind) String() string {
	switch k {
	case VE:
		return "ve"
	case VP:
		return "vp"
	case Affine:
		return "affine"
	case Clean:
		return "clean"
	}
	return fmt.Sprintf("NoiseKind(%d)", int(k))
}

// Noise is the noise level at which a score op evaluates its target.
type Noise struct {
	Kind NoiseKind
	// Level is σ (VE) or t (VP), shared by all rows.
	Level float64
	// Levels, when not nil, holds one level per row (shape (N), same dtype and device as x) and
	// overrides Level: each chain may sit at its own noise level. A row whose level is not a finite
	// positive number gets NaN outputs (the other rows are unaffected).
	Levels *tensor.Tensor
	// Scale and Var are a and s of the Affine kind.
	Scale, Var float64
}

// AtSigma is VE noise at level σ.
func AtSigma(sigma float64) Noise { return Noise{Kind: VE, Level: sigma} }

// AtTime is VP (OU) noise at time t.
func AtTime(t float64) Noise { return Noise{Kind: VP, Level: t} }

// ScaleVar returns (a, s) for one level of kind k; ok is false when the level is not a finite
// positive number (or, for Affine, when a or s is not).
func (n Noise) ScaleVar(level float64) (a, s float64, ok bool) {
	switch n.Kind {
	case VE:
		if !(level > 0) || math.IsInf(level, 0) {
			return math.NaN(), math.NaN(), false
		}
		return 1, level * level, true
	case VP:
		if !(level > 0) || math.IsInf(level, 0) {
			return math.NaN(), math.NaN(), false
		}
		return math.Exp(-level), -math.Expm1(-2 * level), true
	case Affine:
		if !(n.Scale > 0) || !(n.Var > 0) || math.IsInf(n.Scale, 0) || math.IsInf(n.Var, 0) {
			return math.NaN(), math.NaN(), false
		}
		return n.Scale, n.Var, true
	case Clean:
		return 1, 0, true
	}
	return math.NaN(), math.NaN(), false
}

// check validates the noise for a batch of rows rows on dev with dtype dt.
func (n Noise) check(op string, dev tensor.Device, dt tensor.DType, rows int) error {
	switch n.Kind {
	case VE, VP:
	case Clean:
		if n.Levels != nil {
			return fmt.Errorf("%s: clean (noise-free) evaluation takes no per-row levels", op)
		}
		return nil
	case Affine:
		if n.Levels != nil {
			return fmt.Errorf("%s: affine noise takes no per-row levels", op)
		}
		if _, _, ok := n.ScaleVar(0); !ok {
			return fmt.Errorf("%s: affine noise needs scale > 0 and var > 0 (got %g, %g)", op, n.Scale, n.Var)
		}
		return nil
	default:
		return fmt.Errorf("%s: unknown noise kind %v", op, n.Kind)
	}
	if n.Levels == nil {
		if _, _, ok := n.ScaleVar(n.Level); !ok {
			name := "σ"
			if n.Kind == VP {
				name = "t"
			}
			return fmt.Errorf("%s: noise level %s = %g: must be a finite number > 0", op, name, n.Level)
		}
		return nil
	}
	l := n.Levels
	if l.Closed() {
		return fmt.Errorf("%s: per-row levels: %w", op, tensor.ErrClosed)
	}
	if l.Rank() != 1 || l.Dim(0) != rows {
		return fmt.Errorf("%s: per-row levels have shape %v, want (%d)", op, l.Shape(), rows)
	}
	if l.DType() != dt || l.Device() != dev {
		return fmt.Errorf("%s: per-row levels are %v on %s, want %v on %s", op, l.DType(), l.Device().Name(), dt, dev.Name())
	}
	return nil
}
